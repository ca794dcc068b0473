#!/usr/bin/env bash
# The figures docs/deploy.md quotes for `tlrun predict` and the ONNX export, printed with the date
# and commit. Usage: benches/predict.sh [TLRUN]   (from the repository root; IMAGES=100000 sets
# the size of the streaming run; PYTHON must import onnxruntime, scikit-learn and Pillow, e.g.
# the venv .ci/run makes: PYTHON=target/onnx-venv/bin/python)
#
# 1. The demo: run pipelines/, export its valid images as a folder (the same synthetic images),
#    predict on it and compare with the run's evaluation.json, cell by cell.
# 2. Real images: benches/fewshot's digits (scikit-learn's scans), pretrain + transfer, predict on
#    the 846 held-out digits; ONNX Runtime on the same PNGs through the exported graph.
# 3. Streaming: IMAGES synthetic PNGs through predict; wall time and peak RSS (/usr/bin/time).
# 4. `tlrun bench`'s inference figure beside predict's, for the demo's network and size.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tlrun="$(realpath "${1:-$root/target/debug/tlrun}")"
python="${PYTHON:-python3}"
images="${IMAGES:-100000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "benches/predict.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$root" rev-parse --short HEAD)"

same_confusion() {  # evaluation.json, confusion.csv
  "$python" - "$1" "$2" <<'EOF'
import csv, json, sys
expected = json.load(open(sys.argv[1]))["confusion"]
got = [[int(x) for x in row[1:]] for row in list(csv.reader(open(sys.argv[2])))[1:]]
print("  confusion matrix identical to evaluation.json:", got == expected)
EOF
}

echo "1. demo"
cp -r "$root/pipelines" "$work/pipelines"
(cd "$work" && "$tlrun" run pipelines --force > demo.log 2>&1)
run="$(ls -d "$work"/runs/transfer/*/ | tail -1)"
"$tlrun" data export shapes-target --out "$work/demo-valid" --per-class 40 --seed 4 --size 48 > /dev/null
echo "  evaluation.json accuracy: $("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['accuracy'])" "$run/evaluation.json")"
echo "  predict: $("$tlrun" predict "$run" "$work/demo-valid" --out "$work/demo.csv" 2>/dev/null)"
same_confusion "$run/evaluation.json" "$work/demo.confusion.csv"

echo "2. digits (scikit-learn scans)"
mkdir -p "$work/digits"
"$python" "$root/benches/fewshot/make_digits.py" --out "$work/digits/data" > /dev/null
sed -e 's|data/pretrained_tlrun.safetensors|pretrained.safetensors|' "$root/benches/fewshot/pretrain.tl" > "$work/digits/pretrain.tl"
cp "$root/benches/fewshot/transfer.tl" "$work/digits/transfer.tl"
(cd "$work/digits" && "$tlrun" run pretrain.tl --out runs/pretrain > pretrain.log 2>&1 && "$tlrun" run transfer.tl --out runs/transfer > transfer.log 2>&1)
digits="$work/digits/runs/transfer"
echo "  evaluation.json accuracy: $("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['accuracy'])" "$digits/evaluation.json")"
echo "  predict: $("$tlrun" predict "$digits" "$work/digits/data/target/valid" --out "$work/digits.csv" 2>/dev/null)"
same_confusion "$digits/evaluation.json" "$work/digits.confusion.csv"
"$tlrun" export "$digits" --format onnx --with-preprocessing --out "$work/digits.onnx" > /dev/null
"$python" - "$work/digits.onnx" "$work/digits/data/target/valid" "$work/digits.csv" <<'EOF'
import csv, glob, json, sys
import numpy as np
import onnxruntime as ort
from PIL import Image
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
card = json.loads(session.get_modelmeta().custom_metadata_map["tlrun.model_card"])
tlrun_class = {row[0]: row[1] for row in csv.reader(open(sys.argv[3])) if row[0] != "path"}
correct = agree = total = 0
for label, name in enumerate(card["classes"]):
    files = sorted(glob.glob(f"{sys.argv[2]}/{name}/*.png"))
    # The PNGs are 28 px, the model's size: no resizing, so these are tlrun's pixels exactly.
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) for f in files])
    predicted = session.run(["logits"], {"images": pixels})[0].argmax(1)
    correct += int((predicted == label).sum())
    agree += sum(tlrun_class[f] == card["classes"][p] for f, p in zip(files, predicted))
    total += len(files)
print(f"  ONNX Runtime {ort.__version__} on the same PNGs: {correct}/{total} correct, same class as tlrun predict for {agree}/{total}")
EOF

echo "3. streaming $images images"
"$tlrun" data export shapes-target --out "$work/many" --per-class $((images / 5)) --size 32 --seed 8 > /dev/null
/usr/bin/time -f "  wall %e s, peak RSS %M KB" "$tlrun" predict "$run" "$work/many" --out "$work/many.csv" 2>&1 | grep -E "image\(s\) predicted|peak RSS"

echo "4. tlrun bench beside predict (the demo's network and size)"
"$tlrun" bench --network resnet_small@48 --steps 8 | tail -2
