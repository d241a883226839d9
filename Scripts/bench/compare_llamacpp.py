"""Switchyard vs llama.cpp on the same GGUF files, same machine, rounds alternating between them.

    python3 -m venv .venv && .venv/bin/pip install llama-cpp-python gguf numpy   # builds llama.cpp (native flags)
    .venv/bin/python Scripts/bench/compare_llamacpp.py [--types q4_1,q8_0,f16,q4_k_m] [--rounds 3] [--threads 2]
        [--prompt-tokens 64] [--decode-tokens 32] [--context 2048] [--expert DIR] [--batch 8]

The real SmolLM2-135M-Instruct Q4_1 GGUF is fetched by Scripts/models/fetch-smollm2-gguf; the Q8_0,
F16 and BF16 files (--types q4_1,q8_0,f16,bf16) are derived from it with gguf-py (dequantised, then
re-encoded: same shapes, same metadata) into the same cache directory; `q4_k_m` and `q5_k_m` are
(and q3_k_m, q2_k, iq4_xs) quantised from the F16 file by llama.cpp itself (llama_model_quantize),
the mixes users download. `f16_of_bf16` is the BF16
file written as F16: halves that are all exactly bfloat16 values, as `convert_hf_to_gguf.py
--outtype f16` writes a checkpoint trained in bfloat16 (Switchyard keeps such tensors as BF16).
Each engine runs in its own process per round, so each reports its own resident memory:
- llama.cpp (llama-cpp-python): prefill of a P-token prompt, then greedy decode of D tokens at
  batch 1, timed around the C calls; RSS after the run (llama.cpp maps the file: pages are
  resident once touched).
- Switchyard: `switchyard bench decode --batch 1` (release build) on the same file, --weights
  native; RSS after load (it copies the weights it keeps).
With --context N, a second set of rows: prefill of N tokens and decode at depth N. With --expert,
Switchyard's batch-1 decode with that PEFT adapter unmerged is reported beside its base. With
--batch N, a batched table: N sequences (prompts of P, P+3, ... random tokens, the lengths
`switchyard bench decode` uses) prefilled together, then decoded greedily in
lockstep, one token each per step: llama.cpp through its multi-sequence batch API (llama_batch,
one sequence id per row, a unified KV cache), Switchyard as `bench decode --batch N` reports it.
Medians over the rounds are printed; ratios are Switchyard / llama.cpp from the same rounds.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def llamacpp_worker(path, threads, prompt_tokens, decode_tokens):
    """One round of llama.cpp in this process; prints a JSON line."""
    import llama_cpp
    n_ctx = prompt_tokens + decode_tokens + 8
    # n_batch = n_ctx: the whole prompt is one llama_decode call, and llama-cpp-python sizes its
    # score rows by n_batch.
    llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                          n_batch=n_ctx, n_ubatch=min(512, n_ctx), logits_all=False, verbose=False)
    vocab = llm.n_vocab()
    tokens = [(7 * i + 11) % (vocab - 200) + 100 for i in range(prompt_tokens)]
    best_prefill = float("inf")
    for _ in range(2):  # best of two, as Switchyard's bench takes the best of three
        llm.reset()
        start = time.perf_counter()
        llm.eval(tokens)
        best_prefill = min(best_prefill, time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(decode_tokens):
        logits = llm.scores[llm.n_tokens - 1]
        llm.eval([int(logits.argmax())])
    decode = decode_tokens / (time.perf_counter() - start)
    print(json.dumps({"prefill": prompt_tokens / best_prefill, "decode": decode, "rss": rss_bytes()}))


def llamacpp_batch_worker(path, threads, prompt_tokens, decode_tokens, n):
    """llama.cpp decoding n sequences together, one token each per llama_decode; prints a JSON line."""
    import ctypes
    import llama_cpp as L
    import numpy as np
    L.llama_backend_init()
    model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
    cp = L.llama_context_default_params()
    cp.n_ctx = n * (prompt_tokens + 3 * n + decode_tokens + 8)
    cp.n_batch, cp.n_ubatch, cp.n_seq_max, cp.kv_unified = cp.n_ctx, 512, n, True
    cp.n_threads = cp.n_threads_batch = threads
    ctx = L.llama_init_from_model(model, cp)
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    batch = L.llama_batch_init(cp.n_ctx, 0, n)
    def submit(rows):  # (token, position, sequence, wants logits)
        batch.n_tokens = len(rows)
        for i, (tok, pos, seq, out) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = tok, pos, 1, out
            batch.seq_id[i][0] = seq
        if L.llama_decode(ctx, batch) != 0:
            raise SystemExit("llama_decode failed")
    def argmax(i):
        return int(np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(vocab,)).argmax())
    rng = np.random.default_rng(7)
    prompts = [[int(t) for t in rng.integers(0, vocab, prompt_tokens + 3 * s)] for s in range(n)]
    rows = [(t, p, s, p == len(pr) - 1) for s, pr in enumerate(prompts) for p, t in enumerate(pr)]
    submit(rows)
    nxt = [argmax(i) for i, r in enumerate(rows) if r[3]]
    pos = [len(pr) for pr in prompts]
    def step():
        nonlocal nxt
        submit([(nxt[s], pos[s], s, True) for s in range(n)])
        for s in range(n):
            pos[s] += 1
        nxt = [argmax(s) for s in range(n)]
    step()  # warm-up, as Switchyard's
    start = time.perf_counter()
    for _ in range(decode_tokens):
        step()
    print(json.dumps({"decode_n": n * decode_tokens / (time.perf_counter() - start)}))


def llamacpp_batch_round(path, threads, prompt_tokens, decode_tokens, n):
    out = subprocess.check_output([sys.executable, __file__, "--llamacpp-batch-worker", str(path), "--threads", str(threads),
                                   "--prompt-tokens", str(prompt_tokens), "--decode-tokens", str(decode_tokens),
                                   "--batch", str(n)], text=True)
    return json.loads(out.strip().splitlines()[-1])


def llamacpp_round(path, threads, prompt_tokens, decode_tokens):
    out = subprocess.check_output([sys.executable, __file__, "--llamacpp-worker", str(path), "--threads", str(threads),
                                   "--prompt-tokens", str(prompt_tokens), "--decode-tokens", str(decode_tokens)], text=True)
    return json.loads(out.strip().splitlines()[-1])


def switchyard_round(path, threads, prompt_tokens, decode_tokens, expert, n=1):
    cmd = [str(ROOT / ".build/release/switchyard"), "bench", "decode", "--model", str(path), "--weights", "native",
           "--threads", str(threads), "--prompt-tokens", str(prompt_tokens), "--decode-tokens", str(decode_tokens),
           "--batch", str(n), "--format", "json"]
    if expert:
        cmd += ["--expert", expert]
    j = json.loads(subprocess.check_output(cmd, text=True).strip().splitlines()[-1])
    return {"prefill": j["prefill_tokens_per_s"], "decode": j["decode_tokens_per_s_b1"],
            "rss": j.get("resident_bytes_after_load"), "expert": j.get("expert_vs_base"), "weights": j["weights"],
            "decode_n": j.get("decode_tokens_per_s_b8"), "cap_n": j.get("weight_products_speedup_ceiling")}


def derive(source, qtype, target):
    """Re-encodes `source` with every 2-D tensor in `qtype` (Q8_0, F16 or BF16); 1-D tensors stay F32."""
    import numpy as np
    from gguf import GGMLQuantizationType as T, GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize, quantize
    r = GGUFReader(source)
    w = GGUFWriter(str(target) + ".part", r.fields["general.architecture"].contents())
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = f.types[0]
        w.add_key_value(name, f.contents(), vtype, f.types[1] if vtype == GGUFValueType.ARRAY else None)
    for t in r.tensors:
        data = dequantize(t.data, t.tensor_type).astype(np.float32)
        if data.ndim == 1:
            w.add_tensor(t.name, data)
        elif qtype == "f16":
            w.add_tensor(t.name, data.astype(np.float16))
        else:
            qt = T.BF16 if qtype == "bf16" else T.Q8_0
            q = quantize(data, qt)
            w.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(str(target) + ".part", target)


# llama.cpp's own quantiser (llama_model_quantize) for the K-quant mixes; its ftype numbers.
LLAMA_FTYPES = {"q4_k_m": 15, "q5_k_m": 17, "q3_k_m": 12, "q2_k": 10, "iq4_xs": 30}


def derive_llamacpp(source, ftype, target):
    """Quantises the F16 file `source` as llama.cpp's `llama-quantize` does (`ftype`): a Q4_K_M,
    Q5_K_M, Q3_K_M, Q2_K or IQ4_XS file as users download them. SmolLM2-135M's 576-wide rows are no whole 256-value
    super-blocks, so llama.cpp falls back to Q5_0 (Q4_K_M) or Q5_1 (Q5_K_M) for those tensors."""
    import ctypes
    import llama_cpp
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 2
    if llama_cpp.llama_model_quantize(str(source).encode(), (str(target) + ".part").encode(), ctypes.byref(p)) != 0:
        raise SystemExit(f"llama_model_quantize failed on {source}")
    os.replace(str(target) + ".part", target)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a Q4_1 GGUF (default: the fetched SmolLM2-135M-Instruct)")
    ap.add_argument("--types", default="q4_1,q8_0,f16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--context", type=int, default=0, help="also prefill N tokens and decode at depth N")
    ap.add_argument("--expert", help="a PEFT adapter directory for Switchyard's unmerged-expert figure")
    ap.add_argument("--batch", type=int, default=1, help="also decode N sequences together (N > 1)")
    ap.add_argument("--llamacpp-worker", help=argparse.SUPPRESS)
    ap.add_argument("--llamacpp-batch-worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.llamacpp_batch_worker:
        llamacpp_batch_worker(a.llamacpp_batch_worker, a.threads, a.prompt_tokens, a.decode_tokens, a.batch)
        return 0
    if a.llamacpp_worker:
        llamacpp_worker(a.llamacpp_worker, a.threads, a.prompt_tokens, a.decode_tokens)
        return 0
    q41 = pathlib.Path(a.model or subprocess.check_output([str(ROOT / "Scripts/models/fetch-smollm2-gguf")], text=True).strip())
    files = {}
    for t in a.types.split(","):
        target = q41 if t == "q4_1" else q41.with_name(q41.name.replace("Q4_1", t.upper()))
        # f16_of_bf16: the bf16 file (derived first when needed) re-encoded as F16.
        source = q41.with_name(q41.name.replace("Q4_1", "BF16")) if t == "f16_of_bf16" else q41
        if t == "f16_of_bf16" and not source.exists():
            derive(str(q41), "bf16", source)
        if t in LLAMA_FTYPES:
            source = q41.with_name(q41.name.replace("Q4_1", "F16"))
            if not source.exists():
                derive(str(q41), "f16", source)
        if t != "q4_1" and not target.exists():
            print(f"deriving {target.name} from {source.name}", file=sys.stderr)
            if t in LLAMA_FTYPES:
                derive_llamacpp(source, LLAMA_FTYPES[t], target)
            else:
                derive(str(source), "f16" if t == "f16_of_bf16" else t, target)
        files[t] = target
    subprocess.check_call(["swift", "build", "-c", "release", "--product", "switchyard"], cwd=ROOT, stdout=subprocess.DEVNULL)
    shapes = [(a.prompt_tokens, a.decode_tokens)] + ([(a.context, a.decode_tokens)] if a.context else [])
    results = {}
    for r in range(a.rounds):
        for t, path in files.items():
            for (p, d) in shapes:
                key = (t, p)
                results.setdefault(key, {"llama.cpp": [], "switchyard": []})
                lc = llamacpp_round(path, a.threads, p, d)
                if a.batch > 1:
                    lc.update(llamacpp_batch_round(path, a.threads, p, d, a.batch))
                results[key]["llama.cpp"].append(lc)
                results[key]["switchyard"].append(switchyard_round(path, a.threads, p, d, a.expert, a.batch))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    def med(rows, k):
        vals = [x[k] for x in rows if x.get(k) is not None]
        return statistics.median(vals) if vals else float("nan")

    print(f"{a.threads} threads, decode {a.decode_tokens} tokens at batch 1, medians of {a.rounds} rounds (each engine in its own process)")
    fw = max(8, *(len(t) for t in files))  # the file column's width
    header = f"{'file':<{fw}} {'prompt':>6} | {'llama.cpp prefill':>17} {'decode':>7} {'RSS MiB':>8} | {'Switchyard prefill':>18} {'decode':>7} {'RSS MiB':>8} | {'prefill x':>9} {'decode x':>8}"
    if a.expert:
        header += f" | {'expert/base':>11}"
    print(header)
    for (t, p), rows in results.items():
        lp, ld, lr = med(rows["llama.cpp"], "prefill"), med(rows["llama.cpp"], "decode"), med(rows["llama.cpp"], "rss")
        sp, sd, sr = med(rows["switchyard"], "prefill"), med(rows["switchyard"], "decode"), med(rows["switchyard"], "rss")
        # Per-round ratios, then their median: both engines ran back to back in each round.
        px = statistics.median(s["prefill"] / l["prefill"] for s, l in zip(rows["switchyard"], rows["llama.cpp"]))
        dx = statistics.median(s["decode"] / l["decode"] for s, l in zip(rows["switchyard"], rows["llama.cpp"]))
        line = (f"{t:<{fw}} {p:>6} | {lp:>17.1f} {ld:>7.1f} {lr / 2**20:>8.0f} | {sp:>18.1f} {sd:>7.1f} {sr / 2**20:>8.0f} |"
                f" {px:>8.2f}x {dx:>7.2f}x")
        if a.expert:
            line += f" | {med(rows['switchyard'], 'expert'):>10.2f}x"
        print(line)
    if a.batch > 1:
        n = a.batch
        print(f"\ndecode of {n} sequences together (tokens/s, all sequences), beside batch 1 from the same rounds;"
              f" cap: the b{n}/b1 Switchyard's weight products alone allow (bench decode's weight_products_speedup_ceiling)")
        print(f"{'file':<{fw}} {'prompt':>6} | {'llama.cpp b1':>12} {f'b{n}':>7} {f'b{n}/b1':>7} | {'Switchyard b1':>13} {f'b{n}':>7} {f'b{n}/b1':>7} {'cap':>6} | {f'b{n} x':>6}")
        for (t, p), rows in results.items():
            l1, ln, s1, sn = (med(rows[e], k) for e in ("llama.cpp", "switchyard") for k in ("decode", "decode_n"))
            nx = statistics.median(s["decode_n"] / l["decode_n"] for s, l in zip(rows["switchyard"], rows["llama.cpp"]))
            cap = med(rows["switchyard"], "cap_n")
            print(f"{t:<{fw}} {p:>6} | {l1:>12.1f} {ln:>7.1f} {ln / l1:>6.2f}x | {s1:>13.1f} {sn:>7.1f} {sn / s1:>6.2f}x {cap:>5.2f}x | {nx:>5.2f}x")
    print("Switchyard weights: " + "; ".join(f"{t}: {results[(t, shapes[0][0])]['switchyard'][0]['weights']}" for t in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
