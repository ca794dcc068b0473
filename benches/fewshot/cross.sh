#!/usr/bin/env bash
# The two halves of a difference apart: each side fine-tunes the other side's pretrained backbone.
# Usage: benches/fewshot/cross.sh TLRUN PYTHON TLRUN_BACKBONES SEED…
#   TLRUN_BACKBONES: a folder holding seed-S/pretrained.safetensors (tlrun_seeds.sh's $OUT/tlrun-fewshot)
# Needs data/pretrained_torch_seedS.safetensors (fastai_style.py --seed S, its backbone saved as
# safetensors). Prints one JSON line per seed: tlrun fine-tuning PyTorch's backbone, and PyTorch
# fine-tuning tlrun's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tlrun="$1"; python="$2"; tlrun_backbones="$3"; shift 3
work="${OUT:-/tmp}/tlrun-fewshot-cross"
mkdir -p "$work"
ln -sfn "$here/data" "$work/data"
for seed in "$@"; do
  sed -e "s/^seed .*/seed $seed/" -e "s|from recipe \"pretrain.tl\"|from file \"data/pretrained_torch_seed$seed.safetensors\"|" \
    "$here/transfer.tl" > "$work/transfer_on_torch_$seed.tl"
  "$tlrun" run "$work/transfer_on_torch_$seed.tl" --out "$work/runs/on-torch-$seed" > "$work/on-torch-$seed.log" 2>&1
  tlrun_on_torch=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['final_valid_accuracy'])" "$work/runs/on-torch-$seed/summary.json")
  torch_on_tlrun=$("$python" "$here/fastai_style.py" --seed "$seed" --pretrained "$tlrun_backbones/seed-$seed/pretrained.safetensors" 2> /dev/null \
    | "$python" -c "import json,sys; print(json.loads(sys.stdin.readline())['transfer_acc'])")
  printf '{"seed": %s, "tlrun_on_torch_backbone": %s, "torch_on_tlrun_backbone": %s}\n' "$seed" "$tlrun_on_torch" "$torch_on_tlrun"
done
