# Sourced by options.sh and tools.sh (needs $here): the per-seed folder both start from, and a
# run's final accuracy.

# `seed_folder WORK SEED`: WORK emptied, the data linked in, and pretrain.tl and transfer.tl with
# `seed SEED`, transfer.tl reading pretrain.tl's export from WORK.
seed_folder() {
  local work="$1" seed="$2"
  rm -rf "$work" && mkdir -p "$work"
  ln -s "$here/data" "$work/data"
  for recipe in pretrain transfer; do
    sed -e "s/^seed .*/seed $seed/" -e 's|data/pretrained_tlrun.safetensors|pretrained.safetensors|' "$here/$recipe.tl" > "$work/$recipe.tl"
  done
}

# `accuracy RUN_FOLDER`: its summary's final valid accuracy.
accuracy() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['final_valid_accuracy'])" "$1/summary.json"; }
