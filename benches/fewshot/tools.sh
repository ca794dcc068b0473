#!/usr/bin/env bash
# Issue 27's done-when on the few-shot digits: the recipe tlrun's own tools recommend. For every
# seed S: pretrain.tl with `seed S`, then transfer.tl with the cut `tlrun probe --write` picks
# (LogME) and the finetune rate `tlrun lr-find --stage finetune --write valley` picks, run beside
# transfer.tl as it is. Prints one JSON line per seed; run folders stay under $OUT (default /tmp).
# Usage: benches/fewshot/tools.sh [TLRUN] [SEED…]   (run make_digits.py first)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tlrun="$(realpath "${1:-$here/../../target/debug/tlrun}")"
shift || true
seeds=("${@:-0 1 2 3 4}")
out="${OUT:-/tmp}/tlrun-fewshot-tools"
echo "benches/fewshot/tools.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$here" rev-parse --short HEAD), $(nproc) cores" >&2
. "$here/seeded.sh"
for seed in ${seeds[@]}; do
  work="$out/seed-$seed"
  seed_folder "$work" "$seed"
  "$tlrun" run "$work/pretrain.tl" --out "$work/runs/pretrain" > "$work/pretrain.log" 2>&1
  "$tlrun" run "$work/transfer.tl" --out "$work/runs/transfer" > "$work/transfer.log" 2>&1
  cp "$work/transfer.tl" "$work/transfer_tools.tl"
  (cd "$work" && "$tlrun" probe transfer_tools.tl --write --plot probe.png > probe.log 2>&1)
  (cd "$work" && "$tlrun" lr-find transfer_tools.tl --stage finetune --write valley --plot lr_find.png > lr_find.log 2>&1)
  "$tlrun" run "$work/transfer_tools.tl" --out "$work/runs/transfer_tools" > "$work/transfer_tools.log" 2>&1
  cut=$(sed -n 's/^cut after \([a-z0-9_]*\).*/\1/p' "$work/transfer_tools.tl" | head -1)
  rate=$(awk '/^stage finetune/,/^}/' "$work/transfer_tools.tl" | sed -n 's/^ *lr \([0-9.e+-]*\).*/\1/p' | head -1)
  printf '{"seed": %s, "transfer": %s, "tools": %s, "cut": "%s", "finetune_lr": "%s"}\n' "$seed" \
    "$(accuracy "$work/runs/transfer")" "$(accuracy "$work/runs/transfer_tools")" "$cut" "$rate"
done
