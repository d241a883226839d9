#!/usr/bin/env python3
"""Example command-line client for `switchyard serve` (the switchyard.v1.Inference gRPC service).

The Python stubs are not committed: on first use this script compiles ../../Protos with
grpcio-tools into a cache directory under the system temporary directory (one per version of
the .proto files and of grpcio-tools) and imports them from there.

    pip install -r requirements.txt
    python client.py health   --server 127.0.0.1:50051
    python client.py generate --server 127.0.0.1:50051 --expert reverse $'Write cat backwards.\\nAnswer:'
    python client.py generate --server 127.0.0.1:50051 --expert reverse=0.5 --expert uppercase=0.5 "..."
    python client.py generate --server 127.0.0.1:50051 --router sentence --json "..."
    python client.py experts  --server 127.0.0.1:50051
    python client.py routers  --server 127.0.0.1:50051
    python client.py info     --server 127.0.0.1:50051

Request metadata:
  authorization: Bearer T     with --token T (or $SWITCHYARD_TOKEN)
  x-switchyard-expert: NAME   on generate: the expert, the largest-weight expert of a mix, or the
                              router; a load balancer can use it for expert affinity. Not sent for
                              base-model requests.
Response metadata read: x-switchyard-replica (initial metadata), shown by generate and info.

Exit status: 0 on success; 1 on a gRPC error (printed as `error: CODE: details` on stderr) and
from `health` when the status is not SERVING; 2 on bad usage.
"""
import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

try:
    import grpc
    import grpc_tools
    from grpc_tools import protoc
    from google.protobuf import json_format
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.exit(f"error: {exc.name} is missing; run `pip install -r {Path(__file__).with_name('requirements.txt')}`")

DEFAULT_PROTOS = Path(__file__).resolve().parent.parent.parent / "Protos"
INFERENCE_PROTO = Path("switchyard/v1/inference.proto")
HEALTH_PROTO = Path("grpc/health/v1/health.proto")

EXPERT_HEADER = "x-switchyard-expert"
REPLICA_HEADER = "x-switchyard-replica"


# --- Stubs ---------------------------------------------------------------------------------------

def load_stubs(protos_dir):
    """Compiles the two .proto files (once per content and grpcio-tools version) and imports them.

    Returns (inference_pb2, inference_pb2_grpc, health_pb2, health_pb2_grpc).

    Each file is compiled from its own directory, so the modules are top-level (`inference_pb2`,
    `health_pb2`): compiled from Protos/ the health stubs would live in a package named `grpc`,
    which would clash with grpcio's own `grpc` package.
    """
    protos_dir = Path(protos_dir)
    sources = [protos_dir / INFERENCE_PROTO, protos_dir / HEALTH_PROTO]
    for source in sources:
        if not source.is_file():
            sys.exit(f"error: {source} not found (pass --protos DIR, the repository's Protos directory)")

    key = hashlib.sha256()
    key.update(getattr(grpc_tools, "__version__", "").encode())
    key.update(grpc.__version__.encode())
    for source in sources:
        key.update(source.read_bytes())
    user = getattr(os, "getuid", lambda: "user")()
    cache = Path(tempfile.gettempdir()) / f"switchyard-python-stubs-{user}-{key.hexdigest()[:16]}"

    if not (cache / "COMPLETE").is_file():
        # Compile into a scratch directory, then rename it into place, so that concurrent runs
        # never import half-written modules.
        scratch = Path(tempfile.mkdtemp(prefix=cache.name + ".tmp-", dir=cache.parent))
        try:
            include = Path(grpc_tools.__file__).resolve().parent / "_proto"  # well-known types
            for source in sources:
                args = ["grpc_tools.protoc", f"-I{source.parent}", f"-I{include}",
                        f"--python_out={scratch}", f"--grpc_python_out={scratch}", str(source)]
                if protoc.main(args) != 0:
                    sys.exit(f"error: grpc_tools.protoc failed on {source}")
            (scratch / "COMPLETE").write_text("")
            try:
                os.rename(scratch, cache)
            except OSError:
                if not (cache / "COMPLETE").is_file():  # not another run's finished copy
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    sys.path.insert(0, str(cache))
    return tuple(importlib.import_module(name) for name in
                 ("inference_pb2", "inference_pb2_grpc", "health_pb2", "health_pb2_grpc"))


# --- Helpers -------------------------------------------------------------------------------------

class Client:
    """A channel, the stubs and the per-call options shared by every subcommand."""

    def __init__(self, args):
        (self.pb, inference_grpc, self.health_pb, health_grpc) = load_stubs(args.protos)
        self.channel = grpc.insecure_channel(args.server)
        self.inference = inference_grpc.InferenceStub(self.channel)
        self.health = health_grpc.HealthStub(self.channel)
        self.timeout = args.timeout if args.timeout > 0 else None
        self.token = args.token

    def metadata(self, expert=None):
        md = []
        if self.token:
            md.append(("authorization", f"Bearer {self.token}"))
        if expert:
            md.append((EXPERT_HEADER, expert))
        return md


def replica_of(call):
    """The value of the x-switchyard-replica initial metadata of a call, or None."""
    for key, value in call.initial_metadata() or ():
        if key == REPLICA_HEADER:
            return value
    return None


def to_dict(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def parse_expert(text):
    """NAME or NAME=WEIGHT (weight 1 when omitted)."""
    name, sep, weight = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME[=WEIGHT], got {text!r}")
    if not sep:
        return name, 1.0
    try:
        value = float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight of {name!r} is not a number: {weight!r}")
    if value == 0:  # the protocol reads a weight of 0 as 1
        raise argparse.ArgumentTypeError(f"weight of {name!r} must not be 0 (leave the expert out)")
    return name, value


# --- Subcommands ---------------------------------------------------------------------------------

def cmd_generate(client, args):
    pb = client.pb
    request = pb.GenerateRequest(
        prompt=sys.stdin.read() if args.prompt == "-" else args.prompt,
        experts=[pb.ExpertWeight(name=n, weight=w) for n, w in args.expert],
        router=args.router or "",
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        stop=args.stop,
        trace=args.trace,
        ignore_eos=args.ignore_eos,
        request_id=args.request_id,
    )
    # Affinity key: the router, the single expert, or the largest-weight expert of a mix (the
    # first of equals); none for the base model.
    affinity = args.router or (max(args.expert, key=lambda e: e[1])[0] if args.expert else None)

    call = client.inference.Generate(request, metadata=client.metadata(affinity), timeout=client.timeout)
    text, token_ids, routing, final = [], [], [], None
    for event in call:
        if final is not None:
            continue  # nothing follows the summary; read on only for the call's status
        if event.finish_reason:
            final = event
            # The summary event carries no token of its own, unless the counts say otherwise.
            if event.text or event.generated_tokens == len(token_ids) + 1:
                text.append(event.text)
                token_ids.append(event.token_id)
            continue
        text.append(event.text)
        token_ids.append(event.token_id)
        if args.trace:
            decisions = [to_dict(d) for d in event.routing]
            routing.append({"index": event.index, "token_id": event.token_id, "decisions": decisions})
        if args.json:
            continue
        sys.stdout.write(event.text)
        sys.stdout.flush()
        if args.trace:
            for d in event.routing:
                mix = " ".join(f"{e.name}={e.weight:.3f}" for e in d.experts)
                print(f"[trace] token {event.index} {event.text!r} layer {d.layer}: {mix}", file=sys.stderr)
    if final is None:
        print("error: the stream ended without a final event", file=sys.stderr)
        return 1

    replica = replica_of(call)
    if args.json:
        result = {
            "text": "".join(text),
            "token_ids": token_ids,
            "finish_reason": final.finish_reason,
            "replica": replica,
            "prompt_tokens": final.prompt_tokens,
            "generated_tokens": final.generated_tokens,
            "timings": to_dict(final.timings),
        }
        if args.trace:
            result["routing"] = routing
        print(json.dumps(result, ensure_ascii=False))
    else:
        if final.text:
            sys.stdout.write(final.text)
        print(flush=True)
        t = final.timings
        summary = (f"finish_reason={final.finish_reason} prompt_tokens={final.prompt_tokens} "
                   f"generated_tokens={final.generated_tokens} ttft_ms={t.time_to_first_token_ms:.1f} "
                   f"total_ms={t.total_ms:.1f} decode_tok/s={t.decode_tokens_per_second:.1f}")
        if replica:
            summary += f" replica={replica}"
        print(summary, file=sys.stderr)
    return 0


def cmd_experts(client, args):
    response, _ = client.inference.ListExperts.with_call(
        client.pb.ListExpertsRequest(), metadata=client.metadata(), timeout=client.timeout)
    if args.json:
        print(json.dumps(to_dict(response)))
        return 0
    print(f"{'NAME':<20} {'RANK':>4} {'RESIDENT':<8} {'BYTES':>10}  {'SHA256':<12}  MODULES")
    for e in response.experts:
        print(f"{e.name:<20} {e.rank:>4} {('yes' if e.resident else 'no'):<8} {e.parameter_bytes:>10}  "
              f"{e.sha256[:12]:<12}  {','.join(e.target_modules)}")
    return 0


def cmd_routers(client, args):
    response, _ = client.inference.ListRouters.with_call(
        client.pb.ListRoutersRequest(), metadata=client.metadata(), timeout=client.timeout)
    if args.json:
        print(json.dumps(to_dict(response)))
        return 0
    print(f"{'NAME':<20} {'GRANULARITY':<12} EXPERTS")
    for r in response.routers:
        print(f"{r.name:<20} {r.granularity:<12} {','.join(r.experts)}")
    return 0


def cmd_info(client, args):
    response, call = client.inference.Info.with_call(
        client.pb.InfoRequest(), metadata=client.metadata(), timeout=client.timeout)
    info = to_dict(response)
    replica = replica_of(call)
    if args.json:
        print(json.dumps({**info, "replica": replica}))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ",".join(map(str, value))
        print(f"{key}: {value}")
    if replica:
        print(f"replica (metadata): {replica}")
    return 0


def cmd_health(client, args):
    response, _ = client.health.Check.with_call(
        client.health_pb.HealthCheckRequest(service=args.service),
        metadata=client.metadata(), timeout=client.timeout)
    status = client.health_pb.HealthCheckResponse.ServingStatus.Name(response.status)
    print(status)
    return 0 if response.status == client.health_pb.HealthCheckResponse.SERVING else 1


# --- Command line --------------------------------------------------------------------------------

def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", metavar="HOST:PORT", default=os.environ.get("SWITCHYARD_SERVER"),
                        required="SWITCHYARD_SERVER" not in os.environ,
                        help="server address (default: $SWITCHYARD_SERVER)")
    common.add_argument("--token", metavar="T", default=os.environ.get("SWITCHYARD_TOKEN"),
                        help="send `authorization: Bearer T` (default: $SWITCHYARD_TOKEN)")
    common.add_argument("--timeout", metavar="S", type=float, default=60.0,
                        help="deadline of the call in seconds; 0: none (default 60)")
    common.add_argument("--protos", metavar="DIR", default=os.environ.get("SWITCHYARD_PROTOS", DEFAULT_PROTOS),
                        help="the Protos directory to compile the stubs from (default: the repository's)")

    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", parents=[common], help="stream a completion of a prompt")
    g.add_argument("prompt", help="the prompt text ('-': read it from standard input)")
    route = g.add_mutually_exclusive_group()
    route.add_argument("--expert", metavar="NAME[=W]", type=parse_expert, action="append", default=[],
                       help="apply a registry expert, weight W (default 1); repeat for a weighted mix")
    route.add_argument("--router", metavar="NAME", help="route with a router the server holds")
    g.add_argument("--max-tokens", metavar="N", type=int, default=0, help="most new tokens (0: server default)")
    g.add_argument("--temperature", metavar="T", type=float, default=0.0, help="0: greedy (default)")
    g.add_argument("--top-k", metavar="K", type=int, default=0, help="0: off (default)")
    g.add_argument("--top-p", metavar="P", type=float, default=0.0, help="in (0, 1]; 0: off (default)")
    g.add_argument("--seed", metavar="S", type=int, default=0, help="sampling seed")
    g.add_argument("--stop", metavar="STRING", action="append", default=[], help="stop string (repeatable)")
    g.add_argument("--ignore-eos", action="store_true", help="keep going past the end-of-sequence token")
    g.add_argument("--request-id", metavar="ID", default="", help="request id for the server's logs")
    g.add_argument("--trace", action="store_true", help="print the routing decisions of every token")
    g.add_argument("--json", action="store_true",
                   help='print one JSON object {"text", "token_ids", "finish_reason", "replica", ...}')
    g.set_defaults(run=cmd_generate)

    for name, run, text in (("experts", cmd_experts, "list the experts in the server's registry"),
                            ("routers", cmd_routers, "list the routers the server holds"),
                            ("info", cmd_info, "model, limits and counters of the server")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("--json", action="store_true", help="print the response as JSON")
        p.set_defaults(run=run)

    h = sub.add_parser("health", parents=[common], help="grpc.health.v1 check; exit 0 only when SERVING")
    h.add_argument("--service", metavar="NAME", default="",
                   help="service to check (default: '', the server as a whole)")
    h.set_defaults(run=cmd_health)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    client = Client(args)
    try:
        return args.run(client, args)
    except grpc.RpcError as err:
        print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        client.channel.close()


if __name__ == "__main__":
    sys.exit(main())
