#!/usr/bin/env python3
"""The few-shot digits benchmark in plain PyTorch, written the way fastai trains (fastai is not
needed): the reference that pretrain.tl, transfer.tl and scratch.tl are compared against.

  pretrain  torchvision resnet18 (random init) on the source task, digits 0-4 (721 images),
            2 epochs, batch 64, lr 3e-3, one-cycle; saves the backbone to data/pretrained_torch.pth
  transfer  that backbone plus a new head (avgpool, Linear(512, 5)) on the target task, digits 5-9,
            10 images per class, batch 32:
              warmup    head only, backbone frozen (its BatchNorm in eval mode), 3 epochs, lr 1e-2
              finetune  everything, 8 epochs, lr 1e-3 spread over 6 groups from lr/100 to lr
  scratch   the transfer recipe from random weights (the baseline)

fastai's defaults mimicked: AdamW(betas 0.9 0.99, eps 1e-5, decoupled wd 0.01 on weights only, not
BatchNorm or bias: wd_bn_bias=False), fit_one_cycle (pct_start 0.25, div 25, div_final 1e5, cosine
both ways, beta1 cycled 0.95 -> 0.85 -> 0.95), a fresh optimizer per stage, kaiming_normal_ head
init with zero bias. Unlike fastai (drop_last=True for training), the last partial training batch
is kept, as PyTorch's DataLoader does by default.

--match-tlrun switches to what tlrun's runtime did at commit 449009a (src/runtime/trainer.rs,
schedule.rs, optimizer.rs): drop the last partial batch, a constant beta1 of 0.9, weight decay on
every parameter (burn's AdamW), PyTorch's default Linear init for the head (burn's is the same).
--drop-last, --no-mom-cycle, --wd-bn-bias and --torch-head-init switch them one at a time.

Run `python3 make_digits.py` first. Prints progress on stderr and one JSON line per seed on stdout:
    {"seed", "source_valid_acc", "transfer_acc", "scratch_acc", "seconds", ...}
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

# One CPU thread for everything (set before torch is imported).
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402

HERE = Path(__file__).resolve().parent

# fastai fit_one_cycle defaults.
PCT_START, DIV, DIV_FINAL = 0.25, 25.0, 1e5
MOMS = (0.95, 0.85, 0.95)
BETAS, EPS, WD = (0.9, 0.99), 1e-5, 0.01

GROUPS = ["stem", "layer1", "layer2", "layer3", "layer4", "head"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- data


def load_folder(root: Path):
    """An image folder (`root/<class>/<file>.png`) as a float tensor [N, 3, H, W] in 0..1 and labels.
    Classes are the sorted sub-folder names, as in tlrun and fastai."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() in (".png", ".jpg", ".jpeg"):
                pixels = np.asarray(Image.open(file).convert("RGB"), dtype=np.float32) / 255.0
                images.append(pixels.transpose(2, 0, 1))
                labels.append(label)
    if not images:
        sys.exit(f"no images under {root}: run make_digits.py first")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels), classes


def normalise(images, mean, std):
    return (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def batches(count, batch_size, generator, drop_last):
    """Shuffled index batches for one epoch (DataLoader(shuffle=True) semantics)."""
    order = torch.randperm(count, generator=generator)
    stop = count - count % batch_size if drop_last and count > batch_size else count
    return [order[start:min(start + batch_size, stop)] for start in range(0, stop, batch_size)]


def steps_per_epoch(count, batch_size, drop_last):
    if drop_last and count > batch_size:
        return count // batch_size
    return math.ceil(count / batch_size)


# ---------------------------------------------------------------------------------------- model


def resnet18(classes: int) -> nn.Module:
    return torchvision.models.resnet18(weights=None, num_classes=classes)


def new_head(model: nn.Module, classes: int, fastai_init: bool) -> None:
    """torchvision's avgpool stays; fc becomes a fresh Linear(512, classes)."""
    model.fc = nn.Linear(model.fc.in_features, classes)
    if fastai_init:  # fastai's apply_init(head, nn.init.kaiming_normal_): weight kaiming, bias 0
        nn.init.kaiming_normal_(model.fc.weight)
        nn.init.zeros_(model.fc.bias)


def group_of(name: str) -> str:
    top = name.split(".")[0]
    if top in ("conv1", "bn1"):
        return "stem"
    if top == "fc":
        return "head"
    return top


def is_batchnorm_or_bias(model: nn.Module, name: str) -> bool:
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    return leaf == "bias" or isinstance(module, nn.modules.batchnorm._BatchNorm)


def spread_multipliers(spread: float, n: int):
    """fastai slice(lr/spread, lr) spread geometrically: group i of n gets spread**((i-(n-1))/(n-1))."""
    if n == 1:
        return [1.0]
    return [spread ** ((i - (n - 1)) / (n - 1)) for i in range(n)]


# ------------------------------------------------------------------------------------- schedule


def cos_between(start, end, pct):
    return start + (1 + math.cos(math.pi * (1 - pct))) * (end - start) / 2


def one_cycle(step, total):
    """(lr factor, beta1) at `step` of `total`: fastai's combined_cos over pct_train = step/total."""
    pos = step / total
    if pos < PCT_START:
        p = pos / PCT_START
        return cos_between(1 / DIV, 1.0, p), cos_between(MOMS[0], MOMS[1], p)
    p = (pos - PCT_START) / (1 - PCT_START)
    return cos_between(1.0, 1 / DIV_FINAL, p), cos_between(MOMS[1], MOMS[2], p)


# ------------------------------------------------------------------------------------- training


def make_optimizer(model, trained_groups, lr, multipliers, wd_bn_bias):
    """AdamW with one parameter group per (layer group, decays?) pair: each layer group at its own
    rate; BatchNorm and bias parameters without weight decay unless wd_bn_bias."""
    param_groups = []
    for group, multiplier in zip(GROUPS, multipliers):
        if group not in trained_groups:
            continue
        decay, no_decay = [], []
        for name, parameter in model.named_parameters():
            if group_of(name) == group:
                (decay if wd_bn_bias or not is_batchnorm_or_bias(model, name) else no_decay).append(parameter)
        for params, wd in ((decay, WD), (no_decay, 0.0)):
            if params:
                param_groups.append({"params": params, "lr": lr * multiplier, "base_lr": lr * multiplier,
                                     "weight_decay": wd})
    return torch.optim.AdamW(param_groups, lr=lr, betas=BETAS, eps=EPS, weight_decay=WD)


def set_mode(model, trained_groups, frozen_batchnorm_eval=True):
    """Train mode, except the BatchNorm layers of frozen groups (eval: running statistics, no update)."""
    model.train()
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(group_of(name) in trained_groups)
    if frozen_batchnorm_eval:
        for name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and group_of(name) not in trained_groups:
                module.eval()


@torch.no_grad()
def accuracy(model, images, labels, batch_size=256):
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        correct += (logits.argmax(1) == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


def fit_stage(model, name, train, valid, *, trained_groups, epochs, lr, spread, batch_size, generator, opts):
    """One stage, as fastai's fit_one_cycle after freeze()/unfreeze(): a fresh optimizer, the
    one-cycle schedule over the stage's steps. Returns the valid accuracy after the last epoch."""
    images, labels = train
    multipliers = spread_multipliers(spread, len(GROUPS)) if spread else [1.0] * len(GROUPS)
    optimizer = make_optimizer(model, trained_groups, lr, multipliers, opts.wd_bn_bias)
    total = steps_per_epoch(len(images), batch_size, opts.drop_last) * epochs
    step = 0
    acc = float("nan")
    for epoch in range(1, epochs + 1):
        set_mode(model, trained_groups)
        loss_sum, seen = 0.0, 0
        for index in batches(len(images), batch_size, generator, opts.drop_last):
            factor, beta1 = one_cycle(step, total)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
                if opts.mom_cycle:
                    group["betas"] = (beta1, BETAS[1])
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(index)
            seen += len(index)
            step += 1
        acc = accuracy(model, *valid)
        log(f"    {name:8s} epoch {epoch}/{epochs}  train loss {loss_sum / max(seen, 1):.4f}  valid acc {acc:.4f}")
    return acc


def load_backbone(model, path: Path):
    """Backbone weights from a .pth state_dict (this script's) or a torchvision-named .safetensors
    (tlrun's export); fc is left as it is."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        sys.exit(f"{path}: missing {missing}, unexpected {unexpected}")


def transfer_recipe(model, target, opts, generator, label):
    train, valid = target
    log(f"  {label}")
    fit_stage(model, "warmup", train, valid, trained_groups={"head"}, epochs=3, lr=1e-2, spread=None,
              batch_size=32, generator=generator, opts=opts)
    return fit_stage(model, "finetune", train, valid, trained_groups=set(GROUPS), epochs=opts.finetune_epochs, lr=1e-3,
                     spread=100.0, batch_size=32, generator=generator, opts=opts)


def run_seed(seed, source, target, opts):
    started = time.perf_counter()
    log(f"seed {seed}")
    classes_source = int(source[0][1].max()) + 1
    classes_target = int(target[0][1].max()) + 1
    # The fastai-style backbone is data/pretrained_torch.pth; other modes keep theirs apart.
    suffix = "" if opts.mode == "fastai" else "_" + opts.mode.replace("fastai+", "").replace("+", "_").replace("-", "_")
    pretrained_path = opts.data / f"pretrained_torch{suffix}.pth"

    # pretrain: resnet18 from scratch on the source task.
    if opts.pretrained:
        source_acc = None
        pretrained_path = opts.pretrained
        log(f"  pretrain skipped: backbone from {pretrained_path}")
    else:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = resnet18(classes_source)
        log("  pretrain (source: digits 0-4)")
        source_acc = fit_stage(model, "train", *source, trained_groups=set(GROUPS), epochs=2, lr=3e-3, spread=None,
                               batch_size=64, generator=generator, opts=opts)
        backbone = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
        torch.save(backbone, pretrained_path)
        if opts.backbone_out:
            from safetensors.torch import save_file
            save_file({k: v.contiguous() for k, v in backbone.items()}, str(opts.backbone_out))

    # transfer: that backbone, a new head, the few-shot target task.
    torch.manual_seed(seed + 1)
    generator = torch.Generator().manual_seed(seed + 1)
    model = resnet18(classes_source)
    load_backbone(model, pretrained_path)
    new_head(model, classes_target, fastai_init=not opts.torch_head_init)
    transfer_acc = transfer_recipe(model, target, opts, generator, "transfer (target: digits 5-9, 10 per class)")

    # scratch: the same recipe from random weights.
    torch.manual_seed(seed + 2)
    generator = torch.Generator().manual_seed(seed + 2)
    model = resnet18(classes_source)
    new_head(model, classes_target, fastai_init=not opts.torch_head_init)
    scratch_acc = transfer_recipe(model, target, opts, generator, "scratch (same recipe, random weights)")

    return {
        "seed": seed,
        "source_valid_acc": source_acc,
        "transfer_acc": transfer_acc,
        "scratch_acc": scratch_acc,
        "seconds": round(time.perf_counter() - started, 1),
        "mode": opts.mode,
        "torch": torch.__version__,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None, help="one seed (default 0)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="several seeds, one JSON line each")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="the folder make_digits.py wrote")
    parser.add_argument("--match-tlrun", action="store_true",
                        help="train as tlrun does: drop the last partial batch, constant beta1, wd on every "
                             "parameter, PyTorch's default head init")
    parser.add_argument("--drop-last", action="store_true", help="drop the last partial training batch (fastai; tlrun at 449009a)")
    parser.add_argument("--no-mom-cycle", action="store_true", help="constant beta1 0.9 instead of 0.95 -> 0.85 -> 0.95")
    parser.add_argument("--wd-bn-bias", action="store_true", help="weight decay on BatchNorm and bias parameters too")
    parser.add_argument("--torch-head-init", action="store_true", help="PyTorch's default Linear init for the new head")
    parser.add_argument("--pretrained", type=Path, default=None,
                        help="skip pretraining and start transfer from these backbone weights (.pth, or "
                             "tlrun's data/pretrained_tlrun.safetensors)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--valid", default="valid",
                        help="the target folder (under data/target) accuracy is measured on (default valid; "
                             "recommend.sh reports on the `test` half)")
    parser.add_argument("--backbone-out", type=Path, default=None,
                        help="also save the pretrained backbone here as torchvision-named .safetensors (for tlrun)")
    parser.add_argument("--finetune-epochs", type=int, default=8, help="epochs of the finetune stage (default 8, as transfer.tl)")
    opts = parser.parse_args()
    if opts.match_tlrun:
        opts.drop_last = opts.no_mom_cycle = opts.wd_bn_bias = opts.torch_head_init = True
    opts.mom_cycle = not opts.no_mom_cycle
    opts.mode = "match-tlrun" if opts.match_tlrun else "fastai" + "".join(
        f"+{flag}" for flag, on in (("drop-last", opts.drop_last), ("no-mom-cycle", opts.no_mom_cycle),
                                    ("wd-bn-bias", opts.wd_bn_bias), ("torch-head-init", opts.torch_head_init)) if on)
    seeds = opts.seeds if opts.seeds is not None else [opts.seed if opts.seed is not None else 0]

    torch.set_num_threads(opts.threads)
    torch.set_num_interop_threads(1)

    source_train = load_folder(opts.data / "source" / "train")
    source_valid = load_folder(opts.data / "source" / "valid")
    target_train = load_folder(opts.data / "target" / "train")
    target_valid = load_folder(opts.data / "target" / opts.valid)
    assert source_train[2] == source_valid[2] and target_train[2] == target_valid[2], "class folders differ"

    # Per-channel statistics of the source train images (0..1 scale), rounded to 4 decimals as
    # written in the .tl recipes, and reused unchanged for the target task.
    pixels = source_train[0].permute(1, 0, 2, 3).reshape(3, -1).double()
    mean = [round(v, 4) for v in pixels.mean(1).tolist()]
    std = [round(v, 4) for v in pixels.std(1).tolist()]
    log(f"source train statistics: mean {mean} std {std}")
    log(f"  as a recipe line: normalize mean {' '.join(map(str, mean))} std {' '.join(map(str, std))}")
    log(f"images: source train {len(source_train[1])}, source valid {len(source_valid[1])}, "
        f"target train {len(target_train[1])}, target valid {len(target_valid[1])}")

    source = ((normalise(source_train[0], mean, std), source_train[1]),
              (normalise(source_valid[0], mean, std), source_valid[1]))
    target = ((normalise(target_train[0], mean, std), target_train[1]),
              (normalise(target_valid[0], mean, std), target_valid[1]))

    results = []
    for seed in seeds:
        result = run_seed(seed, source, target, opts)
        results.append(result)
        print(json.dumps(result), flush=True)

    if len(results) > 1:
        def summary(key):
            values = [r[key] for r in results if r[key] is not None]
            return f"{np.mean(values):.4f} ± {np.std(values):.4f}" if values else "-"
        log(f"over seeds {seeds}: source valid {summary('source_valid_acc')}, transfer {summary('transfer_acc')}, "
            f"scratch {summary('scratch_acc')}, seconds {summary('seconds')}")


if __name__ == "__main__":
    main()
