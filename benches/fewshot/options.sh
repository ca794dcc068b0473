#!/usr/bin/env bash
# Issue 27's question on the few-shot digits: which of the newer options earn points. For every
# seed S: pretrain.tl with `seed S`, then transfer.tl with `seed S` as it is and with one option
# added at a time: fastai's aug_transforms without flips (digits are not mirror-symmetric),
# L2-SP, both, and BSS at the paper's defaults. Prints one JSON line per seed; run folders stay under $OUT (default /tmp).
# Usage: benches/fewshot/options.sh [TLRUN] [SEED…]   (run make_digits.py first)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tlrun="$(realpath "${1:-$here/../../target/debug/tlrun}")"
shift || true
seeds=("${@:-0 1 2 3 4}")
out="${OUT:-/tmp}/tlrun-fewshot-options"
echo "benches/fewshot/options.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$here" rev-parse --short HEAD), $(nproc) cores" >&2
. "$here/seeded.sh"
augment='  augment rotate zoom lighting warp'
for seed in ${seeds[@]}; do
  work="$out/seed-$seed"
  seed_folder "$work" "$seed"
  sed -e "s|^  normalize backbone.*|&\n$augment|" "$work/transfer.tl" > "$work/transfer_augment.tl"
  sed -e 's|^head {|regularise l2sp 0.01 0.01\n&|' "$work/transfer.tl" > "$work/transfer_l2sp.tl"
  sed -e 's|^head {|regularise l2sp 0.01 0.01\n&|' "$work/transfer_augment.tl" > "$work/transfer_both.tl"
  sed -e 's|^head {|regularise bss\n&|' "$work/transfer.tl" > "$work/transfer_bss.tl"
  started=$(date +%s)
  for recipe in pretrain transfer transfer_augment transfer_l2sp transfer_both transfer_bss; do
    "$tlrun" run "$work/$recipe.tl" --out "$work/runs/$recipe" > "$work/$recipe.log" 2>&1
  done
  printf '{"seed": %s, "transfer": %s, "augment": %s, "l2sp": %s, "both": %s, "bss": %s, "seconds": %s}\n' "$seed" \
    "$(accuracy "$work/runs/transfer")" "$(accuracy "$work/runs/transfer_augment")" "$(accuracy "$work/runs/transfer_l2sp")" \
    "$(accuracy "$work/runs/transfer_both")" "$(accuracy "$work/runs/transfer_bss")" "$(( $(date +%s) - started ))"
done
