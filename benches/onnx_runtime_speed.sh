#!/usr/bin/env bash
# Inference against what a user would deploy with: ONNX Runtime on tlrun's own ONNX export of the
# same network, beside `tlrun bench`'s inference (tensors in, no decoding on either side), 2
# threads, alternating. The figures docs/performance.md quotes ("Against ONNX Runtime").
# Usage: benches/onnx_runtime_speed.sh [TLRUN]   (PYTHON must import onnxruntime and numpy;
# NETWORKS, default "resnet18@64 resnet18@224 resnet50@224"; BATCH, default 64; ROUNDS, default 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tlrun="$(realpath "${1:-$root/target/debug/tlrun}")"
python="${PYTHON:-python3}"
networks="${NETWORKS:-resnet18@64 resnet18@224 resnet50@224}"
batch="${BATCH:-64}"
rounds="${ROUNDS:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "benches/onnx_runtime_speed.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, batch $batch, onnxruntime $("$python" -c 'import onnxruntime; print(onnxruntime.__version__)'), TLRUN_KERNELS_ISA=${TLRUN_KERNELS_ISA:-unset}"
for spec in $networks; do
  name="${spec%@*}"; size="${spec#*@}"
  # A network of this architecture and size, trained one step on a few synthetic images (the
  # weights do not matter for speed), exported as tlrun exports any run.
  cat > "$work/$name-$size.tl" <<TL
recipe "speed"
backbone $name from none
data {
  train synthetic "shapes-source" 2 per class
  valid synthetic "shapes-source" 1 per class
  batch 20
  size $size
}
stage once { train all  epochs 1  lr 1e-3 }
export "$name-$size.onnx"
TL
  (cd "$work" && "$tlrun" run "$name-$size.tl" --out "run-$name-$size" > "$name-$size.log" 2>&1)
  for round in $(seq "$rounds"); do
    ours=$("$tlrun" bench --network "$spec" --batch "$batch" --steps 4 | awk -v n="$name" '$1 == n && $2 ~ /^[0-9]+$/ { print $5 }')
    theirs=$("$python" - "$work/$name-$size.onnx" "$size" "$batch" <<'PY'
import sys, time
import numpy as np
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 2
options.inter_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
size, batch = int(sys.argv[2]), int(sys.argv[3])
name = session.get_inputs()[0].name
batches = [np.random.default_rng(i).standard_normal((batch, 3, size, size), dtype=np.float32) for i in range(6)]
for images in batches[:2]:
    session.run(None, {name: images})
started = time.perf_counter()
for images in batches[2:]:
    session.run(None, {name: images})
print(f"{4 * batch / (time.perf_counter() - started):.1f}")
PY
)
    echo "$spec round $round: tlrun bench infer $ours img/s, ONNX Runtime on tlrun's export $theirs img/s, ratio $("$python" -c "print(f'{$ours / $theirs:.2f}x')")"
  done
done
