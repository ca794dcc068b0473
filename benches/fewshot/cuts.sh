#!/usr/bin/env bash
# Where to cut, on real images: `tlrun probe` on transfer.tl, then transfer.tl fine-tuned at three
# cuts over three seeds, each with the forgetting curve on the source digits. The figures
# docs/probe.md quotes for scikit-learn's digits.
# Usage: benches/fewshot/cuts.sh [TLRUN]   (PYTHON must import scikit-learn and Pillow; SEEDS, CUTS)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tlrun="$(realpath "${1:-$root/target/debug/tlrun}")"
python="${PYTHON:-python3}"
seeds="${SEEDS:-0 1 2}"
cuts="${CUTS:-layer2 layer3 layer4}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "benches/fewshot/cuts.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores"
"$python" "$here/make_digits.py" --out "$work/data" > /dev/null
sed -e 's|data/pretrained_tlrun.safetensors|pretrained.safetensors|' "$here/pretrain.tl" > "$work/pretrain.tl"
cp "$here/transfer.tl" "$work/transfer.tl"
(cd "$work" && "$tlrun" run pretrain.tl --out runs/pretrain > pretrain.log 2>&1)
"$python" -c "import json,sys; print(f'pretrain valid accuracy: {100*json.load(open(sys.argv[1]))[\"final_valid_accuracy\"]:.1f}%')" "$work/runs/pretrain/summary.json"
echo "tlrun probe transfer.tl:"
(cd "$work" && "$tlrun" probe transfer.tl 2>&1 | sed 's/^/  /')
echo "fine-tuned valid accuracy, and source accuracy before -> after (forgetting.jsonl):"
for cut in $cuts; do
  for seed in $seeds; do
    "$python" - "$work/transfer.tl" "$work/cut-$cut-$seed.tl" "$cut" "$seed" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r"(?m)^seed .*$", f"seed {sys.argv[4]}", text)
text = text.replace('  valid "data/target/valid"\n', '  valid "data/target/valid"\n  source "data/source/train"\n')
# the cut goes after the backbone block (the first line that is a lone closing brace)
text = re.sub(r"(?m)^\}\n", f"}}\ncut after {sys.argv[3]}\n", text, count=1)
open(sys.argv[2], "w").write(text)
PY
    (cd "$work" && "$tlrun" run "cut-$cut-$seed.tl" --out "runs/cut-$cut-$seed" > "cut-$cut-$seed.log" 2>&1)
    "$python" - "$work/runs/cut-$cut-$seed" "$cut" "$seed" <<'PY'
import json, sys
folder, cut, seed = sys.argv[1:]
accuracy = json.load(open(f"{folder}/summary.json"))["final_valid_accuracy"]
points = [json.loads(line) for line in open(f"{folder}/forgetting.jsonl")]
curve = " -> ".join(f"{100 * p['source_accuracy']:.1f}%" for p in points)
print(f"  cut after {cut:6s} seed {seed}: {100 * accuracy:.1f}%   source {curve} ({points[0].get('scored_on', '?')})")
PY
  done
done
