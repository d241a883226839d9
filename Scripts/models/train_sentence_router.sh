#!/usr/bin/env bash
# Trains the embedded sentence-level router (Models/routers/sentence.pb) with Switchyard itself:
# features = mean-pooled base-model hidden state of each training prompt, an MLP gate trained
# with cross-entropy and Adam in Swift (`switchyard router train`), no Python.
#
#   swift build -c release && Scripts/models/train_sentence_router.sh [--layer L] [--per-task N]
set -euo pipefail
cd "$(dirname "$0")/../.."
sy=${SWITCHYARD:-.build/release/switchyard}
layer=2
per_task=300
while [ $# -gt 0 ]; do
  case "$1" in
    --layer) layer=$2; shift 2 ;;
    --per-task) per_task=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
examples=$(mktemp)
trap 'rm -f "$examples"' EXIT
for dir in Models/experts/*/; do
  task=$(basename "$dir")
  [ -f "Models/tasks/$task/train.jsonl" ] || continue
  # Each line {"prompt": …, …} becomes {"expert": "<task>", "prompt": …, …}.
  head -n "$per_task" "Models/tasks/$task/train.jsonl" | sed "s/^{/{\"expert\": \"$task\", /" >> "$examples"
done
mkdir -p Models/routers
"$sy" router train --model Models/base --registry Models/experts --examples "$examples" \
  --layer "$layer" --pooling mean --hidden 64 --epochs 40 --top-k 1 --out Models/routers/sentence.pb --name sentence
