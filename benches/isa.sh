#!/usr/bin/env bash
# tlrun against PyTorch at each instruction-set level, in alternating pairs: the table
# docs/performance.md quotes ("Per instruction set"). Both sides are capped the same way:
# TLRUN_KERNELS_ISA for tlrun; ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA for PyTorch
# (benches/ops/side_by_side.py --isa). The `gemm` crate's own microkernels cannot be capped.
# Usage: benches/isa.sh [TLRUN]   (PYTHON must import torch and torchvision; ISAS, PAIRS, and
# LARGE: the 224 px networks, timed at batch 16 over 4 steps; empty skips them)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tlrun="$(realpath "${1:-$root/target/debug/tlrun}")"
python="${PYTHON:-python3}"
isas="${ISAS:-avx512 avx2 portable}"
pairs="${PAIRS:-3}"
large="${LARGE-resnet18@224 resnet50@224}"
echo "benches/isa.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for isa in $isas; do
  echo "## $isa"
  "$python" "$root/benches/ops/side_by_side.py" --tlrun "$tlrun" --isa "$isa" --pairs "$pairs" --steps 8 --batch 64 resnet_small@32 resnet18@28 resnet18@64 | tail -3
  if [ -n "$large" ]; then
    # shellcheck disable=SC2086
    "$python" "$root/benches/ops/side_by_side.py" --tlrun "$tlrun" --isa "$isa" --pairs "$pairs" --steps 4 --batch 16 $large | tail -"$(echo $large | wc -w)"
  fi
done
