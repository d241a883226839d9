#!/usr/bin/env python3
"""Train the demo's learned routers on the task mixture and export them to `Models/routers/`.

    .venv/bin/python Scripts/models/train_routers.py              # both routers -> Models/routers/
    .venv/bin/python Scripts/models/train_routers.py --only token # one of them
    .venv/bin/python Scripts/models/train_routers.py --quick --models DIR   # smoke run

Needs what `train_demo.py` wrote (`Models/base`, `Models/experts/<task>`, `Models/tasks`).
Writes (router.proto wire format, checked by Scripts/fixtures/check_router_bytes.py):

    Models/routers/token.pb     TokenGate: a global gate at layer 0 over the 8 experts on the mean
                                embedding of the recent text (prompt routed whole, every_n 8),
                                fitted as a task classifier, experts frozen
    Models/routers/smora.pb     RankGate: rank-as-expert LoRA (SMoRA), R 64 per projection,
                                8 active ranks per token, softmax over the selected gate scores,
                                the prompt routed whole (its ranks chosen once per module from the
                                mean of the module's input over the prompt's last 40 tokens; `--set
                                smora_prompt='"per_token"'`: every prompt token chooses its own);
                                trained from scratch on the mixture (`--set smora_init='"experts"'`:
                                the former initialisation from the experts' SVD blocks)
    Models/routers/README.md    how they were trained, accuracy measured here in Python
    Models/routers/eval_python.json

The sentence-level router (`Models/routers/sentence.pb`) is trained by Switchyard itself
(`switchyard router train`) and is left alone here.

Training data: the 8 training tasks' `train.jsonl`, mixed; loss = cross-entropy on the completion
tokens + <|eos|> (the experts' own objective), base model and experts frozen.

Routing semantics (Scripts/fixtures/README.md, "Routers") are applied with forward hooks on the
float32 base model: a pre-hook on each decoder layer sees the hidden state entering it (before its
RMSNorm) and computes that layer's expert mix for every token; a hook on each projection adds
sum_e w[t, e] * s_e * B_e A_e x (experts) or the SMoRA rank update.  Training uses exactly the
inference forward (top-k, renormalised; gradients flow through the selected weights).  After export, the routers are re-read from their
bytes and checked against the batch-1 PyTorch reference of router_fixtures.py (logits within
1e-4), then evaluated by greedy decoding (KV cache, stop at <|eos|>) on every test set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
sys.path.insert(0, str(SCRIPT_DIR))
sys.path.insert(0, str(REPO_ROOT / "Scripts" / "fixtures"))

import train_demo as td  # noqa: E402  (prompt convention, task names, base loading, LR schedule)
import router_proto as rp  # noqa: E402  (router_pb2 compiled on the fly, tensor decoding)
import router_fixtures as rf  # noqa: E402  (the PyTorch reference of every router kind)
import check_router_bytes as crb  # noqa: E402

GENERATOR = "Scripts/models/train_routers.py"
PROJECTIONS = rf.PROJECTIONS  # (parent, name): q, k, v, o, gate, up, down
TOKEN_TOP_K = 1
SMORA_RANK = 64
SMORA_TOP_K = 8
# Softmax over the 8 selected scores sums to 1; with scale = top_k, uniform activations over one
# expert's 8 ranks give exactly that expert's rank-8 (SVD-truncated) update.
SMORA_SCALE = float(SMORA_TOP_K)
REF_TOL = 1e-4  # max |logits(fast path) - logits(router_fixtures reference)|

FULL = dict(
    token_layer=0, token_per_task=600, token_steps=3000, token_l2=0.0, token_window=40, token_every_n=8,
    smora_batch=32, smora_steps=3000, smora_lr_ab=3e-3, smora_lr_gate=5e-3, smora_warmup=20,
    smora_calib_per_task=32, classifier_steps=200, calib_mix="own", classifier_l2=1e-4, smora_resume="",
    smora_init="scratch", smora_prompt="whole", smora_window=40, eval_limit=0, ref_examples=1,
)
QUICK = dict(
    token_layer=0, token_per_task=16, token_steps=20, token_l2=1e-4, token_window=0, token_every_n=2,
    smora_batch=8, smora_steps=6, smora_lr_ab=1e-3, smora_lr_gate=5e-3, smora_warmup=2,
    smora_calib_per_task=8, classifier_steps=20, calib_mix="own", classifier_l2=1e-4, smora_resume="",
    smora_init="scratch", smora_prompt="whole", smora_window=0, eval_limit=8, ref_examples=1,
)
SEEDS = dict(token=8100, token_batches=8101, smora=8200, smora_batches=8201)


# --------------------------------------------------------------------------
# Experts
# --------------------------------------------------------------------------

def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_experts(models: Path, names: list[str]) -> list[dict]:
    """Per expert: {(layer, proj): (A [r, in], B [out, r], scaling)} exactly as PEFT loaded
    them (scaling from adapter_config.json, PEFT's own module matching)."""
    import re
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    pm = PeftModel.from_pretrained(td.load_base(models), str(models / "experts" / names[0]), adapter_name=names[0])
    for n in names[1:]:
        pm.load_adapter(str(models / "experts" / n), adapter_name=n)
    experts: list[dict] = [{} for _ in names]
    for name, mod in pm.base_model.model.named_modules():
        if not isinstance(mod, LoraLayer):
            continue
        m = re.fullmatch(r"model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)", name)
        assert m, name
        for e, n in enumerate(names):
            if n in mod.lora_A:
                experts[e][(int(m[1]), m[3])] = (mod.lora_A[n].weight.detach().clone().float(),
                                                 mod.lora_B[n].weight.detach().clone().float(),
                                                 float(mod.scaling[n]))
    del pm
    return experts


# --------------------------------------------------------------------------
# The routed forward: batched, differentiable, hooks
# --------------------------------------------------------------------------

def select_topk(probs: torch.Tensor, k: int) -> torch.Tensor:
    """TOP_K over the last dim: the k largest (ties: lower index), renormalised, scattered back
    into a dense [..., E] tensor (zeros elsewhere).  Gradients flow through the kept values."""
    vals, idx = torch.sort(probs, dim=-1, descending=True, stable=True)
    top = vals[..., :k]
    return torch.zeros_like(probs).scatter(-1, idx[..., :k], top / top.sum(-1, keepdim=True))


class Routed:
    """The base model plus, at every projection, the experts' update weighted by a per-token mix
    (`gate(l, h)` called by a pre-hook on layer l with the hidden state entering it) and/or a
    SMoRA rank update (`rank[(l, proj)]`)."""

    def __init__(self, model, experts: list[dict]):
        self.model = model
        self.num_layers = len(model.model.layers)
        self.num_experts = len(experts)
        model.requires_grad_(False)
        # (l, proj) -> A_cat [sum r, in], B_cat [out, sum r], owner [sum r] (expert of each rank), s [sum r]
        self.cat: dict = {}
        for l in range(self.num_layers):
            for _, proj in PROJECTIONS:
                parts = [(e, ex[(l, proj)]) for e, ex in enumerate(experts) if (l, proj) in ex]
                if not parts:
                    continue
                a = torch.cat([p[0] for _, p in parts], 0)
                b = torch.cat([p[1] for _, p in parts], 1)
                owner = torch.cat([torch.full((p[0].shape[0],), e, dtype=torch.long) for e, p in parts])
                s = torch.cat([torch.full((p[0].shape[0],), p[2]) for _, p in parts])
                self.cat[(l, proj)] = (a, b, owner, s)
        self.gate = None        # callable(l, h [B, T, H]) -> mix [B, T, E]
        self.rank = None        # {(l, proj): callable(x) -> delta}
        self.mix: dict = {}
        # Rank gates with PROMPT_ROUTING_WHOLE: `prompt` = (the mask [B, T] of the forward's prompt
        # rows, the mask of the rows averaged: the prompt's last `whole_window`, 0: all of it);
        # every projection scores the mean of its input over the latter for the former. None:
        # every row per token.
        self.whole_rank = False
        self.whole_window = 0
        self.prompt = None
        model.register_forward_pre_hook(self._whole_pre_hook, with_kwargs=True)
        for l, layer in enumerate(model.model.layers):
            layer.register_forward_pre_hook(self._pre_hook(l), with_kwargs=True)
            for parent, proj in PROJECTIONS:
                getattr(getattr(layer, parent), proj).register_forward_hook(self._post_hook(l, proj))

    def _pre_hook(self, l: int):
        def hook(module, args, kwargs):
            if self.gate is not None:
                h = args[0] if args else kwargs["hidden_states"]
                self.mix[l] = self.gate(l, h)
        return hook

    def _whole_pre_hook(self, module, args, kwargs):
        """PROMPT_ROUTING_WHOLE for rank gates: a forward without a cache holds whole prompts
        (training: the rows whose label is -100 inside the attention mask; inference: every row),
        so each projection sees all of a prompt's inputs at once; a forward with a cache holds
        generated tokens, routed per token."""
        self.prompt = None
        if self.whole_rank and kwargs.get("past_key_values") is None:
            ids = kwargs["input_ids"]
            mask = kwargs.get("attention_mask")
            mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
            labels = kwargs.get("labels")
            rows = mask if labels is None else mask & (labels == -100)
            averaged = rows
            if self.whole_window:
                # Prompt rows are each sequence's first ones (right padding).
                pos = torch.arange(rows.shape[1])[None, :]
                averaged = rows & (pos >= rows.sum(1, keepdim=True) - self.whole_window)
            self.prompt = (rows, averaged)
        return None

    def _post_hook(self, l: int, proj: str):
        def hook(module, inputs, output):
            x = inputs[0]
            delta = None
            w = self.mix.get(l)
            if w is not None and (l, proj) in self.cat:
                a, b, owner, s = self.cat[(l, proj)]
                delta = ((x @ a.T) * (w[..., owner] * s)) @ b.T
            if self.rank is not None and (l, proj) in self.rank:
                d = self.rank[(l, proj)](x)
                delta = d if delta is None else delta + d
            return output if delta is None else output + delta
        return hook

    def configure(self, gate=None, rank=None, whole_rank: bool = False, whole_window: int = 0) -> None:
        self.gate, self.rank, self.mix = gate, rank, {}
        self.whole_rank, self.whole_window, self.prompt = whole_rank, whole_window, None

    def fixed(self, mix: torch.Tensor) -> None:
        """The same mix [B or 1, 1, E] at every layer and token (oracle / sentence-like)."""
        self.configure(gate=lambda l, h: mix.expand(h.shape[0], h.shape[1], -1))


def rank_delta_fn(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor, scale: float, k: int, temperature: float,
                  dense: bool = False, engine: Routed | None = None):
    """SMoRA (RankGate, SOFTMAX): scores = G x; the k highest (ties: lower index); activations =
    softmax(selected / T); delta = scale * sum_sel act_i B[:, i] (A[i, :] x).  With `engine` (a
    rank gate with PROMPT_ROUTING_WHOLE), the prompt rows (`engine.prompt[0]`, [B, T]) all score
    G·m instead, m the mean of this projection's input over the sequence's prompt rows (its last
    `context_window`: `engine.prompt[1]`), in this same pass: the ranks chosen at earlier
    projections already applied."""
    def delta(x: torch.Tensor) -> torch.Tensor:
        scores = x @ g.T
        if engine is not None and engine.prompt is not None:
            rows, averaged = engine.prompt
            w = averaged[..., None].to(x.dtype)
            mean = (x * w).sum(1) / w.sum(1).clamp(min=1)
            scores = torch.where(rows[..., None], (mean @ g.T)[:, None, :], scores)
        u = x @ a.T
        if dense:
            coef = torch.softmax(scores / temperature, dim=-1)
        else:
            vals, idx = torch.sort(scores, dim=-1, descending=True, stable=True)
            act = torch.softmax(vals[..., :k] / temperature, dim=-1)
            coef = torch.zeros_like(scores).scatter(-1, idx[..., :k], act)
        return ((coef * u) @ b.T) * scale
    return delta


# --------------------------------------------------------------------------
# Router files
# --------------------------------------------------------------------------

def new_spec(name: str, granularity: str, selection: dict, experts: list[tuple[str, str]], metadata: dict):
    pb = rp.load_router_pb2()
    spec = pb.RouterSpec(name=name, version=1, base_model="Models/base",
                         granularity=getattr(pb, f"GRANULARITY_{granularity}"), selection=pb.Selection(**selection))
    for n, sha in experts:
        spec.experts.add(name=n, sha256=sha)
    for k, v in metadata.items():
        spec.metadata.add(key=k, value=str(v))
    return spec


def serialize(spec) -> bytes:
    return spec.SerializeToString(deterministic=True)


def parse(data: bytes):
    pb = rp.load_router_pb2()
    spec = pb.RouterSpec()
    spec.ParseFromString(data)
    assert serialize(spec) == data
    return spec


def T(msg) -> torch.Tensor:
    return torch.from_numpy(rp.tensor_to_numpy(msg).copy())


def engine_from_spec(engine: Routed, spec) -> None:
    """Configure `engine` to run a parsed RouterSpec (token-learned or rank) exactly."""
    pb = rp.load_router_pb2()
    temp = spec.selection.temperature or 1.0
    k = spec.selection.top_k or 1
    kind = spec.WhichOneof("gate")
    if kind == "token" and getattr(spec.token, "global"):
        # The demo's token router: global, context MEAN, the prompt routed whole.  The first
        # forward of a request is its whole prompt (greedy() and check_reference() feed it so).
        tg = spec.token
        assert tg.source_layer == 0 and tg.context == pb.CENTROID_CONTEXT_MEAN, "fast path: layer 0, context MEAN"
        assert spec.selection.prompt_routing == pb.PROMPT_ROUTING_WHOLE
        (lg,) = tg.layers
        w, b = T(lg.weight), T(lg.bias)
        experts = torch.tensor(list(lg.experts), dtype=torch.long)
        E = len(spec.experts)
        state: dict = {}

        window = spec.selection.context_window
        every_n = spec.selection.every_n or 1

        def gate(l: int, h: torch.Tensor):
            if l == 0:
                # The rows so far (the last `window` of them when set); the prompt: one decision
                # from its mean, then one generated token per row.  every_n: the token at absolute
                # position p keeps the mix decided at p - p % every_n (the prompt's mix when that
                # anchor lies inside the prompt), so only anchors past the prompt decide anew.
                assert "rows" not in state or h.shape[1] == 1
                rows = h if "rows" not in state else torch.cat([state["rows"], h], 1)
                state["rows"] = rows[:, -window:] if window else rows
                position = state.get("next", 0)
                state["next"] = position + h.shape[1]
                if "row_mix" not in state or position % every_n == 0:
                    probs = torch.softmax((state["rows"].mean(1) @ w.T + b) / temp, dim=-1)
                    local = select_topk(probs, min(k, len(experts)))
                    state["row_mix"] = torch.zeros(h.shape[0], E)
                    state["row_mix"][:, experts] = local
                state["mix"] = state["row_mix"][:, None, :].expand(h.shape[0], h.shape[1], E)
            return state["mix"]
        engine.configure(gate=gate)
    elif kind == "token":
        assert (spec.selection.mode or pb.SELECTION_TOP_K) == pb.SELECTION_TOP_K
        E = len(spec.experts)
        gates = {}
        for lg in spec.token.layers:
            gates[lg.layer] = (torch.tensor(list(lg.experts), dtype=torch.long), T(lg.weight),
                               T(lg.bias) if lg.HasField("bias") else None)

        def gate(l: int, h: torch.Tensor):
            if l not in gates:
                return None
            experts, w, b = gates[l]
            scores = h @ w.T + (b if b is not None else 0.0)
            local = select_topk(torch.softmax(scores / temp, dim=-1), min(k, len(experts)))
            out = torch.zeros(*h.shape[:-1], E)
            out[..., experts] = local
            return out
        engine.configure(gate=gate)
    elif kind == "rank":
        assert spec.rank.activation == pb.RANK_ACTIVATION_SOFTMAX
        whole = spec.selection.prompt_routing == pb.PROMPT_ROUTING_WHOLE
        engine.configure(rank={(m.layer, m.module): rank_delta_fn(T(m.a), T(m.b), T(m.gate), m.scale, k, temp,
                                                                  engine=engine if whole else None)
                               for m in spec.rank.modules}, whole_rank=whole,
                         whole_window=spec.selection.context_window)
    else:
        raise ValueError(kind)


# --------------------------------------------------------------------------
# Data, training loop, greedy evaluation
# --------------------------------------------------------------------------

def mixture_batches(examples: list[tuple[list[int], list[int]]], batch: int, steps: int, seed: int):
    """`steps` length-bucketed batches drawn from the whole mixture: each epoch shuffles, sorts
    within chunks of 8 batches (less padding), and shuffles the batches."""
    rng = random.Random(seed)
    produced = 0
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        chunks = [order[i:i + batch * 8] for i in range(0, len(order), batch * 8)]
        batches = []
        for ch in chunks:
            ch.sort(key=lambda i: len(examples[i][0]) + len(examples[i][1]))
            batches += [ch[i:i + batch] for i in range(0, len(ch), batch)]
        rng.shuffle(batches)
        for b in batches:
            yield td.collate([examples[i] for i in b])
            produced += 1
            if produced == steps:
                return


def train_loop(label: str, engine: Routed, groups: list[dict], batches, steps: int, warmup: int,
               aux=None, log_every: int = 25, on_step=None) -> dict:
    opt = torch.optim.Adam(groups, betas=(0.9, 0.99))
    peaks = [g["lr"] for g in opt.param_groups]
    params = [p for g in groups for p in g["params"]]
    t0 = time.perf_counter()
    running, running_aux = None, 0.0
    for step, (ids, mask, labels) in enumerate(batches):
        if on_step is not None:
            on_step(step)
        for g, peak in zip(opt.param_groups, peaks):
            g["lr"] = td.lr_at(step, steps, peak, warmup, floor=0.1)
        engine.mix = {}
        loss = engine.model(input_ids=ids, attention_mask=mask, labels=labels).loss
        total = loss
        extra = aux(mask) if aux is not None else None
        if extra is not None:
            total = total + extra
            running_aux = float(extra.detach())
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % log_every == 0 or step == steps - 1:
            print(f"[{label}] step {step:4d}/{steps} lm loss {running:.4f} aux {running_aux:.4f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
    engine.mix = {}
    return {"steps": steps, "final_loss": round(running, 4), "seconds": round(time.perf_counter() - t0, 1)}


@torch.no_grad()
def greedy(engine: Routed, prompts: list[list[int]], max_new: int, setup=None, chunk: int = 64) -> list[list[int]]:
    """Greedy decoding with a KV cache; prompts of equal length are batched (no padding).
    `setup(rows)` configures the engine for a batch (oracle: per-row mixes).  Routing is per
    token and causal, so this equals re-running the whole sequence at every step."""
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    out: list[list[int]] = [[] for _ in prompts]
    for _, idx in sorted(groups.items()):
        for s in range(0, len(idx), chunk):
            rows = idx[s:s + chunk]
            if setup is not None:
                setup(rows)
            x = torch.tensor([prompts[i] for i in rows], dtype=torch.long)
            res = engine.model(input_ids=x, use_cache=True)
            past = res.past_key_values
            nxt = res.logits[:, -1].argmax(-1)
            done = torch.zeros(len(rows), dtype=torch.bool)
            gen = []
            for step in range(max_new):
                gen.append(nxt)
                done |= nxt == td.EOS_ID
                if bool(done.all()) or step == max_new - 1:
                    break
                res = engine.model(input_ids=nxt[:, None], past_key_values=past, use_cache=True)
                past = res.past_key_values
                nxt = res.logits[:, -1].argmax(-1)
            gen_t = torch.stack(gen, 1).tolist()
            for r, i in enumerate(rows):
                g = gen_t[r]
                out[i] = g[:g.index(td.EOS_ID)] if td.EOS_ID in g else g
    engine.mix = {}
    return out


def evaluate(engine: Routed, tok, sets: dict[str, list[dict]], configure, limit: int = 0) -> dict[str, dict]:
    """Exact match per task: answer = decoded tokens before <|eos|>, answer.strip() == completion.strip()."""
    res = {}
    for name, rows in sets.items():
        rows = rows[:limit] if limit else rows
        maxn = max(len(tok.encode(r["completion"], add_special_tokens=False).ids) for r in rows) + 2
        prompts = [td.encode_example(tok, r["prompt"])[0] for r in rows]
        setup = configure(name, rows)
        gen = greedy(engine, prompts, maxn, setup=setup)
        ok = [tok.decode(g, skip_special_tokens=False).strip() == r["completion"].strip() for g, r in zip(gen, rows)]
        res[name] = {"n": len(rows), "correct": sum(ok), "accuracy": round(100.0 * sum(ok) / len(rows), 1)}
    return res


def with_mixed(res: dict, training: list[str]) -> dict:
    n = sum(res[t]["n"] for t in training)
    c = sum(res[t]["correct"] for t in training)
    out = dict(res)
    out["mixed"] = {"n": n, "correct": c, "accuracy": round(100.0 * c / n, 1)}
    return out


# --------------------------------------------------------------------------
# Token-level learned gate
# --------------------------------------------------------------------------

def fit_classifier(x: torch.Tensor, y: torch.Tensor, classes: int, bias: bool, steps: int,
                   l2: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Multinomial logistic regression, full batch, Adam on standardised-scale inputs (the weights
    are mapped back to the raw inputs).  Returns (weight [classes, in], bias or None, train acc)."""
    scale = x.pow(2).mean().sqrt().clamp_min(1e-8)
    xn = x / scale
    w = torch.zeros(classes, x.shape[1], requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    params = [w, b] if bias else [w]
    opt = torch.optim.Adam(params, lr=0.05)
    for _ in range(steps):
        logits = xn @ w.T + (b if bias else 0.0)
        loss = torch.nn.functional.cross_entropy(logits, y) + l2 * w.pow(2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = xn @ w.T + (b if bias else 0.0)
        acc = float((logits.argmax(-1) == y).float().mean())
    return (w.detach() / scale), (b.detach() if bias else None), acc


@torch.no_grad()
def window_means(h: torch.Tensor, window: int) -> torch.Tensor:
    """Row t: the mean of h[0..t], or of its last `window` rows (0: all)."""
    cs = torch.cumsum(h, 0)
    n = torch.arange(1, h.shape[0] + 1, dtype=h.dtype)
    if window:
        cs = cs - torch.cat([torch.zeros(window, h.shape[1]), cs[:-window]], 0)[:h.shape[0]]
        n = torch.clamp(n, max=window)
    return cs / n[:, None]


def context_features(engine: Routed, by_task: list[list], per_task: int, layer: int, window: int = 0):
    """The features a global context-MEAN gate at `layer` reads where its decisions matter: per
    example, the mean state entering `layer` over the whole prompt (the PROMPT_ROUTING_WHOLE
    decision, from a base pass) and, at every completion position t (the tokens the router
    routes one by one, teacher-forced), the mean over positions 0..t.  With layer 0 the states
    are the embeddings, which no routing changes, so these are exactly the inference features.
    Returns (x [N, hidden], task label [N], is_prompt [N])."""
    xs, ys, prompt = [], [], []
    engine.configure()
    for e, ex in enumerate(by_task):
        for p, c in ex[:per_task]:
            seen = {}

            def grab(l, h, seen=seen):
                if l == layer:
                    seen["h"] = h[0].detach().clone()
                return None
            engine.configure(gate=grab)
            engine.model(input_ids=torch.tensor([p + c]))
            h = seen["h"]
            means = window_means(h, window)
            rows = [len(p) - 1] + list(range(len(p), len(p) + len(c) - 1))
            xs.append(means[rows])
            ys += [e] * len(rows)
            prompt += [True] + [False] * (len(rows) - 1)
    engine.configure()
    return torch.cat(xs), torch.tensor(ys), torch.tensor(prompt)


def train_token(engine: Routed, by_task: list[list], cfg: dict, names: list[str], models: Path):
    """A global learned gate at layer `token_layer` with context MEAN and the prompt routed whole:
    per token, softmax(W · mean(h_0..h_t) + b), top-1, applied to every layer.  Trained as a task
    classifier (multinomial logistic regression, cross-entropy on the task label) on the features
    it reads at inference (context_features): the oracle's choice is the target, and with layer 0
    the features do not depend on the routing, so no pass through the experts is needed."""
    seed_all(SEEDS["token"])
    E = engine.num_experts
    layer = cfg["token_layer"]
    x, y, is_prompt = context_features(engine, by_task, cfg["token_per_task"], layer, cfg["token_window"])
    w, b, acc = fit_classifier(x, y, E, bias=True, steps=cfg["token_steps"], l2=cfg["token_l2"])
    with torch.no_grad():
        pred = (x @ w.T + b).argmax(-1)
    prompt_acc = float((pred[is_prompt] == y[is_prompt]).float().mean())
    gen_acc = float((pred[~is_prompt] == y[~is_prompt]).float().mean())
    print(f"[token] classifier on {len(y)} features ({int(is_prompt.sum())} whole prompts): training accuracy "
          f"{acc:.4f} (prompts {prompt_acc:.4f}, completion positions {gen_acc:.4f})", flush=True)
    info = {"features": len(y), "train_accuracy": round(acc, 4), "prompt_accuracy": round(prompt_acc, 4),
            "completion_accuracy": round(gen_acc, 4), "steps": cfg["token_steps"]}
    pb = rp.load_router_pb2()
    spec = new_spec("token", "TOKEN", dict(mode=pb.SELECTION_TOP_K, top_k=TOKEN_TOP_K, temperature=1.0,
                                           prompt_routing=pb.PROMPT_ROUTING_WHOLE,
                                           context_window=cfg["token_window"], every_n=cfg["token_every_n"]),
                    [(n, sha256_file(models / "experts" / n / "adapter_model.safetensors")) for n in names],
                    {"generator": GENERATOR, "seed": SEEDS["token"], "trained_on": "tasks/<8 training tasks>/train.jsonl",
                     "fit": f"logistic regression, {cfg['token_steps']} steps, {cfg['token_per_task']} examples per task"})
    setattr(spec.token, "global", True)
    spec.token.source_layer = layer
    spec.token.context = pb.CENTROID_CONTEXT_MEAN
    spec.token.layers.add(layer=layer, experts=list(range(E)), weight=rf.tensor_pb(w), bias=rf.tensor_pb(b))
    return spec, info


# --------------------------------------------------------------------------
# SMoRA
# --------------------------------------------------------------------------

def smora_init(engine: Routed, experts: list[dict], examples_by_task: list[list], cfg: dict) -> dict:
    """A, B: each expert's scaled update s_e B_e A_e truncated to R/E ranks by SVD (float64),
    concatenated along the rank (expert e owns ranks [e R/E, (e+1) R/E)); with SMORA_SCALE = k,
    uniform activations over one expert's block reproduce its truncated update.  An expert of
    lower rank is padded with random A rows and zero B columns.
    G: a linear task classifier per module (multinomial logistic regression without bias, fitted
    on the projection's inputs of calibration tokens of every task, each run with its own expert
    active); every row of expert e's block is class e's weight vector plus noise 1% of its norm
    (no exact ties).  The rows of a block are nearly equal, so a token classified as task e
    activates e's ranks with almost uniform softmax weights, i.e. (nearly) expert e's truncated
    update."""
    E = len(experts)
    per = SMORA_RANK // E
    assert per * E == SMORA_RANK, (SMORA_RANK, E)
    gen = torch.Generator().manual_seed(SEEDS["smora"])
    # Mean projection inputs per task, with the task's own expert active.
    sums: dict = {}
    counts: dict = {}
    sample: dict = {}  # (l, proj) -> up to 256 calibration token inputs per task
    cur = {"e": 0}
    handles = []

    def hook(l, proj):
        def h(module, inputs, output):
            x = inputs[0].reshape(-1, inputs[0].shape[-1])
            m = cur["mask"].reshape(-1).bool()
            x = x[m]
            key = (l, proj, cur["e"])
            sums[key] = sums.get(key, 0.0) + x.sum(0)
            counts[key] = counts.get(key, 0) + x.shape[0]
            sample.setdefault(key, []).append(x.clone())
        return h

    for l, layer in enumerate(engine.model.model.layers):
        for parent, proj in PROJECTIONS:
            handles.append(getattr(getattr(layer, parent), proj).register_forward_hook(hook(l, proj)))
    with torch.no_grad():
        for e in range(E):
            cur["e"] = e
            calib = torch.zeros(1, 1, E)
            if cfg["calib_mix"] == "own":
                calib[0, 0, e] = 1.0
            elif cfg["calib_mix"] == "uniform":
                calib[:] = 1.0 / E
            engine.fixed(calib)
            ex = examples_by_task[e][:cfg["smora_calib_per_task"]]
            for ids, mask, _ in mixture_batches(ex, 32, math.ceil(len(ex) / 32), seed=0):
                cur["mask"] = mask
                engine.model(input_ids=ids, attention_mask=mask)
    for hd in handles:
        hd.remove()
    engine.configure()

    params, accs = {}, {}
    for l in range(engine.num_layers):
        for parent, proj in PROJECTIONS:
            lin = getattr(getattr(engine.model.model.layers[l], parent), proj)
            a_rows, b_cols = [], []
            for e, ex in enumerate(experts):
                if (l, proj) in ex:
                    a, b, s = ex[(l, proj)]
                    dw = (b.double() @ a.double()) * s
                    u, sv, vh = torch.linalg.svd(dw, full_matrices=False)
                    kk = min(per, int((sv > 0).sum()))
                    ra = (sv[:kk].sqrt()[:, None] * vh[:kk]).float()
                    rb = (u[:, :kk] * sv[:kk].sqrt()[None, :]).float()
                else:
                    kk, ra, rb = 0, torch.zeros(0, lin.in_features), torch.zeros(lin.out_features, 0)
                if kk < per:  # pad: random A, zero B (no effect until trained)
                    ra = torch.cat([ra, 0.01 * torch.randn(per - kk, lin.in_features, generator=gen)], 0)
                    rb = torch.cat([rb, torch.zeros(lin.out_features, per - kk)], 1)
                a_rows.append(ra)
                b_cols.append(rb)
            a_cat = torch.cat(a_rows, 0)
            b_cat = torch.cat(b_cols, 1)
            xs = [torch.cat(sample.pop((l, proj, e)), 0) for e in range(E)]
            w, _, acc = fit_classifier(torch.cat(xs, 0), torch.cat([torch.full((len(x),), e) for e, x in enumerate(xs)]),
                                       E, bias=False, steps=cfg["classifier_steps"], l2=cfg["classifier_l2"])
            accs[(l, proj)] = acc
            g = w.repeat_interleave(per, 0)
            g = g + 0.01 * g.norm(dim=-1, keepdim=True) * torch.randn(g.shape, generator=gen) / math.sqrt(lin.in_features)
            params[(l, proj)] = [a_cat, b_cat, g]
    print("[smora] gate init: token-level task accuracy of the linear classifiers per layer (mean over "
          "projections): " + ", ".join(f"{sum(v for (l2, _), v in accs.items() if l2 == l) / len(PROJECTIONS):.2f}"
                                       for l in range(engine.num_layers)), flush=True)
    return params


def smora_scratch(engine: Routed) -> dict:
    """SMoRA as its paper trains it: one rank-R LoRA per module learned from the task mixture, not
    derived from the experts. A as PEFT initialises lora_A (Kaiming-uniform, a = sqrt(5): bound
    1/sqrt(in)), B zero (so training starts at the base model), G Gaussian with std 1/sqrt(in)."""
    gen = torch.Generator().manual_seed(SEEDS["smora"])
    params = {}
    for l in range(engine.num_layers):
        for parent, proj in PROJECTIONS:
            lin = getattr(getattr(engine.model.model.layers[l], parent), proj)
            bound = 1.0 / math.sqrt(lin.in_features)
            a = (torch.rand(SMORA_RANK, lin.in_features, generator=gen) * 2 - 1) * bound
            b = torch.zeros(lin.out_features, SMORA_RANK)
            g = torch.randn(SMORA_RANK, lin.in_features, generator=gen) * bound
            params[(l, proj)] = [a, b, g]
    return params


def train_smora(engine: Routed, experts: list[dict], examples, examples_by_task, cfg: dict, names: list[str]):
    seed_all(SEEDS["smora"])
    t0 = time.perf_counter()
    if cfg["smora_resume"]:
        # Continue training a written smora.pb (its A, B, G), with a fresh schedule.
        spec = parse(Path(cfg["smora_resume"]).read_bytes())
        init = {(m.layer, m.module): [T(m.a), T(m.b), T(m.gate)] for m in spec.rank.modules}
        print(f"[smora] resumed from {cfg['smora_resume']}", flush=True)
    elif cfg["smora_init"] == "scratch":
        init = smora_scratch(engine)
    else:
        init = smora_init(engine, experts, examples_by_task, cfg)
    init_s = time.perf_counter() - t0
    print(f"[smora] init ({cfg['smora_init']}): {init_s:.1f}s", flush=True)
    params = {k: [torch.nn.Parameter(t.clone()) for t in v] for k, v in init.items()}
    assert cfg["smora_prompt"] in ("whole", "per_token"), f"smora_prompt: whole or per_token, not {cfg['smora_prompt']!r}"
    whole = cfg["smora_prompt"] == "whole"
    engine.configure(rank={k: rank_delta_fn(a, b, g, SMORA_SCALE, SMORA_TOP_K, 1.0, engine=engine if whole else None)
                           for k, (a, b, g) in params.items()}, whole_rank=whole,
                     whole_window=cfg["smora_window"])
    ab = [p for v in params.values() for p in v[:2]]
    gates = [v[2] for v in params.values()]
    steps = cfg["smora_steps"]
    batches = mixture_batches(examples, cfg["smora_batch"], steps, seed=SEEDS["smora_batches"])
    info = train_loop("smora", engine, [{"params": ab, "lr": cfg["smora_lr_ab"]},
                                        {"params": gates, "lr": cfg["smora_lr_gate"]}],
                      batches, steps, cfg["smora_warmup"])
    engine.configure()
    info.update(init_seconds=round(init_s, 1), batch=cfg["smora_batch"])
    pb = rp.load_router_pb2()
    spec = new_spec("smora", "RANK", dict(mode=pb.SELECTION_TOP_K, top_k=SMORA_TOP_K, temperature=1.0,
                                          prompt_routing=pb.PROMPT_ROUTING_WHOLE if whole else
                                          pb.PROMPT_ROUTING_PER_TOKEN,
                                          context_window=cfg["smora_window"] if whole else 0), [],
                    {"generator": GENERATOR, "seed": SEEDS["smora"], "trained_on": "tasks/<8 training tasks>/train.jsonl",
                     "steps": str(steps), "init": "scratch (PEFT's LoRA init, B = 0)" if cfg["smora_init"] == "scratch" else
                     f"experts {','.join(names)} (rank {SMORA_RANK // len(names)} SVD truncation each, concatenated in "
                     f"this order)"})
    spec.rank.activation = pb.RANK_ACTIVATION_SOFTMAX
    for l in range(engine.num_layers):
        for _, proj in PROJECTIONS:
            a, b, g = params[(l, proj)]
            spec.rank.modules.add(layer=l, module=proj, a=rf.tensor_pb(a.detach()), b=rf.tensor_pb(b.detach()),
                                  gate=rf.tensor_pb(g.detach()), scale=SMORA_SCALE)
    return spec, info


# --------------------------------------------------------------------------
# Checks against the reference implementation
# --------------------------------------------------------------------------

def check_reference(models: Path, engine: Routed, experts: list[dict], names: list[str], spec, tok,
                    sequences: list[list[int]]) -> float:
    """Logits of the fast batched path (configured from the parsed spec) vs router_fixtures'
    batch-1 reference (run_token / run_rank) on full prompt + completion sequences."""
    rf.EXPERTS = list(names)  # the reference builds its dense mixes over this list
    ref_model = td.load_base(models)
    ref = rf.Engine(ref_model, experts)
    worst, effect = 0.0, 0.0
    with torch.no_grad():
        for ids in sequences:
            want = rf.run_router(ref, spec, ids)["logits"]
            engine.configure()
            base = engine.model(input_ids=torch.tensor([ids])).logits[0]
            engine_from_spec(engine, spec)
            got = engine.model(input_ids=torch.tensor([ids])).logits[0]
            worst = max(worst, float((got - want).abs().max()))
            effect = max(effect, float((got - base).abs().max()))
    engine.configure()
    del ref, ref_model
    assert worst < REF_TOL, f"{spec.name}: fast path vs reference max |Δlogits| {worst:.2e}"
    assert effect > 1e-2, f"{spec.name}: the router does not change the logits ({effect:.2e})"
    return worst


@torch.no_grad()
def check_cached_greedy(engine: Routed, spec, prompts: list[list[int]], max_new: int) -> None:
    """greedy() (KV cache, batched) == re-running the whole sequence at every step."""
    engine_from_spec(engine, spec)
    cached = greedy(engine, prompts, max_new, setup=lambda rows: engine_from_spec(engine, spec))
    for p, c in zip(prompts, cached):
        seq = list(p)
        for _ in range(max_new):
            engine.mix = {}
            nxt = int(engine.model(input_ids=torch.tensor([seq])).logits[0, -1].argmax())
            if nxt == td.EOS_ID:
                break
            seq.append(nxt)
        assert seq[len(p):] == c, (spec.name, seq[len(p):], c)
    engine.configure()


# --------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------

def table(results: dict, columns: list[tuple[str, str]], rows: list[str], heldout: list[str]) -> str:
    lines = ["| task | " + " | ".join(c for _, c in columns) + " |", "|---|" + "---:|" * len(columns)]
    for r in rows:
        label = r + (" (held-out)" if r in heldout else "")
        cells = []
        for key, _ in columns:
            v = results.get(key, {}).get(r)
            cells.append("—" if v is None else f"{v['accuracy']:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_readme(out: Path, report: dict, names: list[str], heldout: list[str]) -> None:
    cfg = report["settings"]
    tr = report["training"]
    cols = [("oracle", "oracle expert"), ("token", "token router"), ("smora", "SMoRA")]
    rows = names + heldout + ["mixed"]
    files = report["files"]
    tok_info, sm_info = tr.get("token", {}), tr.get("smora", {})
    per = SMORA_RANK // len(names)
    lines = [
        "# Routers",
        "",
        "Router files in Switchyard's wire format (`Protos/switchyard/v1/router.proto`), for the base model in",
        "`../base` and the experts in `../experts`. `token.pb` and `smora.pb` are written by",
        "`Scripts/models/train_routers.py` (do not edit by hand); `sentence.pb` is trained by Switchyard itself",
        "(`switchyard router train`, see the top-level README).",
        "",
        "| file | granularity | what |",
        "|---|---|---|",
        f"| `token.pb` ({files.get('token.pb', 0) / 1024:.0f} KiB) | TOKEN | a learned global gate over all 8 experts "
        "(`ExpertRef` = expert directory name + sha256 of its `adapter_model.safetensors`): one `LayerGate` at "
        f"`source_layer` {cfg.get('token_layer', 0)} (the token embeddings), F32 weight [8, hidden] + bias [8], `context` MEAN "
        f"with `context_window` {cfg.get('token_window', 0)}: scores = mean(h_t-{cfg.get('token_window', 0) - 1}..h_t) · Wᵀ + b, "
        "the mean state of the recent text; `prompt_routing` WHOLE: the prompt is routed once by the mean over "
        "its last tokens, then the generated tokens by the mean of the text up to them, re-decided at every "
        f"position p with p % {cfg.get('token_every_n', 1)} == 0 (`every_n` {cfg.get('token_every_n', 1)}; the tokens between keep the "
        f"last decision); selection `TOP_K` k {TOKEN_TOP_K}, temperature 1; the mix applies to every layer's 7 projections |",
        f"| `smora.pb` ({files.get('smora.pb', 0) / 1e6:.1f} MB) | RANK | SMoRA, rank-as-expert: one `RankModule` per (layer, "
        f"projection) for q, k, v, o, gate, up, down of every layer, total rank R {SMORA_RANK}, F32 A [R, in], "
        f"B [out, R], gate G [R, in], scale {SMORA_SCALE:g}; "
        + (f"`prompt_routing` WHOLE: the prompt's top {SMORA_TOP_K} ranks are chosen once per module by G·m, m the "
           "mean of the module's input over the prompt"
           + (f"'s last {cfg['smora_window']} tokens (`context_window` {cfg['smora_window']})"
              if cfg.get("smora_window") else "")
           + " (the ranks chosen at earlier modules applied), and every prompt token runs them; "
           f"each generated token runs its own top {SMORA_TOP_K} by G·x; "
           if cfg.get("smora_prompt", "per_token") == "whole" else
           f"per token the top {SMORA_TOP_K} ranks by G·x are active; ")
        + "activation `SOFTMAX` over the selected scores (temperature 1); `experts` empty |",
        "| `sentence.pb` | SENTENCE | written by `switchyard router train` (not by this script) |",
        "",
        "## How they were trained",
        "",
        "Data: the 8 training tasks' `train.jsonl` mixed "
        f"({report['train_examples']} examples); prompt ids `[<|bos|>] + encode(prompt)`, loss = cross-entropy on "
        "the completion tokens + `<|eos|>` (the experts' objective). Base model (float32 upcast of the bf16 "
        "weights) and experts frozen. Adam, linear warm-up then cosine decay to 10%, gradient clipping 1.0, "
        "length-bucketed batches. The forward pass during training is the inference forward (routing by "
        "forward hooks exactly as in `Scripts/fixtures/router_fixtures.py`), so the exported files need no "
        "conversion.",
        "",
        f"- **token**: the gate is fitted as a task classifier (multinomial logistic regression with bias, "
        f"{cfg.get('token_steps', '—')} full-batch Adam steps, L2 {cfg.get('token_l2', 0):g}, cross-entropy on the "
        "task label = the oracle's expert) on exactly the features it reads at inference: for the first "
        f"{cfg.get('token_per_task', '—')} training examples of each task, the windowed mean embedding at the "
        "prompt's end (the WHOLE decision) and at every completion position (the decisions for generated "
        "tokens, teacher-forced). At layer 0 the features do not depend on the routing, so no pass through "
        f"the experts is needed. {tok_info.get('features', '—')} features, training accuracy "
        f"{tok_info.get('train_accuracy', '—')} (prompts {tok_info.get('prompt_accuracy', '—')}, completion positions "
        f"{tok_info.get('completion_accuracy', '—')}); {report.get('train_seconds_by_router', {}).get('token', '—')} s "
        "(most of it reading the embeddings).",
        (f"- **smora**: trained from scratch on the task mixture, as the SMoRA paper trains it (the experts are "
         f"not used): per module A [{SMORA_RANK}, in] initialised as PEFT initialises lora_A (Kaiming-uniform, bound "
         f"1/√in), B [out, {SMORA_RANK}] zero (training starts at the base model), G [{SMORA_RANK}, in] Gaussian with std "
         f"1/√in (seed {SEEDS['smora']}); A, B and G trained together for "
         f"{sm_info.get('steps', cfg['smora_steps'])} steps with the exact top-{SMORA_TOP_K} forward"
         + (" (the prompt routed whole: every module scores the mean of its input over each example's prompt rows"
            + (f" (their last {cfg['smora_window']})" if cfg.get("smora_window") else "")
            + ", in the same pass, and the prompt rows run the ranks chosen from it; the gate learns from both kinds "
            "of rows)" if cfg.get("smora_prompt", "per_token") == "whole" else "")
         + f", batch {cfg['smora_batch']}, lr {cfg['smora_lr_ab']:g} (A, B) / {cfg['smora_lr_gate']:g} (G)"
         if cfg.get("smora_init") == "scratch" else
         f"- **smora**: initialised from the {len(names)} experts: each expert's update s·B·A (rank "
         f"{'/'.join(map(str, report['expert_ranks']))}) truncated by SVD to its top {per} singular directions, "
         f"concatenated along the rank (expert i owns ranks {per}i…{per}i+{per - 1}, order {', '.join(names)}); with "
         f"scale {SMORA_SCALE:g} = k, uniform activations over one expert's {per} ranks give exactly its truncated "
         "update. Gate rows of expert i's block = class i's weight vector of a linear task classifier "
         "(multinomial logistic regression without bias, "
         f"{cfg['classifier_steps']} steps, L2 {cfg['classifier_l2']:g}) fitted per projection on its inputs at "
         f"{cfg['smora_calib_per_task']} calibration prompts of every task (run with the task's own expert "
         f"active), plus noise of 1% of the row norm (seed {SEEDS['smora']}, no exact ties), so a token classified "
         f"as task i activates i's ranks almost uniformly. Then A, B and G trained together for "
         f"{(sm_info.get('resumed_after') or sm_info).get('steps', cfg['smora_steps'])} steps with the "
         f"exact top-{SMORA_TOP_K} forward, batch {cfg['smora_batch']}, lr {cfg['smora_lr_ab']:g} (A, B) / "
         f"{cfg['smora_lr_gate']:g} (G)"
         + (f", then continued from that file for {sm_info.get('steps')} more steps with a fresh schedule "
            f"(`--set smora_resume=Models/routers/smora.pb --set smora_steps={sm_info.get('steps')} --set smora_warmup=10`; "
            f"LM loss {sm_info['resumed_after'].get('final_loss')} after the first "
            f"{sm_info['resumed_after'].get('steps')} steps, {sm_info['resumed_after'].get('seconds')} s)"
            if sm_info.get("resumed_after") else ""))
        + f". Final LM loss {sm_info.get('final_loss', '—')}, "
        f"{round(sm_info.get('seconds', 0) + sm_info.get('init_seconds', 0), 1) if sm_info else '—'} s.",
        "",
        "Training time, each router's latest run, on "
        f"{report['threads']} CPU threads: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in report.get("train_seconds_by_router", {}).items())
        + f". The latest run ({'`--only ' + report['only'] + '`' if report.get('only') else 'every router'}) took "
        f"{report['total_seconds'] / 60:.1f} min with the checks and the evaluation below; torch deterministic "
        "algorithms, fixed seeds.",
        "",
        "## Accuracy (measured in Python by train_routers.py)",
        "",
        "Greedy exact match (%) on each task's test set, decoding with a KV cache and stopping at `<|eos|>`, "
        "answer = decoded text before it, correct iff `answer.strip() == completion.strip()` "
        "(`../README.md`'s convention); routers run from the bytes of the written files. `mixed` = the 8 "
        "training tasks' test sets together (`../tasks/mixed/test.jsonl`, the same examples shuffled). "
        "`oracle expert` = each example's own expert alone, through the same hooks. The official table comes "
        "from `switchyard eval --router …` (`Scripts/eval-table`).",
        "",
        table(report["results"], cols, rows, heldout),
        "",
        f"Before evaluation, each file is re-read and its logits are compared with the batch-1 PyTorch reference "
        f"of `Scripts/fixtures/router_fixtures.py` on {report['ref_sequences']} prompt+completion sequences "
        f"(max |Δ| token {report['reference_max_abs_diff'].get('token', float('nan')):.1e}, smora "
        f"{report['reference_max_abs_diff'].get('smora', float('nan')):.1e}; tolerance {REF_TOL:g}), and checked "
        "with `Scripts/fixtures/check_router_bytes.py --adapters Models/experts`.",
        "",
        "## Regenerate",
        "",
        "```sh",
        ".venv/bin/pip install -r Scripts/models/requirements.txt",
        ".venv/bin/python Scripts/models/train_routers.py",
        "```",
        "",
    ]
    text = "\n".join(lines)
    # The diagnosis (measured by probe_token_task.py, diagnose_routing.py and switchyard eval) is
    # kept from the README already there.
    begin, end = "<!-- diagnosis:begin -->", "<!-- diagnosis:end -->"
    old = (out / "README.md").read_text() if (out / "README.md").exists() else ""
    if begin in old and end in old:
        block = old[old.index(begin):old.index(end) + len(end)]
        text = text.replace("## How they were trained", block + "\n\n## How they were trained", 1)
    (out / "README.md").write_text(text)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=td.DEFAULT_OUT, help="the demo directory (default Models/)")
    ap.add_argument("--only", choices=["token", "smora"], help="train one router only")
    ap.add_argument("--quick", action="store_true", help="a few steps, few eval examples (smoke test)")
    ap.add_argument("--threads", type=int, default=td.NUM_THREADS)
    ap.add_argument("--no-eval", action="store_true", help="skip the greedy evaluation")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a setting")
    args = ap.parse_args()

    td.setup_torch()
    torch.set_num_threads(args.threads)
    cfg = dict(QUICK if args.quick else FULL)
    for kv in args.set:
        k, v = kv.split("=", 1)
        assert k in cfg, f"unknown setting {k}"
        cfg[k] = json.loads(v)
    models = args.models
    out = models / "routers"
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    tok = td.load_tokenizer(models)
    names = [t for t in td.TASKS if (models / "experts" / t / "adapter_model.safetensors").is_file()]
    assert names == list(td.TASKS), f"experts missing: {sorted(set(td.TASKS) - set(names))}"
    heldout = [t for t in td.HELDOUT_NAMES if (models / "tasks" / t / "test.jsonl").is_file()]
    experts = load_experts(models, names)
    engine = Routed(td.load_base(models), experts)
    print(f"[routers] {len(names)} experts, base hidden {engine.model.config.hidden_size}, {engine.num_layers} layers; "
          f"threads {torch.get_num_threads()}", flush=True)
    by_task = [[td.encode_example(tok, r["prompt"], r["completion"])
                for r in td.read_jsonl(models / "tasks" / n / "train.jsonl")] for n in names]
    examples = [e for ex in by_task for e in ex]
    tests = {n: td.read_jsonl(models / "tasks" / n / "test.jsonl") for n in names + heldout}
    mixed = td.read_jsonl(models / "tasks" / "mixed" / "test.jsonl")
    key = lambda r: (r["prompt"], r["completion"])  # noqa: E731
    assert sorted(map(key, mixed)) == sorted(key(r) for n in names for r in tests[n]), \
        "mixed/test.jsonl is not the union of the training tasks' test sets"

    report_path = out / "eval_python.json"
    report = json.loads(report_path.read_text()) if report_path.exists() and args.only else {}
    report.setdefault("results", {})
    report.setdefault("training", {})
    report.setdefault("reference_max_abs_diff", {})
    report.setdefault("files", {})
    train_seconds = dict(report.get("train_seconds_by_router", {}))
    # One sequence per task (prompt + completion) for the reference check.
    ref_seqs, ref_prompts = [], []
    for n in names:
        for r in tests[n][:cfg["ref_examples"]]:
            p, c = td.encode_example(tok, r["prompt"], r["completion"])
            ref_seqs.append(p + c)
            ref_prompts.append(p)

    todo = [args.only] if args.only else ["token", "smora"]
    for which in todo:
        t0 = time.perf_counter()
        if which == "token":
            spec, info = train_token(engine, by_task, cfg, names, models)
        else:
            spec, info = train_smora(engine, experts, examples, by_task, cfg, names)
        train_seconds[which] = round(time.perf_counter() - t0, 1)
        data = serialize(spec)
        path = out / f"{which}.pb"
        path.write_bytes(data)
        ok, summary = crb.check(path, expect_name=which, adapters=models / "experts")
        print(summary, flush=True)
        assert ok, summary
        spec = parse(path.read_bytes())
        diff = check_reference(models, engine, experts, names, spec, tok, ref_seqs)
        print(f"[{which}] fast path vs router_fixtures reference: max |Δlogits| {diff:.2e} on {len(ref_seqs)} sequences",
              flush=True)
        if spec.selection.prompt_routing != rp.load_router_pb2().PROMPT_ROUTING_WHOLE:
            # (A whole-prompt router routes a re-run prompt differently from decoding by design;
            # its decoding is checked by the Swift fixtures, Scripts/fixtures/router_fixtures.py.)
            check_cached_greedy(engine, spec, ref_prompts, 12)
        if which == "smora" and cfg["smora_resume"]:
            info["resumed_after"] = report["training"].get("smora")
        report["training"][which] = info
        report["reference_max_abs_diff"][which] = diff
        report["files"][f"{which}.pb"] = len(data)
        if not args.no_eval:
            t1 = time.perf_counter()
            res = evaluate(engine, tok, tests, lambda n, rows, s=spec: (lambda idx: engine_from_spec(engine, s)),
                           cfg["eval_limit"])
            report["results"][which] = with_mixed(res, names)
            print(f"[{which}] eval ({time.perf_counter() - t1:.0f}s): " + ", ".join(
                f"{k} {v['accuracy']:.1f}" for k, v in report["results"][which].items()), flush=True)

    if not args.no_eval:  # always re-measured: the experts may have been retrained since the last run
        t1 = time.perf_counter()

        def oracle(name, rows):
            e = names.index(name)
            mix = torch.zeros(1, 1, len(names))
            mix[0, 0, e] = 1.0
            return lambda idx: engine.fixed(mix)
        report["results"]["oracle"] = with_mixed(
            evaluate(engine, tok, {n: tests[n] for n in names}, oracle, cfg["eval_limit"]), names)
        print(f"[oracle] eval ({time.perf_counter() - t1:.0f}s): " + ", ".join(
            f"{k} {v['accuracy']:.1f}" for k, v in report["results"]["oracle"].items()), flush=True)
        peft_eval = models / "eval_python.json"
        if peft_eval.exists() and not cfg["eval_limit"]:
            theirs = json.loads(peft_eval.read_text())["results"]
            diffs = {n: (report["results"]["oracle"][n]["accuracy"], theirs[n].get("oracle"))
                     for n in names if n in theirs}
            print("[oracle] hooks vs train_demo.py (PEFT generate): " + ", ".join(
                f"{n} {a:.1f}/{b}" for n, (a, b) in diffs.items()), flush=True)

    report.update({
        "what": "greedy exact-match accuracy (%) measured in Python by Scripts/models/train_routers.py "
                "(routers run from the written files; the Swift `switchyard eval` table is the official one)",
        "settings": cfg, "seeds": SEEDS, "threads": torch.get_num_threads(),
        "train_examples": len(examples), "ref_sequences": len(ref_seqs),
        "expert_ranks": sorted({a.shape[0] for ex in experts for a, _, _ in ex.values()}),
        "selection": {"token": {"mode": "TOP_K", "top_k": TOKEN_TOP_K, "temperature": 1.0},
                      "smora": {"top_k": SMORA_TOP_K, "activation": "SOFTMAX", "temperature": 1.0,
                                "rank": SMORA_RANK, "scale": SMORA_SCALE}},
        "train_seconds_by_router": train_seconds,
        "only": args.only,
        "train_seconds": round(sum(train_seconds.values()), 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
    })
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    if not args.no_eval:
        write_readme(out, report, names, heldout)
    size = sum(p.stat().st_size for p in models.rglob("*") if p.is_file())
    print(f"[routers] done in {report['total_seconds']:.0f}s (training {report['train_seconds']:.0f}s); "
          f"{models} = {size / 1e6:.1f} MB", flush=True)
    if size > 40e6:
        print("WARNING: Models/ exceeds 40 MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
