#!/usr/bin/env python3
"""Train the embedded Switchyard demo setting in `Models/`.

Measured run time (CPU only, 2 cores, torch.set_num_threads(2)): data and tokenizer 9 s,
base 24.1 min (4000 steps), experts 13.3 min (8 LoRAs trained side by side, 1000 steps;
2026-12-06), eval 0.6 min; `Models/README.md` keeps the latest figures.

What it builds (all from fixed seeds; nothing is downloaded):

    Models/tasks/<task>/{train,dev,test}.jsonl   8 training tasks, 3 held-out tasks
    Models/tasks/mixed/test.jsonl                the 8 training tasks' test sets, shuffled
    Models/base/                                 tokenizer.json, config.json,
                                                 model.safetensors (bf16), generation_config.json
    Models/experts/<task>/                       one PEFT LoRA per training task
    Models/eval_python.json, Models/README.md    accuracy measured in Python (transformers+PEFT)

Stages (`--stage`, default `all`, which runs them in this order):

    data       task generators -> Models/tasks/
    tokenizer  byte-level BPE trained on the generic corpus + task texts
    base       LlamaForCausalLM pre-trained on the generic corpus (no task instructions)
    experts    one LoRA per training task (loss on completion + eos only)
    eval       greedy exact match: base, oracle expert, uniform merge -> eval_python.json, README
    readme     only rewrite Models/README.md (also written after experts and eval)

Each stage reads what the earlier ones wrote to the output directory, so a
single stage can be re-run on its own (`--stage experts`, `--stage eval`).

Usage (from the repository root):

    python3 -m venv .venv && .venv/bin/pip install -r Scripts/models/requirements.txt
    .venv/bin/python Scripts/models/train_demo.py              # everything into Models/
    .venv/bin/python Scripts/models/train_demo.py --quick      # tiny smoke run into a temp dir
    .venv/bin/python Scripts/models/train_demo.py --stage eval # re-measure only

Conventions the Swift side must follow (also in Models/README.md):

  * prompt ids  = [<|bos|>] + tokenizer.encode(prompt, add_special_tokens=False)
                  (identical to encode(prompt) with the default add_special_tokens=True:
                  the tokenizer's post-processor prepends <|bos|>);
  * generation  = greedy, stop at <|eos|> (id 1); the answer is the decoded text
                  before eos; exact match compares answer.strip() == completion.strip().

Determinism: every random choice comes from a seeded generator; torch runs with
deterministic algorithms and 2 threads, so a re-run on the same machine
reproduces the same files (other CPUs may differ in the last float bits).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
DEFAULT_OUT = REPO_ROOT / "Models"

SPECIAL_TOKENS = ["<|bos|>", "<|eos|>", "<|pad|>"]  # ids 0, 1, 2
BOS_ID, EOS_ID, PAD_ID = 0, 1, 2
NUM_THREADS = int(os.environ.get("SWITCHYARD_TRAIN_THREADS", "2"))

# --------------------------------------------------------------------------
# Settings (full run and --quick)
# --------------------------------------------------------------------------

FULL = dict(
    n_train=3000, n_dev=100, n_test=100,          # per training task
    task_n_train={},                              # per-task override of n_train
    heldout_train=50, heldout_dev=50, heldout_test=100,
    vocab_size=400,
    model=dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=2,
               intermediate_size=512),
    base_steps=4000, base_echo_steps=300, base_skill_frac=0.6, base_batch=16, base_block=128, base_lr=2e-3, base_warmup=100,
    lora_r=16, lora_alpha=32,
    expert_steps=1500, expert_batch=12, expert_lr=3e-3, expert_warmup=20, expert_eval_every=150,
    expert_distract=0.5, expert_substitute=0.4,
)
QUICK = dict(
    n_train=200, n_dev=20, n_test=20, task_n_train={},
    heldout_train=10, heldout_dev=10, heldout_test=20,
    vocab_size=400,
    model=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               intermediate_size=160),
    base_steps=30, base_echo_steps=10, base_skill_frac=0.5, base_batch=16, base_block=128, base_lr=3e-3, base_warmup=5,
    lora_r=8, lora_alpha=16,
    expert_steps=15, expert_batch=16, expert_lr=2e-3, expert_warmup=3, expert_distract=0.5, expert_substitute=0.4,
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def setup_torch() -> None:
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.stages: dict[str, float] = {}

    def stage(self, name: str, seconds: float) -> None:
        self.stages[name] = round(seconds, 1)
        print(f"[time] {name}: {seconds:.1f}s (total {time.perf_counter() - self.t0:.1f}s)", flush=True)


# --------------------------------------------------------------------------
# Vocabulary: real words, pronounceable pseudo-words, random letter strings
# --------------------------------------------------------------------------

NOUNS = (
    "apple river stone cloud table garden window bread horse music paper light water forest "
    "chair house plant field bird fish tree road book lamp door ship train coat shoe ring "
    "hand face king queen child night city farm hill lake moon star rain snow wind fire "
    "sand rock leaf seed root bell boat cake milk salt corn rice wolf bear deer frog duck "
    "goat lion mouse tiger zebra camel eagle whale shark snake spider rabbit monkey turtle "
    "pencil bottle basket button candle carpet castle cookie dragon engine flower ladder "
    "letter market mirror needle orange pepper pillow pocket rocket saddle silver spoon "
    "summer winter autumn spring valley island desert ocean planet garden bridge tower "
    "tunnel street village doctor farmer sailor singer writer player teacher painter "
    "baker hunter jacket hammer kettle lemon melon onion peach plum grape berry honey "
    "sugar butter cheese bread soup tea cup plate bowl fork knife box bag key map clock"
).split()
VERBS = (
    "runs jumps sings reads writes walks swims flies sleeps eats drinks plays builds finds "
    "opens closes carries pulls pushes paints draws watches sees hears likes wants needs "
    "holds brings takes makes moves turns lifts drops catches throws cleans cooks grows"
).split()
ADJECTIVES = (
    "big small red blue green yellow old new quick slow happy sad bright dark warm cold "
    "soft hard tall short long round sweet sour loud quiet brave calm clever gentle proud "
    "heavy light clean dirty empty full early late young fresh wild tiny huge rich poor"
).split()
NAMES = "Anna Ben Clara David Emma Felix Grace Hugo Iris Jack Kate Leo Mia Noah Olga Paul Rosa Sam Tom Vera".split()
PLACES = "the park,the house,the forest,the lake,the city,the market,the garden,the school,the field,the river".split(",")
COLORS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black", "sun": "yellow",
          "blood": "red", "milk": "white", "leaf": "green", "night": "black", "lemon": "yellow"}
SOUNDS = {"cow": "moo", "dog": "woof", "cat": "meow", "duck": "quack", "sheep": "baa",
          "lion": "roar", "owl": "hoot", "bee": "buzz", "pig": "oink", "horse": "neigh"}
OPPOSITES = {"hot": "cold", "big": "small", "up": "down", "fast": "slow", "old": "new",
             "happy": "sad", "light": "dark", "open": "closed", "early": "late", "full": "empty",
             "soft": "hard", "tall": "short", "rich": "poor", "wet": "dry", "left": "right"}
REAL_WORDS = sorted(set(NOUNS + VERBS + ADJECTIVES))

CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"
LETTERS = string.ascii_lowercase


def pseudo_word(rng: random.Random, lo: int, hi: int) -> str:
    """Pronounceable: alternating consonant/vowel runs, length in [lo, hi]."""
    n = rng.randint(lo, hi)
    out = []
    consonant = rng.random() < 0.7
    while len(out) < n:
        out.append(rng.choice(CONSONANTS if consonant else VOWELS))
        consonant = not consonant if rng.random() < 0.85 else consonant
    return "".join(out)


def random_letters(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(lo, hi)))


def any_word(rng: random.Random, lo: int, hi: int) -> str:
    """A real word (when one of that length exists), a pseudo-word or random letters."""
    r = rng.random()
    if r < 0.3:
        pool = [w for w in REAL_WORDS if lo <= len(w) <= hi]
        if pool:
            return rng.choice(pool)
    if r < 0.7:
        return pseudo_word(rng, lo, hi)
    return random_letters(rng, lo, hi)


# --------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------
#
# A task = templates (instruction phrasings, each with its input slots) + an input
# sampler + the answer function.  prompt = instruction + "\nAnswer:", completion =
# " " + answer.  `key` identifies an input so dev/test inputs never occur in train.

ANSWER_SUFFIX = "\nAnswer:"


def caesar(word: str, n: int) -> str:
    return "".join(LETTERS[(LETTERS.index(c) + n) % 26] for c in word)


def ordinal_times(n: int, rng: random.Random) -> str:
    return {2: rng.choice(["2 times", "twice"]), 3: rng.choice(["3 times", "three times"])}[n]


TASKS: dict[str, dict] = {
    "reverse": dict(
        templates=[
            "Reverse the word: {w}",
            "Write {w} backwards.",
            "What is {w} with its letters in reverse order?",
            "Take the word {w} and reverse it.",
            "{w} reversed is what?",
            "Please reverse this string: {w}",
        ],
        more_templates=[
            "Reverse {w}.",
            "Give me {w} in reverse.",
            "Turn {w} around, letter by letter.",
            "How is {w} written backwards?",
            "Write the letters of {w} in the opposite order.",
            "What do you get if you reverse {w}?",
            "Backwards, {w} is what?",
            "Reverse the letters in {w}, please.",
            "Spell {w} in reverse.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 6)},
        answer=lambda x: x["w"][::-1],
    ),
    "uppercase": dict(
        templates=[
            "Convert to uppercase: {w}",
            "Write {w} in capital letters.",
            "What is {w} in upper case?",
            "Make every letter of {w} a capital.",
            "{w} in all caps is what?",
            "Please capitalize the whole word {w}.",
        ],
        more_templates=[
            "Uppercase {w}.",
            "Write {w} using only capital letters.",
            "Turn {w} into upper case.",
            "Capitalize every letter in {w}.",
            "How is {w} written in uppercase?",
            "Give me {w} in block capitals.",
            "Change {w} to all uppercase letters.",
            "Put {w} in capitals.",
            "What does {w} look like in upper case letters?",
        ],
        unseen_templates=[
            "Shout {w} with every letter big.",
            "Render {w} entirely in majuscules.",
            "Make {w} loud: all letters large.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 7)},
        answer=lambda x: x["w"].upper(),
    ),
    "sort_letters": dict(
        templates=[
            "Sort the letters of {w} alphabetically.",
            "Put the letters in {w} in alphabetical order.",
            "What do you get when you sort the letters of {w}?",
            "Arrange the characters of {w} from a to z.",
            "{w} with its letters sorted is what?",
        ],
        more_templates=[
            "Alphabetize the letters of {w}.",
            "Write the letters of {w} in order from a to z.",
            "Sort {w}.",
            "Order the characters in {w} alphabetically.",
            "Give me the letters of {w} sorted.",
            "How are the letters of {w} ordered alphabetically?",
            "Rearrange {w} so its letters are in alphabetical order.",
            "Sort the characters of the word {w}.",
            "Place the letters of {w} in dictionary order.",
            "Put {w} in alphabetical order, letter by letter.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 5)},
        answer=lambda x: "".join(sorted(x["w"])),
    ),
    "double_letters": dict(
        templates=[
            "Double every letter of {w}.",
            "Write each letter of {w} twice.",
            "What is {w} with every letter doubled?",
            "Repeat each character in {w} two times.",
            "{w} with doubled letters is what?",
        ],
        more_templates=[
            "Double each letter in {w}.",
            "Write {w} with every character twice.",
            "Give me {w} with each letter written two times.",
            "How does {w} look with all letters doubled?",
            "Duplicate every letter of {w}.",
            "Say each letter of {w} twice in a row.",
            "Double the letters of the word {w}.",
            "Make every letter in {w} appear twice.",
            "Type {w} doubling each of its letters.",
            "Repeat every letter of {w} once more.",
        ],
        unseen_templates=[
            "Stutter each letter of {w}.",
            "Let every letter of {w} appear as a pair.",
            "Twin up each letter in {w}.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 6)},
        answer=lambda x: "".join(c + c for c in x["w"]),
    ),
    "hyphenate": dict(
        templates=[
            "Put a dash between the letters of {w}.",
            "Spell {w} with hyphens between its letters.",
            "Write the letters of {w} separated by dashes.",
            "What is {w} spelled out with a hyphen after each letter but the last?",
            "Insert hyphens between all letters of {w}.",
        ],
        more_templates=[
            "Hyphenate {w} letter by letter.",
            "Separate the letters of {w} with hyphens.",
            "Write {w} with a dash after each letter except the last.",
            "Give me {w} with hyphens between its letters.",
            "Join the letters of {w} with dashes.",
            "How is {w} written with dashes between the letters?",
            "Put hyphens between the letters of the word {w}.",
            "Split {w} into letters joined by hyphens.",
            "Add a hyphen between each pair of letters in {w}.",
            "Spell out {w} using dashes.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 7)},
        answer=lambda x: "-".join(x["w"]),
    ),
    "caesar": dict(
        templates=[
            "Shift each letter of {w} forward by one.",
            "Apply a Caesar shift of 1 to {w}.",
            "Encode {w} with a Caesar cipher, key 1.",
            "Replace every letter in {w} with the next letter of the alphabet.",
            "Caesar cipher with shift one: {w}",
        ],
        more_templates=[
            "Caesar shift {w} by one.",
            "Move each letter of {w} one step forward in the alphabet.",
            "Encrypt {w} with a shift of one.",
            "Advance every letter of {w} by one place.",
            "What is {w} after a Caesar shift of one?",
            "Replace each letter of {w} with the letter after it.",
            "Shift the letters in {w} up by one.",
            "Apply a shift of 1 to every letter of {w}.",
            "Give the next letter for each letter of {w}.",
            "Rotate each letter of {w} by one.",
        ],
        unseen_templates=[
            "Bump every letter of {w} to its successor.",
            "Each letter of {w} becomes the one that follows it; what is the result?",
            "Nudge the letters of {w} one notch along the alphabet.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 6), "n": 1},
        answer=lambda x: caesar(x["w"], x["n"]),
    ),
    "remove_vowels": dict(
        templates=[
            "Remove the vowels from {w}.",
            "Delete every vowel in the word {w}.",
            "What is {w} without its vowels?",
            "Drop all the a, e, i, o and u letters from {w}.",
            "{w} with no vowels is what?",
        ],
        more_templates=[
            "Strip the vowels out of {w}.",
            "Write {w} without any vowels.",
            "Take out every vowel from {w}.",
            "Give me {w} with the vowels removed.",
            "Keep only the consonants of {w}.",
            "Erase the vowels in {w}.",
            "What is left of {w} once its vowels are gone?",
            "Remove a, e, i, o and u from the word {w}.",
            "Cut every vowel out of {w}.",
            "Delete the vowels of {w}.",
        ],
        sample=lambda rng: _sample_remove_vowels(rng),
        answer=lambda x: "".join(c for c in x["w"] if c not in VOWELS),
    ),
    "repeat": dict(
        templates=[
            "Repeat the word {w} {t}.",
            "Say {w} {t}.",
            "Write {w} {t}, separated by spaces.",
            "Give me the word {w}, repeated {t}.",
            "{t}, write the word {w}.",
        ],
        more_templates=[
            "Write the word {w} {t}.",
            "Repeat {w} {t}.",
            "Print {w} {t}.",
            "Type {w} {t} with spaces between.",
            "Give me {w} {t}.",
            "Echo the word {w} {t}.",
            "Output {w} {t}.",
            "Please say the word {w} {t}.",
            "Copy {w} {t}, separated by spaces.",
            "Can you write {w} {t}?",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 6), "n": rng.randint(2, 3)},
        answer=lambda x: " ".join([x["w"]] * x["n"]),
    ),
}

TASK_INDEX = {}  # filled below

# Held-out tasks: no expert is trained on them (train = a small few-shot pool).
HELDOUT: dict[str, dict] = {
    # Composition of two skills (reverse, then uppercase).
    "reverse_upper": dict(
        templates=[
            "Reverse the word {w} and write it in capital letters.",
            "Write {w} backwards in upper case.",
            "What is {w} reversed and in all caps?",
            "Take {w}, reverse it, then capitalize every letter.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 6)},
        answer=lambda x: x["w"][::-1].upper(),
    ),
    # A new phrasing family of the reverse skill (no "reverse"/"backwards").
    "spell_backwards": dict(
        templates=[
            "Spell {w} starting from its last letter.",
            "Mirror the letters of {w}.",
            "Read {w} from right to left.",
            "Flip the letter order of {w}.",
        ],
        sample=lambda rng: {"w": any_word(rng, 3, 6)},
        answer=lambda x: x["w"][::-1],
    ),
    # Composition of two skills (remove the vowels, then uppercase).
    "upper_no_vowels": dict(
        templates=[
            "Remove the vowels from {w} and write the rest in capital letters.",
            "Delete every vowel of {w}, then capitalize what is left.",
            "What is {w} without vowels, in upper case?",
            "Drop the vowels of {w} and write it in all caps.",
        ],
        sample=lambda rng: _sample_remove_vowels(rng),
        answer=lambda x: "".join(c for c in x["w"] if c not in VOWELS).upper(),
    ),
}


# Held-out tasks of kind (a): a known skill asked for in phrasings no expert saw (the skill's
# `unseen_templates`, on the skill's own inputs).  HELDOUT's tasks are kind (b), new tasks near two
# skills, and `spell_backwards` (a new phrasing family of reverse, kind (a) as well).
REPHRASED: dict[str, str] = {f"{skill}_rephrased": skill for skill in ("uppercase", "caesar", "double_letters")}
HELDOUT_NAMES = list(HELDOUT) + list(REPHRASED)


def task_phrasings(name: str) -> list[str]:
    """The phrasings of a task as `Models/tasks` holds it."""
    if name in REPHRASED:
        return phrasings(TASKS[REPHRASED[name]], "unseen")
    if name in TASKS:
        return phrasings(TASKS[name], "extended")
    return HELDOUT[name]["templates"]


TASK_INDEX.update({n: i for i, n in enumerate(TASKS)})


def _sample_remove_vowels(rng: random.Random) -> dict:
    while True:
        w = any_word(rng, 4, 8)
        if any(c in VOWELS for c in w) and any(c not in VOWELS for c in w):
            return {"w": w}


def phrasings(spec: dict, which: str) -> list[str]:
    """The instruction phrasings a task's rows are drawn from.

    `original`: the first phrasings (`templates`), the only ones before the experts learned skills; the
    tokenizer and the base model are built from this version of the data, so they regenerate bit for bit.
    `extended`: `templates` + `more_templates` (15 per training task), what the experts are trained and
    tested on.  `unseen_templates` (3 per skill that has them) are in neither: the `<skill>_rephrased`
    held-out tasks ask for a known skill in words no expert has seen."""
    if which == "original":
        return spec["templates"]
    if which == "extended":
        return spec["templates"] + spec.get("more_templates", [])
    if which == "unseen":
        return spec["unseen_templates"]
    raise ValueError(which)


def render(spec: dict, rng: random.Random, which: str = "original",
           phrasing_rng: random.Random | None = None) -> tuple[dict, str, str]:
    """One row.  The input (and the `{t}` wording) comes from `rng` exactly as in the original
    data, whatever `which` is, so every version of the data has the same inputs in the same order
    (and the same dev/test inputs, which the base model's skill listings avoid); other versions pick
    the phrasing with their own generator."""
    x = spec["sample"](rng)
    ti = rng.randrange(len(spec["templates"]))
    slots = dict(x)
    if "n" in x and "{t}" in "".join(spec["templates"]):
        slots["t"] = ordinal_times(x["n"], rng)
    if which != "original":
        pool = phrasings(spec, which)
        template = pool[phrasing_rng.randrange(len(pool))]
    else:
        template = spec["templates"][ti]
    prompt = template.format(**slots) + ANSWER_SUFFIX
    # Sentence-initial lowercase input words stay lowercase (they are data, not prose).
    return x, prompt, " " + spec["answer"](x)


def input_key(x: dict) -> str:
    return json.dumps(x, sort_keys=True)


def make_splits(spec: dict, seed: int, sizes: dict[str, int], which: str = "original") -> dict[str, list[dict]]:
    """test, then dev, then train, with pairwise disjoint inputs."""
    rng = random.Random(seed)
    phrasing_rng = random.Random(seed + 500_000)
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    for split in ("test", "dev", "train"):
        rows = []
        tries = 0
        while len(rows) < sizes[split]:
            tries += 1
            assert tries < 200 * sizes[split] + 1000, f"cannot find enough unique inputs ({split})"
            x, prompt, completion = render(spec, rng, which, phrasing_rng)
            k = input_key(x)
            if k in seen:
                continue
            seen.add(k)
            rows.append({"prompt": prompt, "completion": completion})
        out[split] = rows
    return out


def build_tasks(cfg: dict, version: str = "extended") -> dict[str, dict[str, list[dict]]]:
    """Every task's splits.  `version` `original` rebuilds the data the tokenizer and the base model
    were made from (the first phrasings, no `_rephrased` tasks); `extended` is what `Models/tasks`
    holds (see `phrasings`)."""
    tasks = {}
    for i, (name, spec) in enumerate(TASKS.items()):
        sizes = {"train": cfg.get("task_n_train", {}).get(name, cfg["n_train"]),
                 "dev": cfg["n_dev"], "test": cfg["n_test"]}
        tasks[name] = make_splits(spec, 1000 + i, sizes, "original" if version == "original" else "extended")
    for i, (name, spec) in enumerate(HELDOUT.items()):
        sizes = {"train": cfg["heldout_train"], "dev": cfg["heldout_dev"], "test": cfg["heldout_test"]}
        tasks[name] = make_splits(spec, 2000 + i, sizes)
    if version == "extended":
        for name, skill in REPHRASED.items():
            # The skill's own inputs (its test inputs are its test inputs here too, so the base model's
            # listings avoid them), in phrasings no expert saw.
            i = list(TASKS).index(skill)
            sizes = {"train": cfg.get("task_n_train", {}).get(skill, cfg["n_train"]),
                     "dev": cfg["n_dev"], "test": cfg["n_test"]}
            splits = make_splits(TASKS[skill], 1000 + i, sizes, "unseen")
            tasks[name] = {"train": splits["train"][:cfg["heldout_train"]], "dev": splits["dev"][:cfg["heldout_dev"]],
                           "test": splits["test"][:cfg["heldout_test"]]}
    return tasks


def mixed_test(tasks: dict) -> list[dict]:
    rows = [{"task": name, **r} for name in TASKS for r in tasks[name]["test"]]
    random.Random(3000).shuffle(rows)
    return rows


def stage_data(out: Path, cfg: dict) -> None:
    tasks = build_tasks(cfg)
    root = out / "tasks"
    if root.exists():
        shutil.rmtree(root)
    for name, splits in tasks.items():
        for split, rows in splits.items():
            write_jsonl(root / name / f"{split}.jsonl", rows)
    write_jsonl(root / "mixed" / "test.jsonl", mixed_test(tasks))
    (root / "README.md").write_text(tasks_readme(tasks))
    for name, splits in tasks.items():
        ex = splits["test"][0]
        print(f"[data] {name:15s} train {len(splits['train']):5d} dev {len(splits['dev']):4d} "
              f"test {len(splits['test']):4d}   e.g. {ex['prompt']!r} -> {ex['completion']!r}")


def load_tasks(out: Path) -> dict[str, dict[str, list[dict]]]:
    root = out / "tasks"
    return {name: {s: read_jsonl(root / name / f"{s}.jsonl") for s in ("train", "dev", "test")}
            for name in list(TASKS) + HELDOUT_NAMES}


# --------------------------------------------------------------------------
# Generic pre-training corpus (no task instructions)
# --------------------------------------------------------------------------


def _sentence(rng: random.Random) -> str:
    k = rng.randrange(8)
    n1, n2 = rng.choice(NOUNS), rng.choice(NOUNS)
    a1, a2 = rng.choice(ADJECTIVES), rng.choice(ADJECTIVES)
    v = rng.choice(VERBS)
    name = rng.choice(NAMES)
    place = rng.choice(PLACES)
    num = rng.randint(2, 99)
    if k == 0:
        return f"The {a1} {n1} {v} near the {n2}."
    if k == 1:
        return f"{name} {v} in {place} every morning."
    if k == 2:
        return f"There are {num} {n1}s in {place}."
    if k == 3:
        return f"A {a1} {n1} and a {a2} {n2} were in {place}."
    if k == 4:
        return f"{name} has {num} {n1}s and {rng.randint(2, 99)} {n2}s."
    if k == 5:
        return f"The {n1} is {a1}, but the {n2} is {a2}."
    if k == 6:
        w = pseudo_word(rng, 3, 7)
        return f"{name} met a {a1} {w} in {place}."
    return f"In the year {rng.randint(1900, 2030)}, {name} {v} {rng.randint(2, 99)} times."


def _story(rng: random.Random) -> str:
    """A paragraph that keeps mentioning one made-up word: the model learns to copy
    an unseen word it has read earlier in the context (induction)."""
    w = any_word(rng, 3, 8)
    n1, n2 = rng.choice(NOUNS), rng.choice(NOUNS)
    a = rng.choice(ADJECTIVES)
    name = rng.choice(NAMES)
    parts = [f"The {w} is a {a} {n1}.", f"{name} saw a {w} in {rng.choice(PLACES)}.",
             f"Every {w} likes {n2}s.", f"A {w} {rng.choice(VERBS)} all day.",
             f"Nobody knows where the {w} sleeps.", f"{name} said: {w}, {w}!",
             f"The word {w} has {len(w)} letters."]
    rng.shuffle(parts)
    return " ".join(parts[:rng.randint(2, 4)])


def _qa(rng: random.Random) -> str:
    """A simple question with its answer (world facts and letter facts; never one of
    the task skills)."""
    form = rng.randrange(10)
    if form == 0:
        thing = rng.choice(list(COLORS))
        q, a = rng.choice([f"What color is the {thing}?", f"The {thing} has which color?"]), COLORS[thing]
    elif form == 1:
        animal = rng.choice(list(SOUNDS))
        q, a = f"What does a {animal} say?", SOUNDS[animal]
    elif form == 2:
        w = rng.choice(list(OPPOSITES))
        q, a = f"What is the opposite of {w}?", OPPOSITES[w]
    elif form == 3:
        w = any_word(rng, 2, 9)
        q, a = rng.choice([f"What is the first letter of {w}?", f"Which letter does {w} start with?"]), w[0]
    elif form == 4:
        w = any_word(rng, 2, 9)
        q, a = rng.choice([f"What is the last letter of {w}?", f"Which letter does {w} end with?"]), w[-1]
    elif form == 5:
        w = rng.choice(NOUNS) if rng.random() < 0.5 else any_word(rng, 3, 8)
        q, a = f"What is the plural of {w}?", w + "s"
    elif form == 6:
        w = any_word(rng, 2, 8)
        q, a = f"How long is the word {w}?", f"{len(w)} letters"
    elif form == 7:
        words = [any_word(rng, 3, 8) for _ in range(rng.randint(2, 4))]
        i = rng.randrange(len(words))
        nth = ["first", "second", "third", "fourth"][i]
        q, a = f"Which is the {nth} word in: {' '.join(words)}?", words[i]
    elif form == 8:
        w = any_word(rng, 3, 8)
        q, a = rng.choice([f"Copy the word {w}.", f"Type {w} exactly.", f"Echo: {w}"]), w
    else:
        w = any_word(rng, 3, 8)
        q, a = f"Spell {w} with dashes.", "-".join(w)
    return f"{q}\nAnswer: {a}"


def _echo(rng: random.Random) -> str:
    """A run of made-up words, then the same run again: pure copying."""
    words = [any_word(rng, 2, 7) for _ in range(rng.randint(1, 4))]
    sep = rng.choice([" ", ", "])
    lead = rng.choice(["Again: ", "Once more: ", "I said ", "Repeat after me: ", "= "])
    return f"{sep.join(words)}. {lead}{sep.join(words)}."


def _primitive(rng: random.Random) -> str:
    """Letter and digit facts the skills build on, in plain listings (no
    instructions): lower/upper case pairs, the alphabet in order, one-digit sums."""
    form = rng.randrange(5)
    if form == 0:  # a word next to its capitalised form
        w = any_word(rng, 2, 8)
        return rng.choice([f"{w} / {w.upper()}", f"{w.upper()} ({w})", f"{w}, {w.upper()}, {w}"])
    if form == 1:  # letter pairs
        i = rng.randint(0, 20)
        return " ".join(c + c.upper() for c in LETTERS[i:i + rng.randint(4, 26 - i)])
    if form == 2:  # alphabet stretches
        i = rng.randint(0, 22)
        return " ".join(LETTERS[i:i + rng.randint(3, 26 - i)])
    if form == 3:  # a letter and the one after it
        pairs = []
        for _ in range(rng.randint(2, 6)):
            j = rng.randrange(26)
            pairs.append(f"{LETTERS[j]}{LETTERS[(j + 1) % 26]}")
        return " ".join(pairs)
    a, b = rng.randint(0, 9), rng.randint(0, 9)  # one-digit sums
    return f"{a} + {b} = {a + b}"


def _generic_line(rng: random.Random) -> str:
    """One 'document' of the generic corpus."""
    k = rng.randrange(20)
    if k <= 1:  # plain sentences
        return " ".join(_sentence(rng) for _ in range(rng.randint(1, 3)))
    if k <= 4:
        return _story(rng) if k <= 3 else _primitive(rng)
    if k <= 10:
        return _qa(rng) if k <= 8 else _primitive(rng)
    if k <= 12:  # spelling (letters of a word)
        w = any_word(rng, 2, 9)
        form = rng.randrange(4)
        if form == 0:
            return f"{w} is spelled {' '.join(w)}."
        if form == 1:
            return f"The letters of {w}: {', '.join(w)}."
        if form == 2:
            return f"{' '.join(w)} spells {w}."
        return f"{w}: {'-'.join(w)}"
    if k <= 16:
        return _echo(rng)
    if k == 17:  # a list of words, or counting
        if rng.random() < 0.5:
            words = [any_word(rng, 2, 9) for _ in range(rng.randint(3, 8))]
            return rng.choice(["Words: ", "List: ", "", "Items: "]) + rng.choice([", ", " ", "\n"]).join(words)
        start = rng.randint(0, 190)
        return rng.choice(["Counting: ", "Numbers: ", ""]) + " ".join(
            str(i) for i in range(start, start + rng.randint(3, 10)))
    if k == 18:
        if rng.random() < 0.5:  # the alphabet (a stretch of it), lower or upper case
            i = rng.randint(0, 20)
            seg = LETTERS[i:i + rng.randint(4, 26 - i)]
            if rng.random() < 0.4:
                seg = seg.upper()
            return rng.choice(["Alphabet: ", "Letters: ", ""]) + " ".join(seg)
        w = rng.choice(NOUNS)  # capitals in text: headings, names, shouting
        form = rng.randrange(3)
        if form == 0:
            return f"{w.upper()}: {_sentence(rng)}"
        if form == 1:
            return f"The sign said {any_word(rng, 3, 8).upper()} in big letters."
        return f"{rng.choice(NAMES)} wrote {w.capitalize()} and {rng.choice(NAMES).upper()}."
    if rng.random() < 0.5:  # pseudo-words in prose
        return f"The word {pseudo_word(rng, 3, 8)} means a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}."
    return f"{rng.choice(NAMES)}: I like the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}.\n" \
           f"{rng.choice(NAMES)}: So do I."


def copy_probe(rng: random.Random, n: int) -> list[dict]:
    """Generic copy questions (not tasks) to watch the base model learn to copy."""
    rows = []
    for _ in range(n):
        w = any_word(rng, 3, 8)
        q = rng.choice([f"Copy the word {w}.", f"What is the first letter of {w}?", f"What is the plural of {w}?"])
        a = w if q.startswith("Copy") else (w[0] if "first" in q else w + "s")
        rows.append({"prompt": q + ANSWER_SUFFIX, "completion": " " + a})
    return rows


# Instruction-free notation for the skills: "input SYMBOL output", a few lines of
# one skill per document.  The base model learns the letter/number skills from
# these listings but never sees an instruction, so it cannot tell which skill a
# task prompt asks for (it scores ~0 on the tasks); an expert learns to map the
# instruction phrasings onto its skill.  No dev/test input of any task occurs in
# a listing (see RESERVED).
SKILL_NOTATION = {
    "uppercase": lambda x: (f"{x['w']} /", " " + x["w"].upper()),
    "reverse": lambda x: (f"{x['w']} <>", " " + x["w"][::-1]),
    "sort_letters": lambda x: (f"{x['w']} ^", " " + "".join(sorted(x["w"]))),
    "caesar": lambda x: (f"{x['w']} >>", " " + caesar(x["w"], 1)),
    "remove_vowels": lambda x: (f"{x['w']} -", " " + "".join(c for c in x["w"] if c not in VOWELS)),
    "repeat": lambda x: (f"{x['w']} * {x['n']} =", " " + " ".join([x["w"]] * x["n"])),
    "double_letters": lambda x: (f"{x['w']} ::", " " + "".join(c + c for c in x["w"])),
    "hyphenate": lambda x: (f"{x['w']} |", " " + "-".join(x["w"])),
}
RESERVED: set[str] = set()  # filled by reserve_eval_inputs()


def reserve_eval_inputs(tasks: dict) -> None:
    """Every word in any dev/test input of any task is kept out of the skill listings."""
    RESERVED.clear()
    for splits in tasks.values():
        for split in ("dev", "test"):
            for r in splits[split]:
                RESERVED.update(t.strip(".,:?") for t in r["prompt"].split())


def _skill_input(rng: random.Random, skill: str) -> dict:
    while True:
        x = TASKS[skill]["sample"](rng)
        if x["w"] not in RESERVED:
            return x


# How often each skill's listing is drawn: sort_letters, the slowest to learn,
# gets more of the data.  (Before, add two integers 0-99 and count a letter were
# skills here; this 1.6M-parameter base reached only 67% and 81% on them in
# listing form, and their experts 9% and 71% on the task prompts, so they were
# replaced by double_letters and hyphenate; see Models/README.md.)
SKILL_WEIGHTS = {"uppercase": 1.0, "reverse": 1.0, "sort_letters": 2.5, "caesar": 1.0,
                 "remove_vowels": 0.75, "repeat": 0.75, "double_letters": 1.0, "hyphenate": 0.75}
# Half of the listing lines put a run of 1-6 filler dots between the input and the
# answer, so the skills are learned independently of that distance (the task
# prompts put a sentence and "Answer:" there).
GAP_PROB, MAX_GAP = 0.5, 6
# Every listing line starts with "~ " so that its word is spelled with the same
# tokens as inside a sentence (" f", "a", ... rather than "f", "a", ...), as in
# the task prompts.
LINE_MARK = "~ "


def _skill_listing(rng: random.Random) -> str:
    skill = rng.choices(list(SKILL_WEIGHTS), weights=list(SKILL_WEIGHTS.values()))[0]
    lines = []
    for _ in range(rng.randint(2, 4)):
        x = _skill_input(rng, skill)
        q, a = SKILL_NOTATION[skill](x)
        if rng.random() < GAP_PROB:
            q += " ." * rng.randint(1, MAX_GAP)
        lines.append(LINE_MARK + q + a)
    return "\n".join(lines)


def generic_corpus(seed: int, n_docs: int, echo_frac: float = 0.0, skill_frac: float = 0.0) -> list[str]:
    """n_docs documents: echo_frac of them `_echo`, skill_frac skill listings, the
    rest generic (see stage_base for the phases)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_docs):
        u = rng.random()
        out.append(_echo(rng) if u < echo_frac else
                   _skill_listing(rng) if u < echo_frac + skill_frac else _generic_line(rng))
    return out


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------
#
# Byte-level BPE whose split regex isolates every letter (with an optional leading
# space): BPE merges can join a space to the letter after it, digits, punctuation
# runs and whitespace, but never two letters.  Every word is therefore spelled
# letter by letter, which is what the character-level tasks need with a model this
# small (the same reason Llama-3 caps digit runs at 3 and Qwen2 splits digits).

SPLIT_PATTERN = r" ?\p{L}| ?\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def stage_tokenizer(out: Path, cfg: dict) -> None:
    tasks = build_tasks(cfg, "original")  # the data version the committed tokenizer was built from
    corpus = generic_corpus(seed=77, n_docs=20000)
    for splits in tasks.values():
        for r in splits["train"]:
            corpus.append(r["prompt"] + r["completion"])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg["vocab_size"], min_frequency=2, show_progress=False,
        special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|>:1 $B:1", special_tokens=[("<|bos|>", BOS_ID)])
    base = out / "base"
    base.mkdir(parents=True, exist_ok=True)
    tok.save(str(base / "tokenizer.json"))

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, s
    # Prompt + completion tokenize as the concatenation of the two (what generation sees).
    n_checked = 0
    for splits in tasks.values():
        for rows in splits.values():
            for r in rows:
                p = tok.encode(r["prompt"], add_special_tokens=False).ids
                c = tok.encode(r["completion"], add_special_tokens=False).ids
                assert tok.encode(r["prompt"] + r["completion"], add_special_tokens=False).ids == p + c, r
                assert tok.decode(c) == r["completion"], r
                n_checked += 1
    ex = tasks["reverse"]["test"][0]
    ids = tok.encode(ex["prompt"] + ex["completion"]).ids
    print(f"[tok] vocab {tok.get_vocab_size()} ({len(json.loads((base / 'tokenizer.json').read_text())['model']['merges'])} merges); "
          f"additivity checked on {n_checked} examples")
    print(f"[tok] e.g. {[tok.id_to_token(i) for i in ids]}")


def load_tokenizer(out: Path) -> Tokenizer:
    return Tokenizer.from_file(str(out / "base" / "tokenizer.json"))


def encode_example(tok: Tokenizer, prompt: str, completion: str | None = None) -> tuple[list[int], list[int]]:
    p = [BOS_ID] + tok.encode(prompt, add_special_tokens=False).ids
    c = [] if completion is None else tok.encode(completion, add_special_tokens=False).ids + [EOS_ID]
    return p, c


# --------------------------------------------------------------------------
# Base model
# --------------------------------------------------------------------------


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def base_config(cfg: dict, vocab: int) -> LlamaConfig:
    m = cfg["model"]
    c = LlamaConfig(
        vocab_size=vocab, hidden_size=m["hidden_size"], num_hidden_layers=m["num_hidden_layers"],
        num_attention_heads=m["num_attention_heads"], num_key_value_heads=m["num_key_value_heads"],
        head_dim=m["hidden_size"] // m["num_attention_heads"], intermediate_size=m["intermediate_size"],
        max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, hidden_act="silu",
        attention_bias=False, mlp_bias=False, initializer_range=0.02,
    )
    return c


def stage_base(out: Path, cfg: dict) -> None:
    tok = load_tokenizer(out)
    vocab = tok.get_vocab_size()
    block, batch, steps = cfg["base_block"], cfg["base_batch"], cfg["base_steps"]

    # Token stream: [bos] doc [eos] [bos] doc [eos] ... cut into blocks of `block`.
    # Curriculum: during the first `base_echo_steps` steps 70% of the documents are
    # echo documents (a run of made-up words, then the same run again).  A model
    # this small, reading letter by letter, only learns to copy (induction heads)
    # after a few hundred steps of such strongly repetitive text; on the generic
    # mixture alone it had not learned to copy after 1200 steps.  Copying is what
    # every task needs.
    t0 = time.perf_counter()

    reserve_eval_inputs(build_tasks(cfg, "original"))  # the same inputs as Models/tasks, the first phrasings

    def blocks(n_blocks: int, seed: int, echo_frac: float, skill_frac: float) -> torch.Tensor:
        stream: list[int] = []
        while len(stream) < n_blocks * block:
            docs = generic_corpus(seed=seed, n_docs=5000, echo_frac=echo_frac, skill_frac=skill_frac)
            seed += 1
            for enc in tok.encode_batch(docs, add_special_tokens=False):
                stream.extend([BOS_ID] + enc.ids + [EOS_ID])
        d = torch.tensor(stream[: n_blocks * block], dtype=torch.long).view(-1, block)
        return d[torch.randperm(d.shape[0], generator=torch.Generator().manual_seed(seed))]

    warm = min(cfg["base_echo_steps"], steps)
    data = torch.cat([blocks(warm * batch, 500, 0.7, 0.0),
                      blocks((steps - warm) * batch, 600, 0.0, cfg["base_skill_frac"])])
    print(f"[base] corpus: {data.numel()} tokens in {data.shape[0]} blocks of {block} "
          f"(first {warm} steps echo-heavy, then {cfg['base_skill_frac']:.0%} skill listings; "
          f"{time.perf_counter() - t0:.1f}s)", flush=True)

    seed_all(42)
    config = base_config(cfg, vocab)
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).to(torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[base] LlamaForCausalLM {n_params / 1e6:.2f}M parameters "
          f"(hidden {config.hidden_size}, {config.num_hidden_layers} layers, vocab {vocab})", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg["base_lr"], betas=(0.9, 0.95), eps=1e-8)
    # Diagnostics (not used for training): copying, and each skill in its notation.
    probe = [dict(r, kind="copy") for r in copy_probe(random.Random(9), 8)]
    prng = random.Random(10)
    for skill, fn in SKILL_NOTATION.items():
        for _ in range(16):
            q, a = fn(TASKS[skill]["sample"](prng))
            probe.append({"prompt": LINE_MARK + q, "completion": a, "kind": skill})
    probe_kinds = ["copy"] + list(SKILL_NOTATION)
    model.train()
    t0 = time.perf_counter()
    running = None
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, cfg["base_lr"], cfg["base_warmup"])
        x = data[step * batch:(step + 1) * batch]
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            dt = time.perf_counter() - t0
            msg = ""
            if step % 100 == 0 or step == steps - 1:
                model.eval()
                tp = time.perf_counter()
                answers = greedy_answers(model, tok, [r["prompt"] for r in probe], 24)
                # a listing line ends at the newline (documents end at <|eos|>, lines do not)
                ok = [a.split("\n")[0].replace(" .", "").strip() == r["completion"].strip() for a, r in zip(answers, probe)]
                per = {k: 100.0 * sum(o for o, r in zip(ok, probe) if r["kind"] == k) / sum(r["kind"] == k for r in probe) for k in probe_kinds}
                msg = ", probes " + " ".join(f"{k}={v:.0f}%" for k, v in per.items())
                t0 += time.perf_counter() - tp  # not counted in tok/s
                model.train()
            print(f"[base] step {step:4d}/{steps} loss {running:.3f} "
                  f"({(step + 1) * batch * block / dt:.0f} tok/s, {dt:.0f}s){msg}", flush=True)

    # Store bfloat16; everything downstream uses the float32 upcast of these weights.
    model.eval()
    model.generation_config.bos_token_id = BOS_ID
    model.generation_config.eos_token_id = EOS_ID
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.do_sample = False
    base = out / "base"
    for f in ("model.safetensors", "config.json", "generation_config.json"):
        (base / f).unlink(missing_ok=True)
    model.to(torch.bfloat16).save_pretrained(str(base))
    cfg_json = json.loads((base / "config.json").read_text())
    assert cfg_json.get("dtype") == "bfloat16", cfg_json.get("dtype")

    reloaded = load_base(out)
    with torch.no_grad():
        sample = [BOS_ID] + tok.encode("The quick", add_special_tokens=False).ids
        gen = reloaded.generate(torch.tensor([sample]), max_new_tokens=40, do_sample=False,
                                eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    print(f"[base] sample: {tok.decode(gen[0].tolist(), skip_special_tokens=False)!r}")


def load_base(out: Path):
    m = AutoModelForCausalLM.from_pretrained(
        str(out / "base"), dtype=torch.float32, attn_implementation="sdpa", local_files_only=True)
    assert next(m.parameters()).dtype == torch.float32
    return m.eval()


# --------------------------------------------------------------------------
# Experts
# --------------------------------------------------------------------------


def task_batches(examples: list[tuple[list[int], list[int]]], batch: int, seed: int):
    """Endless length-bucketed batches of one task's examples (less padding): each
    epoch shuffles, sorts within chunks of 8 batches, and shuffles the batches."""
    rng = random.Random(seed)
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        chunks = [order[i:i + batch * 8] for i in range(0, len(order), batch * 8)]
        batches = []
        for ch in chunks:
            ch.sort(key=lambda i: len(examples[i][0]) + len(examples[i][1]))
            batches += [ch[i:i + batch] for i in range(0, len(ch), batch) if len(ch[i:i + batch]) == batch]
        rng.shuffle(batches)
        for b in batches:
            yield [examples[i] for i in b]


def collate(seqs: list[tuple[list[int], list[int]]]):
    """Right-padded (input_ids, attention_mask, labels); labels only on completion + eos."""
    T = max(len(p) + len(c) for p, c in seqs)
    ids = torch.full((len(seqs), T), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    labels = torch.full((len(seqs), T), -100, dtype=torch.long)
    for r, (p, c) in enumerate(seqs):
        n = len(p) + len(c)
        ids[r, :n] = torch.tensor(p + c)
        mask[r, :n] = 1
        labels[r, len(p):n] = torch.tensor(c)
    return ids, mask, labels


class StackedLoRA(torch.nn.Module):
    """E independent LoRA adapters around one frozen Linear, trained side by side:
    the batch is E equal blocks of rows and block e goes through adapter e, i.e.
    y = W x + scaling * B_e A_e x, exactly PEFT's LoRA forward (no dropout)."""

    def __init__(self, base: torch.nn.Linear, n_experts: int, r: int, scaling: float, gen: torch.Generator):
        super().__init__()
        self.base = base
        bound = 1.0 / math.sqrt(base.in_features)  # PEFT: kaiming_uniform_(a=sqrt(5)) on A, zeros on B
        self.A = torch.nn.Parameter((torch.rand(n_experts, r, base.in_features, generator=gen) * 2 - 1) * bound)
        self.B = torch.nn.Parameter(torch.zeros(n_experts, base.out_features, r))
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        xe = x.reshape(self.A.shape[0], -1, x.shape[-1])
        d = torch.bmm(torch.bmm(xe, self.A.transpose(1, 2)), self.B.transpose(1, 2))
        return y + self.scaling * d.reshape(y.shape)


def lora_sites(model) -> list[tuple[str, torch.nn.Module, str]]:
    """(qualified name, parent module, attribute) of every LoRA target, in model order."""
    sites = []
    for i, layer in enumerate(model.model.layers):
        for parent, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                              (layer.mlp, ("gate_proj", "up_proj", "down_proj"))):
            for n in names:
                assert n in LORA_TARGETS
                kind = "self_attn" if parent is layer.self_attn else "mlp"
                sites.append((f"model.layers.{i}.{kind}.{n}", parent, n))
    return sites


@torch.no_grad()
def stacked_dev_accuracy(model, tok: Tokenizer, names: list[str], tasks: dict, n: int) -> list[float]:
    """Greedy exact match of every stacked adapter on n dev examples of its task
    (one left-padded batch of len(names) blocks)."""
    rows = [r for name in names for r in tasks[name]["dev"][:n]]
    enc = [encode_example(tok, r["prompt"])[0] for r in rows]
    T = max(map(len, enc))
    x = torch.full((len(enc), T), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(enc), T), dtype=torch.long)
    for i, e in enumerate(enc):
        x[i, T - len(e):] = torch.tensor(e)
        mask[i, T - len(e):] = 1
    gen = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=28, do_sample=False,
                         eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    ok = []
    for i, r in enumerate(rows):
        new = gen[i, T:].tolist()
        new = new[:new.index(EOS_ID)] if EOS_ID in new else new
        ok.append(tok.decode(new).strip() == r["completion"].strip())
    return [100.0 * sum(ok[e * n:(e + 1) * n]) / n for e in range(len(names))]


def _words(texts) -> set[str]:
    return {w for t in texts for w in re.findall(r"[a-z]+", t.replace("{w}", " ").replace("{t}", " ").lower())}


def distractor_vocabulary() -> list[str]:
    """The words distractor text is made of: the generic corpus's nouns, verbs, adjectives and names,
    minus every word that only a held-out phrasing uses (so no expert sees a held-out task's words:
    "loud", "mirror", "left", "large", ... stay unseen; words that training phrasings use too, such as
    "letter", are allowed)."""
    training = _words(t for spec in TASKS.values() for t in phrasings(spec, "extended"))
    heldout = _words(t for name in HELDOUT_NAMES for t in task_phrasings(name))
    banned = heldout - training
    pool = sorted(set(NOUNS + VERBS + ADJECTIVES) | {n.lower() for n in NAMES})
    return [w for w in pool if w not in banned]


def _distractor_word(rng: random.Random, vocab: list[str]) -> str:
    """A filler word drawn like a task input: a real word, a pseudo-word or random letters, so that
    only the instruction's structure (not how a word looks) tells the input word from filler."""
    r = rng.random()
    if r < 0.5:
        return rng.choice(vocab)
    return pseudo_word(rng, 3, 7) if r < 0.8 else random_letters(rng, 3, 6)


def _distractor_phrase(rng: random.Random, vocab: list[str]) -> str:
    """One to five words of filler, e.g. "near the cloud" or "then zobak pulls"."""
    words = [_distractor_word(rng, vocab) for _ in range(rng.randint(1, 3))]
    glue = rng.choice(["near the", "for", "and the", "like a", "after the", "", "then"])
    return " ".join(x for x in [glue, *words] if x)


def _template_pattern(template: str) -> re.Pattern:
    parts = re.split(r"(\{w\}|\{t\})", template)
    rx = "".join("(?P<w>[a-z]+)" if q == "{w}" else "(?P<t>.+?)" if q == "{t}" else re.escape(q) for q in parts)
    return re.compile("^" + rx + re.escape(ANSWER_SUFFIX) + "$")


# Words a substituted instruction keeps (see `substitute_words`): the grammar that says where the
# input word sits, not what to do with it.
FUNCTION_WORDS = frozenset("a an the of in to by with and then is it its what me this from on for at as "
                           "if you do get be each every all word letter letters".split())


def substitute_words(template: str, rng: random.Random, vocab: list[str]) -> str:
    """`template` with each of its content words ("Reverse", "backwards", "capital", ...) swapped,
    with probability 1/2 and at least one, for a filler word drawn like a task input; the slots and
    FUNCTION_WORDS stay.  Trained on such rows an expert finds its input word by the instruction's
    grammar rather than as the one word it does not know: held-out phrasings open with verbs no
    expert saw ("Mirror the letters of {w}.", "Render {w} entirely in majuscules."), and filler alone
    left the experts transforming those verbs (see Models/experts/README.md)."""
    parts = re.split(r"(\{w\}|\{t\}|[A-Za-z]+)", template)
    content = [i for i, q in enumerate(parts) if q.isalpha() and q.lower() not in FUNCTION_WORDS]
    if not content:
        return template
    chosen = [i for i in content if rng.random() < 0.5] or [rng.choice(content)]
    for i in chosen:
        word = _distractor_word(rng, vocab)
        parts[i] = word.capitalize() if parts[i][0].isupper() else word
    return "".join(parts)


def distract(rows: list[dict], name: str, frac: float, seed: int, substitute: float = 0.0) -> list[dict]:
    """Expert training rows with distractor text added to a fraction `frac` of them: filler words
    right after the input word (within the instruction), at the end of the instruction, a filler
    sentence before or after it, or an earlier answered turn of filler ("<filler>.\nAnswer: <word>\n").  Without this, every expert learned to transform the prompt's last
    word (its templates mostly end at the word): on held-out phrasings such as "Spell {w} starting
    from its last letter." the reverse expert reversed "letter" (0/30; see Models/README.md).  The
    completion is unchanged; the input word stays as it was.  Independently, a fraction `substitute`
    of the rows has content words of its phrasing swapped for filler (`substitute_words`; its own
    random stream, so the filler rows are the same with or without it)."""
    if frac <= 0 and substitute <= 0:
        return rows
    rng, sub_rng = random.Random(seed), random.Random(seed + 1)
    vocab = distractor_vocabulary()
    patterns = [(t, _template_pattern(t)) for t in phrasings(TASKS[name], "extended")]
    out = []
    for row in rows:
        fill = rng.random() < frac
        swap = sub_rng.random() < substitute
        if not fill and not swap:
            out.append(row)
            continue
        match = next(((t, m) for t, pat in patterns if (m := pat.match(row["prompt"]))), None)
        assert match, f"{name}: no template matches {row['prompt']!r}"
        template, m = match
        slots = m.groupdict()
        if swap:
            template = substitute_words(template, sub_rng, vocab)
        if not fill:
            out.append({"prompt": template.format(**slots) + ANSWER_SUFFIX, "completion": row["completion"]})
            continue
        phrase = _distractor_phrase(rng, vocab)
        sentence = phrase[0].upper() + phrase[1:] + "."
        base = template.format(**slots)
        form = rng.randrange(5)
        if form == 0:      # right after the input word
            instruction = template.format(**{**slots, "w": slots["w"] + " " + phrase})
        elif form == 1:    # at the end of the instruction, before its final punctuation
            end = base[-1] if base[-1] in ".?" else ""
            instruction = base[:len(base) - len(end)] + " " + phrase + end
        elif form == 4:    # an earlier turn of filler, answered, before the instruction
            instruction = f"{sentence}{ANSWER_SUFFIX} {_distractor_word(rng, vocab)}\n{base}"
        else:              # a filler sentence before or after the instruction
            instruction = f"{sentence} {base}" if form == 2 else f"{base} {sentence}"
        out.append({"prompt": instruction + ANSWER_SUFFIX, "completion": row["completion"]})
    return out


def stage_experts(out: Path, cfg: dict, only: list[str] | None = None) -> None:
    """Train one LoRA per task. All experts are trained in the same loop for speed
    (each step = one batch of every task, block e of the rows through adapter e),
    but they share nothing: each adapter only sees its own task's examples, the
    loss is the sum of the per-task mean losses (so adapter e's gradient is exactly
    that of its own task's loss), gradients are clipped per adapter, and AdamW is
    element-wise.  The adapters are then exported with PEFT and checked."""
    from peft import LoraConfig, PeftModel, get_peft_model
    tok = load_tokenizer(out)
    tasks = load_tasks(out)
    names = [n for n in TASKS if not only or n in only]
    E, r, alpha = len(names), cfg["lora_r"], cfg["lora_alpha"]
    steps, batch = cfg["expert_steps"], cfg["expert_batch"]

    seed_all(100)
    model = load_base(out)
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(101)
    sites = lora_sites(model)
    loras = []
    for _, parent, attr in sites:
        m = StackedLoRA(getattr(parent, attr), E, r, alpha / r, gen)
        setattr(parent, attr, m)
        loras.append(m)
    params = [p for m in loras for p in (m.A, m.B)]
    n_lora = sum(p.numel() for p in params) // E
    print(f"[experts] {E} LoRA adapters, rank {r}, alpha {alpha}, {n_lora} parameters each; "
          f"{steps} steps x {batch} examples per task", flush=True)
    opt = torch.optim.AdamW(params, lr=cfg["expert_lr"], betas=(0.9, 0.99), weight_decay=0.0)
    frac, substitute = cfg.get("expert_distract", 0.0), cfg.get("expert_substitute", 0.0)
    streams = [task_batches([encode_example(tok, x["prompt"], x["completion"])
                             for x in distract(tasks[n]["train"], n, frac, seed=700 + TASK_INDEX[n],
                                               substitute=substitute)],
                            batch, seed=200 + TASK_INDEX[n]) for n in names]
    model.train()
    t0 = time.perf_counter()
    running = None
    n_tokens = 0
    for step in range(steps):
        lr = lr_at(step, steps, cfg["expert_lr"], cfg["expert_warmup"], floor=0.05)
        for g in opt.param_groups:
            g["lr"] = lr
        ids, mask, labels = collate([ex for st in streams for ex in next(st)])
        n_tokens += int(mask.sum())
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        tgt = labels[:, 1:]
        tok_loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100, reduction="none"
        ).view(E, -1)
        valid = (tgt != -100).view(E, -1).float()
        per_task = (tok_loss * valid).sum(1) / valid.sum(1)
        opt.zero_grad(set_to_none=True)
        per_task.sum().backward()
        with torch.no_grad():  # clip each adapter's gradient norm to 1.0 separately
            sq = torch.zeros(E)
            for m in loras:
                sq += m.A.grad.pow(2).sum((1, 2)) + m.B.grad.pow(2).sum((1, 2))
            coef = (1.0 / (sq.sqrt() + 1e-6)).clamp(max=1.0).view(E, 1, 1)
            for m in loras:
                m.A.grad.mul_(coef)
                m.B.grad.mul_(coef)
        opt.step()
        pt = per_task.detach()
        running = pt if running is None else 0.9 * running + 0.1 * pt
        if step % 50 == 0 or step == steps - 1:
            dt = time.perf_counter() - t0
            losses = " ".join(f"{n}={v:.3f}" for n, v in zip(names, running.tolist()))
            print(f"[experts] step {step:4d}/{steps} lr {lr:.1e} ({n_tokens / dt:.0f} tok/s, {dt:.0f}s) {losses}",
                  flush=True)
        every = cfg.get("expert_eval_every", 0)
        if every and ((step + 1) % every == 0 or step == steps - 1):
            te = time.perf_counter()
            model.eval()
            accs = stacked_dev_accuracy(model, tok, names, tasks, 32)
            model.train()
            t0 += time.perf_counter() - te  # not counted in tok/s
            print(f"[experts] step {step + 1} dev exact match (32 per task): "
                  + " ".join(f"{n}={a:.0f}%" for n, a in zip(names, accs)), flush=True)

    # Export each adapter through PEFT and check it reproduces the trained one.
    model.eval()
    root = out / "experts"
    root.mkdir(parents=True, exist_ok=True)
    probe_rows = {n: [encode_example(tok, x["prompt"], x["completion"]) for x in tasks[n]["dev"][:4]]
                  for n in names}
    with torch.no_grad():
        for e, name in enumerate(names):
            pm = get_peft_model(load_base(out), LoraConfig(
                r=r, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=LORA_TARGETS,
                task_type="CAUSAL_LM"))
            modules = dict(pm.base_model.model.named_modules())
            for (qual, _, _), m in zip(sites, loras):
                mod = modules[qual]
                mod.lora_A["default"].weight.copy_(m.A[e])
                mod.lora_B["default"].weight.copy_(m.B[e])
                assert mod.scaling["default"] == m.scaling
            d = root / name
            if d.exists():
                shutil.rmtree(d)
            pm.save_pretrained(str(d))
            acfg = json.loads((d / "adapter_config.json").read_text())
            acfg["base_model_name_or_path"] = "Models/base"
            (d / "adapter_config.json").write_text(json.dumps(acfg, indent=2, sort_keys=True) + "\n")
            # Reload from disk with PEFT; compare logits with the stacked model.
            re = PeftModel.from_pretrained(load_base(out), str(d)).eval()
            ids, mask, _ = collate(probe_rows[name])
            want = re(input_ids=ids, attention_mask=mask).logits
            got = model(input_ids=ids.repeat(E, 1), attention_mask=mask.repeat(E, 1)).logits
            got = got.view(E, *ids.shape, -1)[e]
            diff = float(((want - got) * mask[..., None]).abs().max())
            assert diff < 1e-3, (name, diff)
            stamp_base(d, out / "base")
            print(f"[experts] {name}: saved, PEFT reload matches (max |dlogit| {diff:.1e})", flush=True)
    (root / "README.md").write_text(experts_readme(cfg))


def stamp_base(adapter: Path, base: Path) -> None:
    """Records the base the adapter was trained on (switchyard_base.json, which PEFT ignores):
    the fingerprint is defined once, in Swift (`BaseFingerprint`), so the CLI computes it."""
    cmd = ["swift", "run", "-c", "release", "switchyard", "experts", "stamp",
           "--path", str(adapter), "--model", str(base)]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# Evaluation (greedy exact match)
# --------------------------------------------------------------------------


@torch.no_grad()
def greedy_answers(model, tok: Tokenizer, prompts: list[str], max_new: int, chunk: int = 128) -> list[str]:
    """model.generate, greedy, stop at eos; left-padded batches of similar length
    (generate derives position ids from the attention mask, so padding does not
    change the positions a prompt sees)."""
    enc = [encode_example(tok, p)[0] for p in prompts]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    answers: list[str] = [""] * len(prompts)
    for s in range(0, len(order), chunk):
        idx = order[s:s + chunk]
        T = max(len(enc[i]) for i in idx)
        x = torch.full((len(idx), T), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(idx), T), dtype=torch.long)
        for row, i in enumerate(idx):
            x[row, T - len(enc[i]):] = torch.tensor(enc[i])
            mask[row, T - len(enc[i]):] = 1
        gen = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=max_new,
                             do_sample=False, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
        for row, i in enumerate(idx):
            new = gen[row, T:].tolist()
            if EOS_ID in new:
                new = new[:new.index(EOS_ID)]
            answers[i] = tok.decode(new, skip_special_tokens=False)
    return answers


def score(model, tok, rows: list[dict], max_new: int) -> tuple[float, list[str]]:
    answers = greedy_answers(model, tok, [r["prompt"] for r in rows], max_new)
    ok = [a.strip() == r["completion"].strip() for a, r in zip(answers, rows)]
    return 100.0 * sum(ok) / len(ok), answers


def stage_eval(out: Path, cfg: dict, timer: Timer | None = None) -> dict:
    from peft import PeftModel
    tok = load_tokenizer(out)
    tasks = load_tasks(out)
    all_names = list(TASKS) + HELDOUT_NAMES
    max_new = {n: max(len(tok.encode(r["completion"], add_special_tokens=False).ids)
                      for r in tasks[n]["test"]) + 2 for n in all_names}
    results: dict[str, dict] = {n: {"n": len(tasks[n]["test"])} for n in all_names}
    examples: dict[str, list] = {}

    def record(n, col, acc, answers):
        results[n][col] = round(acc, 1)
        examples.setdefault(n, {})[col] = answers[:3]

    t0 = time.perf_counter()
    base = load_base(out)
    for n in all_names:
        acc, ans = score(base, tok, tasks[n]["test"], max_new[n])
        record(n, "base", acc, ans)
    print(f"[eval] base done ({time.perf_counter() - t0:.0f}s)", flush=True)

    experts = list(TASKS)
    pm = PeftModel.from_pretrained(load_base(out), str(out / "experts" / experts[0]), adapter_name=experts[0])
    for e in experts[1:]:
        pm.load_adapter(str(out / "experts" / e), adapter_name=e)
    pm.eval()
    single: dict[str, dict[str, float]] = {n: {} for n in HELDOUT_NAMES}
    for e in experts:
        pm.set_adapter(e)
        acc, ans = score(pm, tok, tasks[e]["test"], max_new[e])
        record(e, "oracle", acc, ans)
        for h in HELDOUT_NAMES:  # every single expert on the held-out tasks
            single[h][e] = round(score(pm, tok, tasks[h]["test"], max_new[h])[0], 1)
        print(f"[eval] expert {e}: oracle {acc:.1f}% ({time.perf_counter() - t0:.0f}s)", flush=True)
    for h in HELDOUT_NAMES:
        best = max(single[h], key=lambda e: single[h][e])
        results[h]["best_single_expert"] = {"expert": best, "accuracy": single[h][best]}
        results[h]["single_experts"] = single[h]

    pm.add_weighted_adapter(experts, [1.0 / len(experts)] * len(experts), "uniform", combination_type="cat")
    pm.set_adapter("uniform")
    pm.eval()
    for n in all_names:
        acc, ans = score(pm, tok, tasks[n]["test"], max_new[n])
        record(n, "uniform_merge", acc, ans)
    print(f"[eval] uniform merge done ({time.perf_counter() - t0:.0f}s)", flush=True)

    # mixed = the union of the 8 test sets, so its accuracy is the mean over them.
    mixed = {"n": sum(results[e]["n"] for e in experts)}
    for col in ("base", "oracle", "uniform_merge"):
        mixed[col] = round(sum(results[e][col] * results[e]["n"] for e in experts) / mixed["n"], 1)
    results["mixed"] = mixed

    report = {
        "what": "greedy exact-match accuracy (%) on each task's test split, measured in Python with "
                "transformers+PEFT by Scripts/models/train_demo.py (the Swift eval produces the official table)",
        "rule": "answer = decoded generation up to <|eos|>; correct iff answer.strip() == completion.strip()",
        "prompt_ids": "[<|bos|>] + encode(prompt, add_special_tokens=False)",
        "columns": {
            "base": "base model alone",
            "oracle": "the task's own expert (training tasks only)",
            "uniform_merge": "all 8 experts, each weight 1/8, PEFT add_weighted_adapter(combination_type='cat')",
            "best_single_expert": "held-out tasks: the best of the 8 experts used alone",
        },
        "training_tasks": experts,
        "heldout_tasks": HELDOUT_NAMES,
        "results": results,
        "examples": examples,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": __import__("peft").__version__},
    }
    old = out / "eval_python.json"
    report["timings_s"] = json.loads(old.read_text()).get("timings_s", {}) if old.exists() else {}
    if timer is not None:
        report["timings_s"].update(timer.stages)
    write_json(out / "eval_python.json", report)
    print_table(results)
    return report


def table_markdown(results: dict) -> str:
    lines = ["| task | base | oracle | uniform merge | best single expert |",
             "|---|---:|---:|---:|---|"]

    def f(v):
        return "—" if v is None else f"{v:.1f}"
    for n in list(TASKS) + ["mixed"] + HELDOUT_NAMES:
        r = results[n]
        best = r.get("best_single_expert")
        best_s = f"{best['accuracy']:.1f} ({best['expert']})" if best else "—"
        name = n + (" (held-out)" if n in HELDOUT_NAMES else "")
        lines.append(f"| {name} | {f(r.get('base'))} | {f(r.get('oracle'))} | {f(r.get('uniform_merge'))} | {best_s} |")
    return "\n".join(lines)


def print_table(results: dict) -> None:
    print(f"{'task':24s} {'base':>6s} {'oracle':>7s} {'merge':>6s}")
    for n in list(TASKS) + ["mixed"] + HELDOUT_NAMES:
        r = results[n]
        o = r.get("oracle")
        print(f"{n:24s} {r['base']:6.1f} {('%7.1f' % o) if o is not None else '      —'} {r['uniform_merge']:6.1f}")


# --------------------------------------------------------------------------
# READMEs
# --------------------------------------------------------------------------


def tasks_readme(tasks: dict) -> str:
    lines = [
        "# Demo tasks",
        "",
        "Generated by `Scripts/models/train_demo.py --stage data` (deterministic). Each line of",
        "`<task>/{train,dev,test}.jsonl` is `{\"prompt\": ..., \"completion\": ...}`;",
        "`mixed/test.jsonl` adds `\"task\"` (the source task).",
        "",
        "## Format",
        "",
        f"- `prompt` = an instruction (one of several phrasings) + `{ANSWER_SUFFIX!r}`, e.g.",
        f"  `{tasks['reverse']['test'][0]['prompt']!r}`.",
        "- `completion` = a space + the answer, e.g. "
        f"`{tasks['reverse']['test'][0]['completion']!r}`. The models are trained to emit `<|eos|>` after it.",
        "- Model input: `[<|bos|>] + encode(prompt, add_special_tokens=False)` (see `../README.md`).",
        "",
        "## Exact-match rule",
        "",
        "Greedy decoding until `<|eos|>` (or a token limit); the answer is the decoded text before",
        "`<|eos|>`. Correct iff `answer.strip() == completion.strip()` (leading/trailing whitespace",
        "stripped on both sides, nothing else normalised: case matters).",
        "",
        "## Tasks",
        "",
        "Dev and test inputs never occur in train (nor in each other); a training task's test uses the same phrasings as its train "
        "split (15 per task; the tokenizer and the base model were built from the first 5 or 6 of them, see `train_demo.py`).",
        "",
        "| task | kind | train | dev | test | phrasings | example |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name in list(TASKS) + HELDOUT_NAMES:
        templates = task_phrasings(name)
        s = tasks[name]
        ex = s["test"][0]
        kind = "expert" if name in TASKS else "held-out"
        shown = (ex["prompt"] + ex["completion"]).replace("\n", "\\n")
        lines.append(f"| `{name}` | {kind} | {len(s['train'])} | {len(s['dev'])} | {len(s['test'])} | "
                     f"{len(templates)} | `{shown}` |")
    lines += [
        f"| `mixed` | the 8 expert tasks' test sets, shuffled | — | — | "
        f"{sum(len(tasks[n]['test']) for n in TASKS)} | | |",
        "| `switch` | two-turn requests, the task changes inside (`Scripts/models/make_switch_task.py`) | — | — | 400 | | |",
        "",
        "Held-out tasks have no expert; their `train` split is a small few-shot pool (for LoraHub):",
        "",
        "- `reverse_upper`: reverse, then upper-case (a composition of `reverse` and `uppercase`).",
        "- `spell_backwards`: the `reverse` skill with a new phrasing family (no \"reverse\"/\"backwards\").",
        "- `upper_no_vowels`: remove the vowels, then upper-case (a composition of `remove_vowels` and `uppercase`).",
        *[f"- `{name}`: the `{skill}` skill in 3 phrasings no expert was trained on, on `{skill}`'s own inputs "
          f"(its test inputs are `{skill}`'s test inputs)." for name, skill in REPHRASED.items()],
        "",
        "Kinds: `spell_backwards` and the `_rephrased` tasks ask for one known skill in new words (a new phrasing of a "
        "skill: an expert that learned the skill, not its phrasings, should answer them); `reverse_upper` and "
        "`upper_no_vowels` are new tasks near two skills.",
        "",
        "## Phrasings",
        "",
    ]
    for name in list(TASKS) + HELDOUT_NAMES:
        lines.append(f"- `{name}`: " + "; ".join(f"`{t}`" for t in task_phrasings(name)))
    lines += [
        "",
        "Inputs: words of lowercase letters (about 30% real English words, 40% pronounceable",
        "pseudo-words, 30% random letters): `reverse` 3–6 letters, `uppercase` 3–7, `sort_letters` 3–5,",
        "`remove_vowels` and `upper_no_vowels` 4–8 (with at least one vowel and one consonant), `caesar`,",
        "`repeat` and `double_letters` 3–6, `hyphenate` 3–7, the other held-out tasks 3–6; `caesar` shifts",
        "by one with wrap-around (z -> a); `repeat` repeats 2 or 3 times (\"2 times\"/\"twice\", \"3 times\"/",
        "\"three times\"), separated by single spaces; vowels are a, e, i, o, u.",
        "",
    ]
    return "\n".join(lines)


def experts_readme(cfg: dict) -> str:
    lines = [
        "# Demo experts",
        "",
        "One PEFT LoRA adapter per training task, trained by `Scripts/models/train_demo.py --stage experts`",
        "on `../tasks/<task>/train.jsonl` with the base model in `../base` (float32 upcast of its bf16",
        "weights). Loss on the completion tokens + `<|eos|>` only.",
        "",
        f"- rank {cfg['lora_r']}, lora_alpha {cfg['lora_alpha']} (scaling {cfg['lora_alpha'] / cfg['lora_r']:g}), "
        "no dropout, no bias, float32 `adapter_model.safetensors`",
        f"- target modules: {', '.join(LORA_TARGETS)} (all layers)",
        f"- AdamW lr {cfg['expert_lr']} (warmup {cfg['expert_warmup']}, cosine to 5%), batch {cfg['expert_batch']}, "
        f"{cfg['expert_steps']} steps, gradient norm clipped to 1 per adapter",
        "- for speed the 8 adapters are trained in one loop (each step = one batch of every task, rows of",
        "  task e through adapter e only); they share no parameters and each one's gradient is exactly that",
        "  of its own task's loss, so this is the same as training them one after the other. Each adapter",
        "  is then written with PEFT `save_pretrained` and re-loaded with `PeftModel.from_pretrained` to",
        "  check it reproduces the trained logits.",
        "- `switchyard_base.json` (which PEFT ignores) records the base each adapter was trained on",
        "  (`switchyard experts stamp --model ../base`): Switchyard refuses to load it on another base.",
        "- `adapter_config.json` has `base_model_name_or_path` = `Models/base` (relative to the repository).",
        f"- **distractor text** (`expert_distract` {cfg.get('expert_distract', 0)}): that fraction of each expert's "
        "training rows gets filler text (`distract`): words right after the input word, words at the end of the "
        "instruction, a filler sentence before or after it, or an earlier answered turn of filler. Filler words are drawn like task inputs (real "
        "words, pseudo-words, random letters), never from a word that only a held-out phrasing uses, so only "
        "the instruction's structure tells the input word from filler. The rows' completions are unchanged.",
        f"- **substituted instructions** (`expert_substitute` {cfg.get('expert_substitute', 0)}): independently, that "
        "fraction of the rows has each content word of its phrasing (not the input word, not a function word "
        "such as \"the\", \"of\", \"letters\") swapped, with probability 1/2 and at least one, for a filler word "
        "drawn the same way (`substitute_words`): \"Write {w} backwards.\" may become \"Write {w} gluvs.\" or "
        "\"Zadi {w} backwards.\". The expert then has to find its input word by the sentence's grammar, not as the "
        "one word it does not know.",
        "",
        "### Why distractor text and substituted instructions (measured 2026-12-06)",
        "",
        "Experts trained on their 15 phrasings alone (600 steps, no filler) learned to transform the prompt's",
        "*last* word, because most phrasings end at the input word. On held-out phrasings that go on after the",
        "word they transformed the wrong one: greedy answers of each skill's expert alone, test split",
        "(`Models/tasks/<task>/test.jsonl`), per phrasing, before → after:",
        "",
        "| phrasing (held out) | expert | before | e.g. before | after filler | after filler + substitution (these files) |",
        "|---|---|---|---|---|---|",
        "| Spell {w} starting from its last letter. | reverse | 0/30 | acela → `nimerb` | 22/30 | 23/30 |",
        "| Read {w} from right to left. | reverse | 0/26 | soup → `thefr` | 8/26 | 18/26 |",
        "| Mirror the letters of {w}. | reverse | 3/25 | letter → `rorri` | 0/25 | 17/25 |",
        "| Flip the letter order of {w}. | reverse | 11/19 | cheese → `eesp` | 0/19 | 0/19 (lyr → `repif`) |",
        "| Each letter of {w} becomes the one that follows it; what is the result? | caesar | 6/36 | rij → `sjkmpx` | 34/36 | 36/36 |",
        "| Bump every letter of {w} to its successor. | caesar | 20/27 | bupo → `cvddtps` | 24/27 | 23/27 |",
        "| Nudge the letters of {w} one notch along the alphabet. | caesar | 33/37 | | 37/37 | 37/37 |",
        "| Make {w} loud: all letters large. | uppercase | 0/26 | yyg → `ARG` | 1/26 | 0/26 |",
        "| Render {w} entirely in majuscules. | uppercase | 15/37 | ini → `ENTIRES` | 4/37 | 23/37 |",
        "| Shout {w} with every letter big. | uppercase | 35/37 | | 34/37 | 33/37 |",
        "",
        "Variants (Swift `switchyard eval`; `mixed` = each example's own expert; held-out: the best single",
        "expert alone / `switchyard compose` from 5 shots, budget 40, LoraHub's combination; for these files also",
        "`--combination cat`, compose's default, in brackets; `switch` = the two-turn set, each example's own expert):",
        "",
        "| experts | mixed | switch | caesar_rephrased | double_letters_rephrased | spell_backwards | uppercase_rephrased |",
        "|---|---:|---:|---|---|---|---|",
        "| 600 steps, no filler (before) | 95.5 | 67.5 | 59 / 63 | 92 / 95 | 14 / 4 | 50 / 54 |",
        "| 600 steps, 50% filler of real words only | 91.2 | — | 86 / 82 | 91 / 91 | 40 / 31 | 36 / 50 |",
        "| 1000 steps, 50% filler of real words only | 94.6 | — | 85 / 87 | 94 / 94 | 35 / 13 | 27 / 25 |",
        "| 1000 steps, 50% filler drawn like inputs | 95.1 | 53.2 | 95 / 94 | 97 / 97 | 28 / 5 | 33 / 46 |",
        "| the same and an earlier turn of filler | 94.9 | 79.0 | 95 / 94 | 98 / 97 | 30 / 3 | 39 / 37 |",
        "| the same, 1000 steps, and 40% substituted instructions | 93.8 | 78.8 | 93 / 93 | 96 / 97 | 37 / 22 | 56 / 57 |",
        "| **the same, 1500 steps (these files)** | **95.2** | **78.0** | **96 / 96 (96)** | **96 / 99 (98)** | **58 / 16 (18)** | **56 / 65 (84)** |",
        "| the same, 2000 steps | 95.4 | 75.8 | 94 / — (94) | 99 / — (92) | 60 / — (38) | 65 / — (68) |",
        "| 1500 steps, \"word\", \"letter\", \"letters\" swapped too | 94.2 | 69.2 | 99 / — (99) | 96 / — (94) | 57 / — (42) | 71 / — (77) |",
        "",
        "Filler fixes the position shortcut (caesar's and reverse's phrasings that go on after the word), but a",
        "phrasing that opens with a verb no expert has seen (\"Flip\", \"Mirror\", \"Render\", \"Make … loud\")",
        "still makes an expert pick a word of the instruction: with no word meanings in a 1.6M base, the",
        "instruction's unseen words look like inputs. The uppercase expert got worse on \"Render {w} entirely",
        "in majuscules.\" (15 → 4 of 37). Filler before the instruction alone cost the two-turn set 14 points (its oracle",
        "67.5 → 53.2); an earlier answered turn of filler as well gives 79.0. Composition from 5 shots stays below the reverse expert alone on spell_backwards:",
        "on the earlier experts the shots' mean cross-entropy (what the LoraHub objective reads) fell from 3.9",
        "(reverse alone) to 1.4 nats as the search mixed in other experts, while exact match on the dev split fell",
        "from 22% to 4%: the reverse expert alone fails confidently on some phrasings, and the mix hedges.",
        "",
        "Substituted instructions (measured 2026-12-06) fix most of the unseen verbs: \"Mirror the letters of {w}.\" 0 → 17",
        "of 25, \"Render {w} entirely in majuscules.\" 4 → 23 of 37, and the skill's expert alone on spell_backwards",
        "30 → 58% and on uppercase_rephrased 39 → 56%, with the training tasks unchanged (oracle on `mixed` 95.2%).",
        "Trained on reverse and uppercase alone, 1000 steps: 40% substituted gives 43 / 61% on spell_backwards /",
        "uppercase_rephrased, 70% gives 42 / 55% and costs reverse on its own test set 79 → 61%; all eight at 1000",
        "steps (40%) left reverse at 70% on its own task, so these files train 1500 steps (28 min on 2 threads,",
        "shared with other work); 2000 steps (27 min) moved the experts alone a little further (spell_backwards 60,",
        "uppercase_rephrased 65, reverse 84 but sort_letters 85 on their own tasks) and composition back (cat: 38 / 68)",
        "with `switch` 75.8, so they were not kept. Two phrasings still fail: \"Flip the letter order of {w}.\" and \"Make {w} loud: all letters",
        "large.\" (it upper-cases \"all\": the colon is the cue of \"Convert to uppercase: {w}\"). Two of the five",
        "shots `compose` reads for spell_backwards are \"Flip\" rows, so the search mixes other experts in to lower",
        "their loss and loses the phrasings the reverse expert could do (58% alone, 16-18% composed).",
        "",
        "Why \"Flip the letter order of {w}.\" fails (probes of the reverse expert, measured 2026-12-06): it answers",
        "lyr with `repif` (pieces of \"Flip\" and \"order\"), \"Flip the word order of lyr.\" with `redro` and \"Flip the",
        "letter gluv of lyr.\" with `pil`, but \"Flip the letters of lyr.\" with `ryl`: the noun after \"the letter\" reads",
        "like the input after \"the word\" in its own \"Take the word {w} and reverse it.\", and the unseen verb like a",
        "filler input. Training the reverse expert alone for 3000 steps (4 min) raised it on its own task 78 → 85%",
        "but not on spell_backwards (55%; Flip still 0/19), so more steps are not the remedy. Without the Flip rows",
        "(the first 5 other rows of train.jsonl as shots) `compose` stays with the reverse expert (weight 0.99,",
        "56%), which is the evidence that the Flip shots, not the search, pull the composition away; on shots drawn",
        "as `Scripts/bench/lorahub_original.py` draws them (seeds 0, 1, 2) it reached 41, 50 and 25% (58, 50, 26% once an expert alone wins exact-match ties). Fixing the",
        "phrasing itself would mean training on the held-out family, so spell_backwards stays below 60% on this base.",
        "Letting substitution swap \"word\", \"letter\" and \"letters\" as well (they are kept as function words) does",
        "teach the reverse expert past \"the letter\": trained alone (1500 steps) it went from 0 to 15 of 19 on the Flip",
        "phrasing and 57 → 65% on spell_backwards. All eight trained that way (22 min) gave the row above: Flip 9/19",
        "but Mirror 17 → 12 and Read 18 → 15, so spell_backwards 57% alone and 42 / 58 / 57 / 47% composed (first five",
        "rows, seeds 0-2); uppercase_rephrased alone 56 → 71% but composed 84 → 77%; double_letters_rephrased composed",
        "94%, below its expert alone (96); and the oracle on `switch` 78.0 → 69.2. Not kept.",
        "",
        "| expert | skill |",
        "|---|---|",
    ]
    skills = {
        "reverse": "reverse a word", "uppercase": "upper-case a word",
        "sort_letters": "sort a word's letters alphabetically", "double_letters": "write every letter twice",
        "hyphenate": "put a dash between a word's letters", "caesar": "Caesar-shift a word by one",
        "remove_vowels": "delete a, e, i, o, u from a word", "repeat": "repeat a word 2 or 3 times",
    }
    for n in TASKS:
        lines.append(f"| `{n}` | {skills[n]} |")
    lines.append("")
    lines.append("Accuracy: see `../README.md` and `../eval_python.json`.")
    lines.append("")
    return "\n".join(lines)


def run_time_line(report: dict | None) -> str:
    """The latest measured time of each stage (2 CPU threads), from eval_python.json."""
    t = (report or {}).get("timings_s", {})
    order = [k for k in ("data", "tokenizer", "base", "experts", "eval") if k in t]
    if not order:
        return ""
    parts = ", ".join(f"{k} {t[k] / 60:.1f} min" if t[k] >= 60 else f"{k} {t[k]:.0f} s" for k in order)
    return f"Measured on 2 CPU threads: {parts} ({sum(t[k] for k in order) / 60:.0f} min in all)."


def models_readme(out: Path, cfg: dict, report: dict | None) -> str:
    config = json.loads((out / "base" / "config.json").read_text())
    tok = load_tokenizer(out)
    base = load_base(out)
    n_params = sum(p.numel() for p in base.parameters())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    ex = load_tasks(out)["reverse"]["test"][0]
    ids = encode_example(tok, ex["prompt"], ex["completion"])
    lines = [
        "# Models: the embedded Switchyard demo",
        "",
        "Everything here is generated by `Scripts/models/train_demo.py` (fixed seeds, CPU, nothing",
        "downloaded); do not edit by hand. " + run_time_line(report),
        "",
        "| path | what |",
        "|---|---|",
        f"| `base/` | LlamaForCausalLM, {n_params / 1e6:.2f}M parameters, bf16 `model.safetensors`, `config.json`, "
        "`generation_config.json` (eos 1), `tokenizer.json` |",
        "| `experts/<task>/` | one PEFT LoRA per training task (see `experts/README.md`) |",
        "| `tasks/` | prompt/completion JSONL per task, held-out tasks, `mixed/test.jsonl` (see `tasks/README.md`) |",
    ] + (["| `eval_python.json` | the Python cross-check of the accuracy table, with a few example answers |"]
         if report else []) + [
        "| `routers/` | sentence, centroid, token and SMoRA routers (see `routers/README.md`) |",
        "",
        "## Base model",
        "",
        f"- hidden {config['hidden_size']}, {config['num_hidden_layers']} layers, {config['num_attention_heads']} heads / "
        f"{config['num_key_value_heads']} KV heads (head_dim {config['head_dim']}), MLP {config['intermediate_size']}, "
        f"vocab {config['vocab_size']}, tied embeddings, RoPE theta "
        f"{config.get('rope_parameters', {}).get('rope_theta', config.get('rope_theta'))}, "
        f"RMSNorm eps {config['rms_norm_eps']}, max positions {config['max_position_embeddings']}",
        f"- pre-trained for {cfg['base_steps']} steps × {cfg['base_batch']} × {cfg['base_block']} tokens on a generic "
        "synthetic corpus: short sentences, word lists, counting, spelled-out words, the alphabet, capitals, "
        "simple fact questions, and (60% of the documents after a 300-step copying warm-up) instruction-free "
        "*skill listings*, lines such as `~ farmer <> remraf`, `~ ghgdj / GHGDJ`, `~ tonud :: ttoonnuudd`, "
        "`~ lamp | . . l-a-m-p` (half of them with filler dots before the answer). The base therefore knows the letter "
        "skills in a notation, like a pre-trained LLM knows arithmetic, but it has never seen a task instruction "
        "or the `Answer:` format and cannot tell which skill a task prompt asks for (the `base` column). Each "
        "expert learns to map its instruction phrasings onto its skill. No dev/test input of any task occurs in "
        "a listing.",
        "- stored as bfloat16; Python and Swift both compute in float32 from the upcast weights.",
        "- no arithmetic or counting skill: an earlier version had experts for adding two integers 0–99 and "
        "counting a letter in a word. This base reached only 67% and 81% on them in its own notation, and "
        "their experts 9% and 71% on the task prompts (1500 steps on 9000 examples did not help: 6% and 50% on "
        "dev), far from the 90% the copy-like skills reach, so they were replaced by `double_letters` and "
        "`hyphenate`. Exact multi-digit arithmetic needs a larger base than fits this CPU budget.",
        "",
        "## Tokenizer and prompt convention",
        "",
        f"- byte-level BPE, {tok.get_vocab_size()} tokens: `<|bos|>`=0, `<|eos|>`=1, `<|pad|>`=2, 256 byte tokens, "
        "merges. Pre-tokenizer `Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)]` with",
        f"  `{SPLIT_PATTERN}`: every letter is its own piece (optionally with the space before it), so words",
        "  are spelled letter by letter (the tasks manipulate letters); merges join a space to the next letter or",
        "  digit, and punctuation/whitespace runs.",
        "- **Prompt ids = `[<|bos|>] + encode(prompt, add_special_tokens=False)`.** The post-processor",
        "  (`TemplateProcessing`, `<|bos|> $A`) makes this the same as `encode(prompt)` with special tokens.",
        "- Generation: greedy, stop when `<|eos|>` (1) is produced; the answer is the decoded text before it.",
        "- Exact match: `answer.strip() == completion.strip()`.",
        f"- Example: `{ex['prompt']!r}` + `{ex['completion']!r}` → prompt ids {ids[0]}, target ids {ids[1]}.",
        "",
        "## Accuracy",
        "",
    ] + ([
        "Measured in Python with transformers+PEFT by train_demo.py (`--stage eval`): greedy exact match (%)",
        "on each test split (100 examples per task; `mixed` = the 8 training tasks' test sets together). The",
        "official table (all routers, LoraHub) comes from `switchyard eval` (`Scripts/eval-table`, top-level",
        "README). `uniform merge` = all 8 experts at weight 1/8 (PEFT `add_weighted_adapter`, `cat`).",
        "",
        table_markdown(report["results"]),
    ] if report else [
        "The table (base, oracle expert, uniform merge, every router, LoraHub) is in the top-level README,",
        "measured by `switchyard eval` (`Scripts/eval-table`); `--stage eval` adds a Python cross-check here.",
    ]) + [
        "",
        f"Total size of `Models/`: {size / 1e6:.1f} MB.",
        "",
        "## Regenerate",
        "",
        "```sh",
        "python3 -m venv .venv && .venv/bin/pip install -r Scripts/models/requirements.txt",
        ".venv/bin/python Scripts/models/train_demo.py          # tasks, tokenizer, base, experts, this README",
        "swift build -c release && Scripts/models/fit_swift_routers.sh   # routers/sentence.pb, routers/centroid.pb",
        ".venv/bin/python Scripts/models/train_routers.py       # routers/token.pb, routers/smora.pb",
        "python3 Scripts/models/make_switch_task.py             # tasks/switch/test.jsonl (task-switching set)",
        "Scripts/eval-table                                      # the README table, Models/eval.json",
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="all", choices=["data", "tokenizer", "base", "experts", "eval", "readme", "all"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, into a temporary directory (smoke test)")
    ap.add_argument("--out", type=Path, help=f"output directory (default {DEFAULT_OUT}, or a temp dir with --quick)")
    ap.add_argument("--experts", help="comma-separated subset of experts to train (stage experts)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a setting for experiments, e.g. --set base_steps=300")
    args = ap.parse_args()

    setup_torch()
    cfg = dict(QUICK if args.quick else FULL)
    for kv in args.set:
        k, v = kv.split("=", 1)
        assert k in cfg, f"unknown setting {k}"
        cfg[k] = json.loads(v)
    out = args.out or (Path(tempfile.mkdtemp(prefix="switchyard-demo-quick-")) if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"peft {__import__('peft').__version__}, threads {torch.get_num_threads()}; out = {out}", flush=True)
    timer = Timer()
    stages = ["data", "tokenizer", "base", "experts", "eval"] if args.stage == "all" else \
        [] if args.stage == "readme" else [args.stage]
    report = None
    for st in stages:
        t0 = time.perf_counter()
        if st == "data":
            stage_data(out, cfg)
        elif st == "tokenizer":
            stage_tokenizer(out, cfg)
        elif st == "base":
            stage_base(out, cfg)
        elif st == "experts":
            stage_experts(out, cfg, args.experts.split(",") if args.experts else None)
        elif st == "eval":
            report = stage_eval(out, cfg, timer)
        timer.stage(st, time.perf_counter() - t0)
    total = time.perf_counter() - timer.t0
    if report is None and (out / "eval_python.json").exists():
        report = json.loads((out / "eval_python.json").read_text())
    if report is not None:
        # The latest measured time of every stage, whichever run measured it.
        timings = report.setdefault("timings_s", {})
        timings.update(timer.stages)
        timings.pop("total", None)
        if stages:
            write_json(out / "eval_python.json", report)
    if (out / "base" / "model.safetensors").exists() and args.stage in ("all", "experts", "eval", "readme"):
        (out / "README.md").write_text(models_readme(out, cfg, report))
    if (out / "experts").is_dir() and args.stage == "readme":
        (out / "experts" / "README.md").write_text(experts_readme(cfg))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"done in {total:.1f}s ({total / 60:.1f} min); {out} = {size / 1e6:.1f} MB", flush=True)
    if not args.quick and size > 40e6:
        print("WARNING: Models/ exceeds 40 MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
