#!/usr/bin/env python3
"""LoraHub's own recipe beside `switchyard compose`, on the embedded demo.

The original (sail-sg/lorahub `lorahub/algorithm.py`, adapted to a causal LM): the PEFT model of
the first expert, the composed state dict `Σ w_i · state_dict_i` loaded with
`set_peft_model_state_dict`, objective = the batch's mean completion-token loss / number of
examples + 0.05 · mean|w| (`default_get_loss`, `default_l1_regularization`), nevergrad `NGOpt` over
`ng.p.Array(init=0, lower=-1.5, upper=1.5)` with budget 40. Switchyard: `switchyard compose` with
its defaults (the 8 experts alone, then COBYLA from the best; the same objective, budget 40, on the
experts' summed updates, `--combination cat`), or the options given (`--compose-args
'--combination lorahub'`: the original's factor mix, so that only the search differs).

Tasks: `caesar` and `uppercase` as new tasks (their own expert left out of the pool), the same two
with every expert in the pool (`caesar:all`, the measurement of issue 14), and every held-out task
in Models/tasks (a task without an expert of its name; all experts in the pool). With
`--preselect K`, a third column runs `switchyard compose --preselect K` (the sentence router's top K
experts on the shots as the pool; not run where the task's own expert must stay out).
Each seed draws 5 shots from the task's train.jsonl; both methods get the same shots. Accuracy is
greedy exact match on the task's test split, measured for both composed adapters by
`switchyard eval` (Switchyard matches PEFT to 1e-4 on these logits). Wall time: the original's
search (model already loaded) against the whole `switchyard compose` process.

    /tmp/fxvenv/bin/python Scripts/bench/lorahub_original.py --switchyard .build/release/switchyard
"""
import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nevergrad as ng
import torch
from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "Models"
EOS = 1


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Original:
    """LoraHub's `lorahub_learning`, for a causal LM."""

    def __init__(self, experts):
        base = LlamaForCausalLM.from_pretrained(MODELS / "base", torch_dtype=torch.float32)
        self.names = experts
        self.model = PeftModel.from_pretrained(base, MODELS / "experts" / experts[0]).eval()
        self.cache = {}
        for name in experts:
            other = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(MODELS / "base", torch_dtype=torch.float32),
                                              MODELS / "experts" / name)
            self.cache[name] = {k: v.clone() for k, v in get_peft_model_state_dict(other).items()}
        self.tokenizer = Tokenizer.from_file(str(MODELS / "base" / "tokenizer.json"))

    def batch(self, shots):
        rows = []
        for ex in shots:
            prompt = self.tokenizer.encode(ex["prompt"]).ids  # <|bos|> + prompt (TemplateProcessing)
            completion = self.tokenizer.encode(ex["completion"], add_special_tokens=False).ids + [EOS]
            rows.append((prompt + completion, [-100] * len(prompt) + completion))
        width = max(len(ids) for ids, _ in rows)
        ids = torch.tensor([r + [2] * (width - len(r)) for r, _ in rows])
        labels = torch.tensor([l + [-100] * (width - len(l)) for _, l in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def composed(self, weights):
        keys = self.cache[self.names[0]].keys()
        return {k: sum(w * self.cache[n][k] for w, n in zip(weights, self.names)) for k in keys}

    def objective(self, weights, batch, count):
        set_peft_model_state_dict(self.model, self.composed(weights))
        with torch.no_grad():
            loss = float(self.model(**batch).loss)
        return loss / count + 0.05 * sum(abs(w) for w in weights) / len(weights)

    def learn(self, shots, seed, budget):
        random.seed(seed)
        import numpy
        numpy.random.seed(seed)
        batch = self.batch(shots)
        instrum = ng.p.Array(init=[0] * len(self.names), upper=[1.5] * len(self.names), lower=[-1.5] * len(self.names))
        optimizer = ng.optimizers.NGOpt(parametrization=instrum, budget=budget)
        started = time.perf_counter()
        recommendation = optimizer.minimize(lambda w: self.objective(w, batch, len(shots)))
        seconds = time.perf_counter() - started
        weights = [float(w) for w in recommendation.value]
        return weights, self.objective(weights, batch, len(shots)), seconds, getattr(optimizer.optim, "name", type(optimizer.optim).__name__)

    def write(self, weights, directory):
        directory.mkdir(parents=True)
        state = {k: v.contiguous() for k, v in self.composed(weights).items()}  # PEFT's saved key names
        save_file(state, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
        shutil.copy(MODELS / "experts" / self.names[0] / "adapter_config.json", directory / "adapter_config.json")


def evaluate(switchyard, registry, expert, task):
    out = subprocess.run([switchyard, "eval", "--task", task, "--registry", str(registry), "--expert", expert, "--format", "json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["accuracy"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switchyard", default=str(ROOT / ".build/release/switchyard"))
    ap.add_argument("--tasks", nargs="*", help="tasks (default: caesar, uppercase and the held-out tasks)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--compose-args", default="", help="extra `switchyard compose` options, e.g. '--optimizer cmaes'")
    ap.add_argument("--preselect", type=int, help="also run `compose --preselect K` (router-chosen pool)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    all_experts = sorted(p.name for p in (MODELS / "experts").iterdir() if (p / "adapter_config.json").exists())
    held_out = sorted(p.name for p in (MODELS / "tasks").iterdir()
                      if (p / "train.jsonl").exists() and (p / "test.jsonl").exists() and p.name not in all_experts and p.name != "mixed")
    tasks = args.tasks or ["caesar", "uppercase", "caesar:all", "uppercase:all"] + held_out
    scratch = Path(tempfile.mkdtemp())
    registry = scratch / "experts"
    shutil.copytree(MODELS / "experts", registry)
    rows = []
    try:
        for spec in tasks:
            task, _, scope = spec.partition(":")
            pool = [e for e in all_experts if e != task or scope == "all"]
            original = Original(pool)
            train = read_jsonl(MODELS / "tasks" / task / "train.jsonl")
            for seed in range(args.seeds):
                shots = random.Random(seed).sample(train, 5)
                tag = f"{task}-{scope or 'new'}-{seed}"
                shots_file = scratch / f"{tag}.jsonl"
                shots_file.write_text("".join(json.dumps(s) + "\n" for s in shots))
                weights, value, seconds, inner = original.learn(shots, seed, args.budget)
                name = f"original-{tag}"
                original.write(weights, registry / name)
                acc_original = evaluate(args.switchyard, registry, name, task)
                started = time.perf_counter()
                out = subprocess.run([args.switchyard, "compose", "--examples", str(shots_file), "--shots", "5", "--budget", str(args.budget),
                                      "--experts", ",".join(pool), "--seed", str(seed), "--registry", str(registry),
                                      "--out", f"compose-{tag}", *args.compose_args.split()],
                                     capture_output=True, text=True)
                compose_seconds = time.perf_counter() - started
                if out.returncode != 0:
                    sys.exit(f"compose failed for {task}: {out.stderr}")
                objective = float(out.stdout.split("composed objective ")[1].split()[0])
                acc_compose = evaluate(args.switchyard, registry, f"compose-{tag}", task)
                acc_preselect = None
                if args.preselect and len(pool) == len(all_experts):
                    subprocess.run([args.switchyard, "compose", "--examples", str(shots_file), "--shots", "5", "--budget", str(args.budget),
                                    "--preselect", str(args.preselect), "--registry", str(registry), "--out", f"preselect-{tag}",
                                    *args.compose_args.split()], capture_output=True, text=True, check=True)
                    acc_preselect = evaluate(args.switchyard, registry, f"preselect-{tag}", task)
                row = dict(task=spec, seed=seed, preselect_accuracy=acc_preselect, pool=len(pool), original_optimizer=inner,
                           original_accuracy=acc_original, original_objective=value, original_seconds=seconds,
                           compose_accuracy=acc_compose, compose_objective=objective, compose_seconds=compose_seconds,
                           original_weights=dict(zip(pool, weights)))
                rows.append(row)
                print(f"{spec:>18} seed {seed}: original ({inner}) {100 * acc_original:5.1f}% obj {value:.4f} {seconds:5.2f}s | "
                      f"compose {100 * acc_compose:5.1f}% obj {objective:.4f} {compose_seconds:5.2f}s"
                      + ("" if acc_preselect is None else f" | preselect {100 * acc_preselect:5.1f}%"), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    extra = f" compose --preselect {args.preselect} % |" if args.preselect else ""
    print(f"| task (pool) | original accuracy % (per seed) | compose accuracy % |{extra} original search s/run | compose process s/run |")
    print("| --- | --- | --- |" + (" --- |" if args.preselect else "") + " --- | --- |")
    for spec in tasks:
        r = [x for x in rows if x["task"] == spec]
        fmt = lambda key: " / ".join("n/a" if x[key] is None else f"{100 * x[key]:.0f}" for x in r)
        mean = lambda key: sum(x[key] for x in r) / len(r)
        task, _, scope = spec.partition(":")
        kind = "all experts" if scope == "all" else ("own expert out" if task in all_experts else "held out")
        label = f"{task} ({kind}, {r[0]['pool']} experts)"
        pre = f" {fmt('preselect_accuracy')} |" if args.preselect else ""
        print(f"| {label} | {fmt('original_accuracy')} | {fmt('compose_accuracy')} |{pre} {mean('original_seconds'):.2f} | {mean('compose_seconds'):.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
