#!/usr/bin/env bash
# Which backbone to start from: does `tlrun probe --backbones` rank the zoo the way fine-tuning
# does? Pretrains six candidate backbones (three depths, two source domains, two lengths of
# pretraining) into a zoo of their own, probes both target recipes with every entry, fine-tunes
# each target from each entry over seeds, and prints the weighted Kendall tau of each metric
# against the fine-tuned accuracy (rank.py). Needs benches/fewshot/data (make_digits.py) and
# python3 with scipy.
# Usage: benches/backbones/run.sh [TLRUN] [SEED…]   (default seeds 0 1 2 3 4; $OUT, default /tmp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tlrun="$(realpath "${1:-$here/../../target/debug/tlrun}")"
shift || true
seeds=("${@:-0 1 2 3 4}")
out="${OUT:-/tmp}/tlrun-backbones"
export TLRUN_ZOO="$out/zoo"
mkdir -p "$out/runs" "$TLRUN_ZOO"
echo "benches/backbones/run.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$here" rev-parse --short HEAD), $(nproc) cores" >&2
candidates=(digits-resnet18 digits-resnet18-brief digits-resnet34 digits-small shapes-resnet18 shapes-small)
for candidate in "${candidates[@]}"; do
  if [ ! -f "$TLRUN_ZOO/$candidate/card.toml" ]; then
    echo "pretraining $candidate" >&2
    "$tlrun" run "$here/$candidate.tl" --out "$out/runs/pretrain-$candidate" > "$out/runs/pretrain-$candidate.log" 2>&1
  fi
done
for target in digits shapes; do
  "$tlrun" probe "$here/target-$target.tl" --backbones "${candidates[@]}" --format json --samples 2000 > "$out/probe-$target.json" 2> "$out/probe-$target.log"
  for candidate in "${candidates[@]}"; do
    architecture=$(sed -n 's/^architecture = "\(.*\)"/\1/p' "$TLRUN_ZOO/$candidate/card.toml")
    for seed in ${seeds[@]}; do
      recipe="$here/.target-$target-$candidate-$seed.tl"
      sed -e "s/^seed .*/seed $seed/" -e "s|^backbone .*|backbone $architecture from zoo \"$candidate\"|" "$here/target-$target.tl" > "$recipe"
      "$tlrun" run "$recipe" --out "$out/runs/$target-$candidate-$seed" > "$out/runs/$target-$candidate-$seed.log" 2>&1
      rm -f "$recipe"
    done
  done
done
python3 "$here/rank.py" "$out" ${seeds[@]}
