#!/usr/bin/env bash
# Issue 27's done-when, measured so that neither the pretraining nor the choice of options can
# flatter tlrun. For every seed S:
#   - the fastai-style PyTorch reference (fastai_style.py --seed S): its pretraining, transfer and
#     scratch, scored on data/target/test; its backbone is kept for tlrun (`torch` below); and its
#     transfer again on that backbone with a finetune of 16 epochs;
#   - tlrun's pretraining (pretrain.tl with `seed S`: `tlrun` below);
#   - for each task (`target`: digits 5-9; `scanned`: the same digits as scanned prints, a shifted
#     domain) and backbone: transfer.tl as it is (`base`, and with a finetune of 16 epochs), then the cut `tlrun probe --write` picks
#     and the finetune rate `tlrun lr-find --stage finetune --write valley` picks (`tools`), and the
#     tools' recipe with fastai's augmentation and/or a finetune of 16 epochs instead of 8; and the
#     stages `tlrun probe` prints as its advice, in place of the recipe's (`advice`);
#   - on `scanned`, the same four schedules from random weights (`scratch`, normalised with the
#     scanned images' own statistics).
# Every run trains on TASK/train and validates on TASK/dev (424 images), which is where options are
# chosen (recommend.py); the figures reported are on TASK/test (the other 422), which no choice saw.
# Prints one JSON line per seed: run name -> [dev accuracy, test accuracy], and the tools' picks.
# Usage: benches/fewshot/recommend.sh [TLRUN] [PYTHON] [SEED…]   (run make_digits.py first)
#        then: PYTHON benches/fewshot/recommend.py < recommend.jsonl
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tlrun="$(realpath "${1:-$here/../../target/debug/tlrun}")"
python="${2:-python3}"
shift 2 || shift $#
seeds=("${@:-0 1 2 3 4}")
out="${OUT:-/tmp}/tlrun-fewshot-recommend"
echo "benches/fewshot/recommend.sh on $(date -u +%Y-%m-%d) at commit $(git -C "$here" rev-parse --short HEAD), $(nproc) cores" >&2
. "$here/seeded.sh"
augment='  augment rotate zoom lighting warp'
scanned_stats='normalize mean 0.6994 0.6787 0.6381 std 0.2392 0.2300 0.1713'

# `variants NAME`: NAME_aug, NAME_16 and NAME_aug16 beside NAME.tl.
variants() {
  sed -e "s|^  normalize .*|&\n$augment|" "$1.tl" > "$1_aug.tl"
  sed -e 's|^  epochs 8$|  epochs 16|' "$1.tl" > "$1_16.tl"
  sed -e 's|^  epochs 8$|  epochs 16|' "$1_aug.tl" > "$1_aug16.tl"
}

# `score NAME`: runs NAME.tl, then "[dev, test]" accuracy.
score() {
  "$tlrun" run "$work/$1.tl" --out "$work/runs/$1" > "$work/$1.log" 2>&1
  local test
  test=$("$tlrun" predict "$work/runs/$1" "$work/data/$2/test" --out "$work/runs/$1/test.csv" 2> /dev/null \
    | sed -n 's/^accuracy \([0-9.]*\)%.*/\1/p')
  printf '[%s, %s]' "$(accuracy "$work/runs/$1")" "$("$python" -c "print(float('$test') / 100)")"
}

for seed in ${seeds[@]}; do
  work="$out/seed-$seed"
  seed_folder "$work" "$seed"
  started=$(date +%s)
  "$tlrun" run "$work/pretrain.tl" --out "$work/runs/pretrain" > "$work/pretrain.log" 2>&1
  reference=$(cd "$here" && OMP_NUM_THREADS=1 "$python" fastai_style.py --seed "$seed" --valid test \
    --backbone-out "$work/torch.safetensors" 2> "$work/reference.log")
  # The reference with the finetune as long as the longest variant's, so that epochs alone are seen.
  reference_16=$(cd "$here" && OMP_NUM_THREADS=1 "$python" fastai_style.py --seed "$seed" --valid test --finetune-epochs 16 \
    --pretrained "$work/torch.safetensors" 2> "$work/reference_16.log")
  line="{\"seed\": $seed, \"reference\": $reference, \"reference_16\": $reference_16"
  for task in target scanned; do
    for backbone in tlrun torch; do
      name="${task}_${backbone}"
      sed -e "s|data/target/|data/$task/|" -e "s|\"data/$task/valid\"|\"data/$task/dev\"|" "$work/transfer.tl" > "$work/${name}_base.tl"
      if [ "$backbone" = torch ]; then
        sed -i -e 's|from recipe "pretrain.tl"|from file "torch.safetensors"|' "$work/${name}_base.tl"
      fi
      cp "$work/${name}_base.tl" "$work/${name}_tools.tl"
      (cd "$work" && "$tlrun" probe "${name}_tools.tl" --write > "${name}_probe.log" 2>&1)
      (cd "$work" && "$tlrun" lr-find "${name}_tools.tl" --stage finetune --write valley > "${name}_lr_find.log" 2>&1)
      # The probe's printed advice as it stands: the recipe up to its stages, then the advice's two.
      { awk '/^stage /{exit} {print}' "$work/${name}_tools.tl"; sed -n '/^recommendation:/,$p' "$work/${name}_probe.log" | grep -o 'stage \(warmup\|finetune\) .*}'; } > "$work/${name}_advice.tl"
      variants "$work/${name}_tools"
      sed -e 's|^  epochs 8$|  epochs 16|' "$work/${name}_base.tl" > "$work/${name}_base_16.tl"
      cut=$(sed -n 's/^cut after \([a-z0-9_]*\).*/\1/p' "$work/${name}_tools.tl" | head -1)
      rate=$(awk '/^stage finetune/,/^}/' "$work/${name}_tools.tl" | sed -n 's/^ *lr \([0-9.e+-]*\).*/\1/p' | head -1)
      line="$line, \"${name}_picks\": [\"$cut\", \"$rate\"]"
      for run in base base_16 tools tools_aug tools_16 tools_aug16 advice; do
        line="$line, \"${name}_$run\": $(score "${name}_$run" "$task")"
      done
    done
  done
  sed -e "s/^seed .*/seed $seed/" -e "s|data/target/valid|data/scanned/dev|" -e "s|data/target/|data/scanned/|" \
    -e "s|^  normalize .*|  $scanned_stats|" "$here/scratch.tl" > "$work/scanned_scratch.tl"
  variants "$work/scanned_scratch"
  for run in scratch scratch_aug scratch_16 scratch_aug16; do
    line="$line, \"scanned_$run\": $(score "scanned_$run" scanned)"
  done
  echo "$line, \"seconds\": $(( $(date +%s) - started ))}"
done
