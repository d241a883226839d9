#!/usr/bin/env bash
# Fits the two demo routers that Switchyard trains itself, in pure Swift (no Python):
#
#   Models/routers/sentence.pb   sentence-level MLP gate (DLP-LoRA / MiLoRA): features = mean-pooled
#                                base-model hidden state of the prompt entering --layer; cross-entropy
#                                on expert labels, Adam (`switchyard router train`); top-1.
#   Models/routers/centroid.pb   gradient-free token-level router ("Token-Level Adaptation of LoRA
#                                Adapters"): centroids = mean hidden states entering --centroid-layer
#                                (default 0: the token embeddings, so that the experts run on every
#                                layer) of the text an expert handles, read as the router reads it:
#                                the mean of the last 40 tokens so far (--context-window 40) at each
#                                example's prompt end and, teacher-forced, at each token of its answer
#                                (--completions: the paper's centroids are of whole training texts);
#                                --centroids-per-expert of them (default 15, one per phrasing family:
#                                spherical k-means; 1 = the paper's single mean). The prompt is routed
#                                whole by its windowed mean (--prompt whole), then every 8th generated
#                                position by the windowed mean of the text so far; softmax(cosine /
#                                0.05), top-1 (`switchyard router fit-centroids`). Why layer 0, the
#                                whole prompt, the window, the answers and every 8th position:
#                                Models/routers/README.md, "Diagnosis".
#
#   swift build -c release && Scripts/models/fit_swift_routers.sh [--layer L] [--centroid-layer L] [--per-task N] [--centroids-per-expert K]
#
# Examples: the first N lines of each expert's Models/tasks/<expert>/train.jsonl (never dev/test).
set -euo pipefail
cd "$(dirname "$0")/../.."
sy=${SWITCHYARD:-.build/release/switchyard}
models=${SWITCHYARD_MODELS:-Models}
layer=2
centroid_layer=0
per_task=300
centroids_per_expert=15
while [ $# -gt 0 ]; do
  case "$1" in
    --layer) layer=$2; shift 2 ;;
    --centroid-layer) centroid_layer=$2; shift 2 ;;
    --per-task) per_task=$2; shift 2 ;;
    --centroids-per-expert) centroids_per_expert=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
examples=$(mktemp)
trap 'rm -f "$examples"' EXIT
for dir in "$models"/experts/*/; do
  task=$(basename "$dir")
  [ -f "$models/tasks/$task/train.jsonl" ] || continue
  # Each line {"prompt": …, …} becomes {"expert": "<task>", "prompt": …, …}.
  head -n "$per_task" "$models/tasks/$task/train.jsonl" | sed "s/^{/{\"expert\": \"$task\", /" >> "$examples"
done
mkdir -p "$models/routers"
"$sy" router train --model "$models/base" --registry "$models/experts" --examples "$examples" \
  --layer "$layer" --pooling mean --hidden 64 --epochs 40 --top-k 1 --out "$models/routers/sentence.pb" --name sentence
"$sy" router fit-centroids --model "$models/base" --registry "$models/experts" --examples "$examples" \
  --layer "$centroid_layer" --top-k 1 --temperature 0.05 --every-n 8 --context mean --prompt whole \
  --context-window 40 --completions --centroids-per-expert "$centroids_per_expert" \
  --out "$models/routers/centroid.pb" --name centroid
