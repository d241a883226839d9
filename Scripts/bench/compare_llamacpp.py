"""Switchyard vs llama.cpp on the same GGUF, same machine, one run after the other.

    python3 -m venv .venv && .venv/bin/pip install llama-cpp-python   # builds llama.cpp (native flags)
    .venv/bin/python Scripts/bench/compare_llamacpp.py [--model FILE.gguf] [--rounds 3] [--threads 2]

llama.cpp (through llama-cpp-python): prefill of a 64-token prompt, then greedy decode of 32
tokens at batch 1, timed around the C calls. Switchyard: `switchyard bench decode` (release build)
on the same file, --weights native and f32. Rounds alternate between the two; medians are printed.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def llamacpp_round(llm, threads, prompt_tokens, decode_tokens):
    llm.reset()
    tokens = [(7 * i + 11) % 30000 + 100 for i in range(prompt_tokens)]
    start = time.perf_counter()
    llm.eval(tokens)
    prefill = prompt_tokens / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(decode_tokens):
        logits = llm.scores[llm.n_tokens - 1]
        llm.eval([int(logits.argmax())])
    decode = decode_tokens / (time.perf_counter() - start)
    return prefill, decode


def switchyard_round(path, threads, weights, prompt_tokens, decode_tokens):
    binary = ROOT / ".build/release/switchyard"
    out = subprocess.check_output([str(binary), "bench", "decode", "--model", str(path), "--weights", weights,
                                   "--threads", str(threads), "--prompt-tokens", str(prompt_tokens),
                                   "--decode-tokens", str(decode_tokens), "--format", "json"], text=True)
    j = json.loads(out)
    return j["prefill_tokens_per_s"], j["decode_tokens_per_s_b1"], j.get("decode_tokens_per_s_b8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--decode-tokens", type=int, default=32)
    a = ap.parse_args()
    path = pathlib.Path(a.model or subprocess.check_output([str(ROOT / "Scripts/models/fetch-smollm2-gguf")], text=True).strip())
    subprocess.check_call(["swift", "build", "-c", "release", "--product", "switchyard"], cwd=ROOT, stdout=subprocess.DEVNULL)
    import llama_cpp
    model = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=a.threads, n_threads_batch=a.threads,
                            n_batch=512, logits_all=False, verbose=False)
    rows = {"llama.cpp": [], "switchyard native": [], "switchyard f32": []}
    for r in range(a.rounds):
        rows["llama.cpp"].append(llamacpp_round(model, a.threads, a.prompt_tokens, a.decode_tokens) + (None,))
        rows["switchyard native"].append(switchyard_round(path, a.threads, "native", a.prompt_tokens, a.decode_tokens))
        rows["switchyard f32"].append(switchyard_round(path, a.threads, "f32", a.prompt_tokens, a.decode_tokens))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    base = statistics.median(x[1] for x in rows["llama.cpp"])
    print(f"{path.name}, {a.threads} threads, prefill {a.prompt_tokens} tokens, decode {a.decode_tokens} tokens, median of {a.rounds} rounds")
    print(f"{'engine':<20} {'prefill tok/s':>14} {'decode b1 tok/s':>16} {'vs llama.cpp':>13} {'decode b8 tok/s':>16}")
    for name, rs in rows.items():
        p, d = statistics.median(x[0] for x in rs), statistics.median(x[1] for x in rs)
        b8 = [x[2] for x in rs if x[2] is not None]
        print(f"{name:<20} {p:>14.1f} {d:>16.1f} {d / base:>12.2f}x {statistics.median(b8) if b8 else float('nan'):>16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
