#!/usr/bin/env python3
"""Where per-token routing of the demo's experts can go wrong: greedy exact match on the first 25
test examples of each training task (200 in all) with each example's own expert (the oracle)
applied only where a causal token-level router could apply it.

  * experts on decoder layers >= L only (what a gate reading the state entering layer L, e.g. a
    global or centroid gate at L, allows: layers before run without experts);
  * the expert on the prompt's tokens (prefill) only, or on the answer's tokens only;
  * the expert everywhere except the prompt's first 25/50/75% (what a router that cannot know the
    task before the instruction is read does there), those tokens on the base model or on the
    uniform mix of all 8 experts.

    .venv/bin/python Scripts/models/diagnose_routing.py [MODELS_DIR]

Numbers: Models/routers/README.md ("Diagnosis"). About 1 min on one CPU thread.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))
import train_demo as td  # noqa: E402
import train_routers as tr  # noqa: E402


def main() -> int:
    models = Path(sys.argv[1]) if len(sys.argv) > 1 else td.DEFAULT_OUT
    td.setup_torch()
    torch.set_num_threads(1)
    tok = td.load_tokenizer(models)
    names = list(td.TASKS)
    engine = tr.Routed(td.load_base(models), tr.load_experts(models, names))
    tests = {n: td.read_jsonl(models / "tasks" / n / "test.jsonl")[:25] for n in names}
    E = len(names)

    def run(label: str, gate_for):
        """gate_for(one_hot [1, 1, E]) -> gate(l, h): the oracle mix where the variant allows it."""
        def configure(name, rows):
            one_hot = torch.zeros(1, 1, E)
            one_hot[0, 0, names.index(name)] = 1.0
            return lambda idx: engine.configure(gate=gate_for(one_hot))
        r = tr.with_mixed(tr.evaluate(engine, tok, tests, configure), names)
        print(f"{label}: {r['mixed']['accuracy']:.1f}  (" + ", ".join(f"{n} {r[n]['accuracy']:.0f}" for n in names) + ")",
              flush=True)

    # greedy() feeds the prompt in one forward (h has the prompt's length), then one token at a time.
    for first in range(4):
        run(f"oracle on layers >= {first}", lambda m, first=first: lambda l, h: (m if l >= first else 0 * m).expand(
            h.shape[0], h.shape[1], -1))
    for label, prompt_layers, answer_layers in [
            ("oracle on the prompt only", range(4), ()), ("oracle on the answer only", (), range(4)),
            ("prompt all layers, answer layers >= 1", range(4), range(1, 4)),
            ("prompt layers >= 1, answer all layers", range(1, 4), range(4))]:
        def variant(m, p=tuple(prompt_layers), a=tuple(answer_layers)):
            return lambda l, h: (m if l in (p if h.shape[1] > 1 else a) else 0 * m).expand(h.shape[0], h.shape[1], -1)
        run(label, variant)
    for frac in (0.25, 0.5, 0.75):
        for early in ("base", "uniform"):
            def variant(m, frac=frac, early=early):
                other = torch.full_like(m, 1.0 / E) if early == "uniform" else 0 * m

                def gate(l, h):
                    if h.shape[1] == 1:
                        return m.expand(h.shape[0], 1, -1)
                    cut = int(frac * h.shape[1])
                    return torch.cat([other.expand(h.shape[0], cut, -1), m.expand(h.shape[0], h.shape[1] - cut, -1)], 1)
                return gate
            run(f"prompt's first {frac:.0%} on {early}, the rest oracle", variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
