#!/usr/bin/env python3
"""How much of the task a single token's hidden state carries, per layer, in the demo base model.

A token-level router decides from one token's hidden state entering a layer; if a linear probe
cannot tell the task from that state, no learned per-token gate can route reliably. This fits a
multinomial logistic regression (standardised features, Adam, L2 1e-3, 300 steps) per layer on
the hidden states of every token (prompt + completion) of 60 training examples per task, and
prints its accuracy on the tokens of 30 test examples per task (chance = 1/8): all tokens, prompt
tokens, answer tokens, and the prompt's last token (the state a whole-prompt decision reads).
"Layer L" is the state entering decoder layer L of a base pass (no experts); the last row is the
base pass's final state (after the last layer and the final RMSNorm: what X-LoRA's scaling head
reads in its first pass). It also prints the nearest-centroid accuracy (cosine, the centroid
router's rule) of the mean state of the whole prompt, per layer, with centroids = mean state of
each task's training-prompt tokens.

    .venv/bin/python Scripts/models/probe_token_task.py [MODELS_DIR]

Measured numbers: Models/routers/README.md ("Diagnosis").
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_demo as T  # noqa: E402


def token_states(model, tok, models: Path, names: list[str], split: str, n: int):
    """Per layer (0..L, L = final normed state): hidden states of every token; task index,
    prompt/answer flag, last-prompt-token flag, example index."""
    layers = model.config.num_hidden_layers
    xs = {l: [] for l in range(layers + 1)}
    task, is_answer, is_last, example = [], [], [], []
    with torch.no_grad():
        for i, name in enumerate(names):
            for r in T.read_jsonl(models / "tasks" / name / f"{split}.jsonl")[:n]:
                p, c = T.encode_example(tok, r["prompt"], r["completion"])
                hidden = model(input_ids=torch.tensor([p + c]), output_hidden_states=True).hidden_states
                for l in range(layers + 1):
                    xs[l].append(hidden[l][0])
                task += [i] * (len(p) + len(c))
                is_answer += [False] * len(p) + [True] * len(c)
                is_last += [False] * (len(p) - 1) + [True] + [False] * len(c)
                example += [len(set(example) if example else ())] * (len(p) + len(c))
    return ({l: torch.cat(v) for l, v in xs.items()}, torch.tensor(task), torch.tensor(is_answer),
            torch.tensor(is_last), torch.tensor(example))


def main() -> int:
    models = Path(sys.argv[1]) if len(sys.argv) > 1 else T.DEFAULT_OUT
    T.setup_torch()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tok, model = T.load_tokenizer(models), T.load_base(models).eval()
    names = list(T.TASKS)
    x_train, y_train, a_train, _, _ = token_states(model, tok, models, names, "train", 60)
    x_test, y_test, answer, last, example = token_states(model, tok, models, names, "test", 30)
    prompt = ~answer
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
        # Nearest centroid (cosine) on the mean state of each whole test prompt.
        pt = ~a_train
        cents = torch.stack([x_train[l][pt & (y_train == e)].mean(0) for e in range(len(names))])
        ok = []
        for ex in example.unique():
            m = (example == ex) & prompt
            f = x_test[l][m].mean(0)
            ok.append(float(torch.nn.functional.cosine_similarity(f[None], cents).argmax() == y_test[m][0]))
        label = f"layer {l}" if l < model.config.num_hidden_layers else "final (normed)"
        print(f"{label}: linear probe per-token task accuracy {right.mean():.3f} (prompt tokens {right[prompt].mean():.3f}, "
              f"answer tokens {right[answer].mean():.3f}, last prompt token {right[last].mean():.3f}); "
              f"nearest centroid of the whole prompt's mean state {sum(ok) / len(ok):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
