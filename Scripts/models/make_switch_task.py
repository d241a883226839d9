#!/usr/bin/env python3
"""Writes the task-switching test set `Models/tasks/switch/test.jsonl` from the training tasks'
test sets (deterministic, no third-party packages).

Each example is a two-turn request whose right expert changes inside it: a first turn of task A
answered in the prompt (its prompt, its correct answer), then a second turn of another task B
asked; the completion is B's answer and `"task"` is B (the oracle's expert):

    Write mlc backwards.\\nAnswer: clm\\nConvert to uppercase: yyg\\nAnswer:  ->  " YYG"   (task uppercase)

A router that decides once from the whole request sees both tasks; one that follows the text
token by token can give the second turn its own expert. A and B are drawn uniformly among the 8
training tasks with A != B; both inputs come from test splits (never seen in training).

    python3 Scripts/models/make_switch_task.py [MODELS_DIR] [--count N]
"""
import argparse
import json
import random
from pathlib import Path

TASKS = ["reverse", "uppercase", "sort_letters", "double_letters", "hyphenate", "caesar", "remove_vowels", "repeat"]
SEED = 9100


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent.parent / "Models")
    ap.add_argument("--count", type=int, default=400)
    args = ap.parse_args()
    tests = {t: [json.loads(l) for l in (args.models / "tasks" / t / "test.jsonl").read_text().splitlines() if l.strip()]
             for t in TASKS}
    rng = random.Random(SEED)
    rows = []
    for _ in range(args.count):
        a, b = rng.sample(TASKS, 2)
        first, second = rng.choice(tests[a]), rng.choice(tests[b])
        rows.append({"task": b, "first_task": a,
                     "prompt": first["prompt"] + first["completion"] + "\n" + second["prompt"],
                     "completion": second["completion"]})
    out = args.models / "tasks" / "switch"
    out.mkdir(parents=True, exist_ok=True)
    (out / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {out / 'test.jsonl'}: {len(rows)} two-turn examples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
