#!/usr/bin/env bash
# Every figure README.md quotes, measured again and printed with the date, the commit and the
# machine, so a figure in the docs can be traced to the run that made it (and re-made).
#
# Usage: benches/figures.sh [SECTION…]   (default: demo fewshot speed)
#   demo     `tlrun run pipelines --force`: the three runs' valid accuracies, the forgetting
#            curve, and the wall time
#   fewshot  benches/fewshot over seeds 0–4: tlrun (tlrun_seeds.sh) and, when $PYTHON has torch,
#            the fastai-style PyTorch script; per seed and mean ± sd
#   speed    `tlrun bench`: training and inference images/s, peak memory, lint latency
#   pytorch  benches/ops/side_by_side.py: tlrun against PyTorch (needs torch in $PYTHON), 10
#            alternating pairs a network
#
# Environment: TLRUN (default target/release/tlrun, built if missing), PYTHON (default python3),
# SEEDS (default "0 1 2 3 4"), OUT (scratch folder, default /tmp/tlrun-figures).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tlrun="${TLRUN:-$root/target/release/tlrun}"
python="${PYTHON:-python3}"
seeds="${SEEDS:-0 1 2 3 4}"
out="${OUT:-/tmp/tlrun-figures}"
mkdir -p "$out"
if [ ! -x "$tlrun" ]; then cargo build --release --locked >&2; fi

header() {
  local dirty=""
  git diff --quiet HEAD -- src kernels Cargo.toml Cargo.lock 2>/dev/null || dirty=" (uncommitted changes in src)"
  echo "## $1"
  echo "date: $(date -u +%Y-%m-%d)  commit: $(git rev-parse --short HEAD)$dirty"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), avx512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no)"
  echo "command: $2"
}

# mean ± sample sd of the numbers on stdin, in percent
mean_sd() {
  "$python" -c "
import statistics, sys
values = [100 * float(v) for v in sys.stdin.read().split()]
sd = statistics.stdev(values) if len(values) > 1 else 0.0
print(f'{statistics.mean(values):.1f} ± {sd:.1f} (n={len(values)}, min {min(values):.1f}, max {max(values):.1f})')"
}

demo() {
  header demo "tlrun run pipelines --force"
  local started ended
  started=$(date +%s.%N)
  "$tlrun" run pipelines --force > "$out/demo.log" 2>&1
  ended=$(date +%s.%N)
  for recipe in pretrain transfer scratch; do
    local folder
    folder=$(ls -d runs/$recipe/*/ | sort | tail -1)
    "$python" -c "import json,sys; s=json.load(open(sys.argv[1])); print(f'{sys.argv[2]:9s} valid accuracy {100*s[\"final_valid_accuracy\"]:.1f}%')" "$folder/summary.json" "$recipe"
    if [ -f "$folder/forgetting.jsonl" ]; then
      "$python" -c "
import json, sys
points = [json.loads(line) for line in open(sys.argv[1])]
print('          forgetting (' + points[0].get('scored_on', '?') + '): ' + ' -> '.join(f\"{p['stage']} {100*p['source_accuracy']:.1f}%\" for p in points))" "$folder/forgetting.jsonl"
    fi
  done
  printf "wall time: %.1f s\n" "$(echo "$ended - $started" | bc)"
}

# One side's JSON lines: per seed, then each figure's mean ± sd over the seeds.
per_seed() {
  echo "$1, per seed (source valid / transfer / scratch):"
  "$python" -c "
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f\"  seed {r['seed']}: {100*r['source_valid_acc']:.1f}% / {100*r['transfer_acc']:.1f}% / {100*r['scratch_acc']:.1f}%\")" "$2"
  for field in source_valid_acc transfer_acc scratch_acc; do
    echo "  $field: $("$python" -c "import json,sys; print(' '.join(str(json.loads(l)['$field']) for l in open(sys.argv[1])))" "$2" | mean_sd)"
  done
}

fewshot() {
  header fewshot "benches/fewshot/tlrun_seeds.sh TLRUN $seeds; fastai_style.py --seed S"
  [ -d benches/fewshot/data ] || "$python" benches/fewshot/make_digits.py > /dev/null
  OUT="$out" bash benches/fewshot/tlrun_seeds.sh "$tlrun" $seeds > "$out/fewshot-tlrun.jsonl"
  per_seed "tlrun" "$out/fewshot-tlrun.jsonl"
  if "$python" -c "import torch, torchvision" 2> /dev/null; then
    : > "$out/fewshot-torch.jsonl"
    for seed in $seeds; do
      "$python" benches/fewshot/fastai_style.py --seed "$seed" >> "$out/fewshot-torch.jsonl" 2> /dev/null
    done
    per_seed "PyTorch (fastai_style.py, torch $("$python" -c 'import torch; print(torch.__version__)'))" "$out/fewshot-torch.jsonl"
  else
    echo "PyTorch: not measured ($python has no torch)"
  fi
}

speed() {
  header speed "tlrun bench"
  "$tlrun" bench
}

pytorch() {
  header pytorch "benches/ops/side_by_side.py --tlrun TLRUN --pairs 10"
  "$python" benches/ops/side_by_side.py --tlrun "$tlrun" --pairs "${PAIRS:-10}" | tail -4
}

sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(demo fewshot speed)
for section in "${sections[@]}"; do
  case "$section" in
    demo | fewshot | speed | pytorch) "$section"; echo ;;
    *) echo "unknown section $section (demo, fewshot, speed, pytorch)" >&2; exit 2 ;;
  esac
done
