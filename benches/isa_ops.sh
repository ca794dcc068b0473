#!/usr/bin/env bash
# Where the time goes at one instruction-set level: every convolution of `tlrun bench --ops`
# (resnet_small at 32 px, resnet18 at 28, 64 and 224 px; forward, input gradient, weight
# gradient) timed in tlrun capped by TLRUN_KERNELS_ISA, then in PyTorch capped the same way
# (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA), side by side. The profile docs/performance.md quotes
# for the avx2 cells below 1.0x. Usage: ISA=avx2 benches/isa_ops.sh [TLRUN]  (PYTHON must import
# torch; REPEATS: timed repeats per op, the best counts).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tlrun="$(realpath "${1:-$root/target/debug/tlrun}")"
python="${PYTHON:-python3}"
isa="${ISA:-avx2}"
repeats="${REPEATS:-5}"
case "$isa" in
  avx512) torch_env=() ;;
  avx2) torch_env=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) ;;
  portable) torch_env=(ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41) ;;
  *) echo "ISA must be avx512, avx2 or portable, not $isa" >&2; exit 2 ;;
esac
timings="$(mktemp --suffix=.jsonl)"
trap 'rm -f "$timings"' EXIT
echo "benches/isa_ops.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, level $isa"
TLRUN_KERNELS_ISA="$isa" "$tlrun" bench --ops --repeats "$repeats" --json "$timings" > "$timings.txt"
head -2 "$timings.txt" && rm -f "$timings.txt"
env "${torch_env[@]}" OMP_NUM_THREADS="$(nproc)" "$python" "$root/benches/ops/torch_conv.py" --repeats "$repeats" "$timings"
