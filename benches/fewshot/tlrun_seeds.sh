#!/usr/bin/env bash
# tlrun's side of the few-shot digits benchmark, over several seeds, as fastai_style.py --seeds does.
# Usage: benches/fewshot/tlrun_seeds.sh [TLRUN] [SEED…]   (run make_digits.py first)
# For every seed S: pretrain.tl, transfer.tl and scratch.tl with `seed S`, then two variants of
# transfer.tl: with the default batch (no `batch` line) and with `keep best valid_accuracy` in its
# finetune stage. Prints one JSON line per seed; each run's folder is kept under $OUT (default /tmp).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tlrun="${1:-$here/../../target/debug/tlrun}"
shift || true
seeds=("${@:-0 1 2}")
out="${OUT:-/tmp}/tlrun-fewshot"
accuracy() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['final_valid_accuracy'])" "$1/summary.json"; }
for seed in ${seeds[@]}; do
  work="$out/seed-$seed"
  rm -rf "$work" && mkdir -p "$work"
  ln -s "$here/data" "$work/data"
  for recipe in pretrain transfer scratch; do
    sed -e "s/^seed .*/seed $seed/" -e 's|data/pretrained_tlrun.safetensors|pretrained.safetensors|' "$here/$recipe.tl" > "$work/$recipe.tl"
  done
  grep -v '^  batch 32' "$work/transfer.tl" > "$work/transfer_default_batch.tl"
  sed -e 's|^  lr 1e-3 spread 100 .*|  lr 1e-3 spread 100\n  keep best valid_accuracy|' "$work/transfer.tl" > "$work/transfer_keep_best.tl"
  started=$(date +%s)
  for recipe in pretrain transfer scratch transfer_default_batch transfer_keep_best; do
    "$tlrun" run "$work/$recipe.tl" --out "$work/runs/$recipe" > "$work/$recipe.log" 2>&1
  done
  seconds=$(( $(date +%s) - started ))
  kept=$(python3 -c "import json; print([m['epoch'] for m in map(json.loads, open('$work/runs/transfer_keep_best/metrics.jsonl')) if m.get('restored')])")
  printf '{"seed": %s, "source_valid_acc": %s, "transfer_acc": %s, "scratch_acc": %s, "transfer_default_batch_acc": %s, "transfer_keep_best_acc": %s, "keep_best_restored_epoch": "%s", "seconds": %s}\n' \
    "$seed" "$(accuracy "$work/runs/pretrain")" "$(accuracy "$work/runs/transfer")" "$(accuracy "$work/runs/scratch")" \
    "$(accuracy "$work/runs/transfer_default_batch")" "$(accuracy "$work/runs/transfer_keep_best")" "$kept" "$seconds"
done
