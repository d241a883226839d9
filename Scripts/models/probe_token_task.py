#!/usr/bin/env python3
"""How much of the task a single token's hidden state carries, per layer, in the demo base model.

A token-level router decides from one token's hidden state entering a layer; if a linear probe
cannot tell the task from that state, no learned per-token gate can route reliably. This fits a
multinomial logistic regression (standardised features, Adam, L2 1e-3, 300 steps) per layer on
the hidden states of every token (prompt + completion) of 60 training examples per task, and
prints its accuracy on every token of 30 test examples per task (chance = 1/8).

    .venv/bin/python Scripts/models/probe_token_task.py [MODELS_DIR]

Measured on the committed Models/ (1 min on 2 CPU threads): layer 0 22.7%, layer 1 35.4%,
layer 2 49.0%, layer 3 54.0% (prompt and answer tokens alike); the sentence router's
mean-pooled prompt feature at layer 2 is classified 100% right.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_demo as T  # noqa: E402


def token_states(model, tok, models: Path, names: list[str], split: str, n: int):
    """Per layer: hidden states of every token entering that layer; task index and prompt/answer flag."""
    layers = model.config.num_hidden_layers
    xs = {l: [] for l in range(layers)}
    task, is_answer = [], []
    with torch.no_grad():
        for i, name in enumerate(names):
            for r in T.read_jsonl(models / "tasks" / name / f"{split}.jsonl")[:n]:
                p, c = T.encode_example(tok, r["prompt"], r["completion"])
                hidden = model(input_ids=torch.tensor([p + c]), output_hidden_states=True).hidden_states
                for l in range(layers):
                    xs[l].append(hidden[l][0])
                task += [i] * (len(p) + len(c))
                is_answer += [False] * len(p) + [True] * len(c)
    return {l: torch.cat(v) for l, v in xs.items()}, torch.tensor(task), torch.tensor(is_answer)


def main() -> int:
    models = Path(sys.argv[1]) if len(sys.argv) > 1 else T.DEFAULT_OUT
    T.setup_torch()
    torch.manual_seed(0)
    tok, model = T.load_tokenizer(models), T.load_base(models).eval()
    names = list(T.TASKS)
    x_train, y_train, _ = token_states(model, tok, models, names, "train", 60)
    x_test, y_test, answer = token_states(model, tok, models, names, "test", 30)
    for l in sorted(x_train):
        mu, sd = x_train[l].mean(0), x_train[l].std(0) + 1e-6
        w = torch.zeros(x_train[l].shape[1], len(names), requires_grad=True)
        b = torch.zeros(len(names), requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=0.05)
        for _ in range(300):
            loss = torch.nn.functional.cross_entropy((x_train[l] - mu) / sd @ w + b, y_train) + 1e-3 * w.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        right = (((x_test[l] - mu) / sd @ w + b).argmax(1) == y_test).float()
        print(f"layer {l}: per-token task accuracy {right.mean():.3f} "
              f"(prompt tokens {right[~answer].mean():.3f}, answer tokens {right[answer].mean():.3f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
