#!/usr/bin/env python3
"""Why a head-only warm-up followed by unfreezing can blow the loss up, measured in PyTorch on
given backbones (tlrun's exported .safetensors or fastai_style.py's .pth) with the transfer
recipe of fastai_style.py, under four treatments of the backbone's BatchNorm statistics:

  as-is     the pretrained running statistics (the recipe as written)
  precise   running statistics recomputed on the SOURCE training images with the final weights
            (PreciseBN, Wu & Johnson 2021): what a pretraining could publish instead of the
            running averages of its last few dozen steps
  adabn     running statistics recomputed on the TARGET training images before the warm-up
            (AdaBN, Li et al. 2016)
  train-bn  the frozen groups' BatchNorm trains during the warm-up (fastai's train_bn=True)

For each backbone and treatment prints one JSON line: the warm-up's last train loss, the
fine-tune's first-epoch train loss, and the final valid accuracy.

Usage: warmup_blowup.py BACKBONE... [--seed S] [--treatments as-is precise adabn train-bn]
"""

import argparse
import json
import os
import sys
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastai_style as fs  # noqa: E402

MEAN, STD = [0.3059] * 3, [0.3281] * 3


@torch.no_grad()
def recompute_statistics(model, images, batch=64):
    """Every BatchNorm's running statistics as the exact mean and (unbiased) variance over
    `images` with the current weights (momentum None: a cumulative average over the batches)."""
    layers = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    saved = [module.momentum for module in layers]
    for module in layers:
        module.reset_running_stats()
        module.momentum = None
    model.train()
    for start in range(0, len(images), batch):
        model(images[start:start + batch])
    for module, momentum in zip(layers, saved):
        module.momentum = momentum
    model.eval()


def run(backbone, treatment, seed, source_train, target, opts):
    losses = []
    fs.log = lambda line: losses.append(line)
    torch.manual_seed(seed + 1)
    generator = torch.Generator().manual_seed(seed + 1)
    model = fs.resnet18(5)
    fs.load_backbone(model, Path(backbone))
    if treatment == "precise":
        recompute_statistics(model, source_train)
    if treatment == "adabn":
        recompute_statistics(model, target[0][0])
    fs.new_head(model, 5, fastai_init=True)
    train, valid = target
    original_set_mode = fs.set_mode
    if treatment == "train-bn":
        fs.set_mode = lambda model, groups, frozen_batchnorm_eval=True: original_set_mode(model, groups, frozen_batchnorm_eval=False)
    fs.fit_stage(model, "warmup", train, valid, trained_groups={"head"}, epochs=3, lr=1e-2, spread=None, batch_size=32, generator=generator, opts=opts)
    fs.set_mode = original_set_mode
    accuracy = fs.fit_stage(model, "finetune", train, valid, trained_groups=set(fs.GROUPS), epochs=8, lr=1e-3, spread=100.0, batch_size=32, generator=generator, opts=opts)
    loss = lambda line: float(line.split("train loss")[1].split()[0])
    warmup = [loss(line) for line in losses if "warmup" in line]
    finetune = [loss(line) for line in losses if "finetune" in line]
    return {"backbone": backbone, "treatment": treatment, "warmup_last_loss": round(warmup[-1], 3), "finetune_first_loss": round(finetune[0], 3), "transfer_acc": round(accuracy, 4), "warmup_losses": warmup, "finetune_losses": finetune}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbones", nargs="+")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--treatments", nargs="+", default=["as-is", "precise", "adabn", "train-bn"])
    parser.add_argument("--data", type=Path, default=Path(fs.__file__).resolve().parent / "data")
    args = parser.parse_args()
    opts = argparse.Namespace(drop_last=False, mom_cycle=True, wd_bn_bias=False)
    load = lambda folder: fs.load_folder(args.data / folder)
    source_images, _, _ = load("source/train")
    train_images, train_labels, _ = load("target/train")
    valid_images, valid_labels, _ = load("target/valid")
    target = ((fs.normalise(train_images, MEAN, STD), train_labels), (fs.normalise(valid_images, MEAN, STD), valid_labels))
    source_train = fs.normalise(source_images, MEAN, STD)
    for backbone in args.backbones:
        for treatment in args.treatments:
            print(json.dumps(run(backbone, treatment, args.seed, source_train, target, opts)), flush=True)


if __name__ == "__main__":
    main()
