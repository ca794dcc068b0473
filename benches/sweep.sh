#!/usr/bin/env bash
# Transfer against scratch over 5 seeds, three ways, with their wall times: the runs one after
# another (--jobs 1), two local jobs (--jobs 2), and the local Slurm (--on slurm --wait; start one
# with .ci/slurm-up). Each prints the paired difference with its 95% interval; the script then
# checks that every variant's weights are the same bytes three ways.
# Usage: benches/sweep.sh demo|digits [TLRUN]   (digits: PYTHON must import scikit-learn and Pillow)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
which="${1:-demo}"
tlrun="$(realpath "${2:-$root/target/debug/tlrun}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "benches/sweep.sh $which on $(date -u +%Y-%m-%d) at commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores"
mkdir -p "$work/base"
case "$which" in
  demo) cp "$root"/pipelines/*.tl "$work/base/" ;;
  digits)
    "${PYTHON:-python3}" "$root/benches/fewshot/make_digits.py" --out "$work/base/data" > /dev/null
    sed -e 's|data/pretrained_tlrun.safetensors|pretrained.safetensors|' "$root/benches/fewshot/pretrain.tl" > "$work/base/pretrain.tl"
    cp "$root/benches/fewshot/transfer.tl" "$root/benches/fewshot/scratch.tl" "$work/base/" ;;
  *) echo "usage: benches/sweep.sh demo|digits [TLRUN]" >&2; exit 2 ;;
esac
for recipe in transfer scratch; do printf 'sweep { seed 0 1 2 3 4 }\n' >> "$work/base/$recipe.tl"; done
export TLRUN_ZOO=zoo
for way in "sequential:--jobs 1" "jobs2:--jobs 2" "slurm:--on slurm --wait"; do
  name="${way%%:*}"
  cp -a "$work/base" "$work/$name"
  started=$(date +%s.%N)
  (cd "$work/$name" && "$tlrun" run . ${way#*:} > out.log 2>&1)
  echo "$name (${way#*:}): $(echo "$(date +%s.%N) - $started" | bc) s: $(grep -h -E 'beats|trails' "$work/$name/out.log")"
done
for name in jobs2 slurm; do
  for file in $(cd "$work/sequential" && find runs -path '*sweep/seed=*/weights.safetensors' | sort); do
    cmp -s "$work/sequential/$file" "$work/$name/$file" || echo "DIFFERENT: $name $file"
  done
done
grep -h "n=5" "$work/sequential/out.log"
