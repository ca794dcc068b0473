#!/usr/bin/env python3
"""Compare pretrained resnet18 backbones, not only their accuracies: what a head-only warm-up and
the unfreezing after it will see.

For each backbone (tlrun's exported .safetensors or fastai_style.py's .pth, torchvision names),
loaded into torchvision's resnet18:

  weights    L2 norm of every stage's convolution weights, mean BatchNorm gamma
  features   std of each stage's output on the target's training images, in eval mode (running
             statistics: what the frozen warm-up trains the head on) and in train mode (batch
             statistics: what the fine-tune sees once BatchNorm trains), and their ratio
  batchnorm  per BatchNorm layer, on the target's training images in batches of 32 as the
             fine-tune draws them: how far the batch statistics are from the running ones,
             |batch mean - running mean| / sqrt(running var) and batch var / running var
             (averaged over channels; the worst layer is printed)
  head jump  a head fitted (least squares on one-hot targets) to the eval-mode pooled features,
             then read on the train-mode features: its accuracy before and after the switch,
             the change unfreezing makes to what the warmed-up head receives

Usage: compare_backbones.py BACKBONE... [--data benches/fewshot/data]
Prints one JSON object per backbone.
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
from fastai_style import load_backbone, load_folder, normalise, resnet18  # noqa: E402

MEAN, STD = [0.3059] * 3, [0.3281] * 3
STAGES = ["bn1", "layer1", "layer2", "layer3", "layer4"]


def stage_outputs(model, images):
    outputs = {}
    hooks = [getattr(model, name).register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.detach()))
             for name in STAGES]
    model(images)
    for hook in hooks:
        hook.remove()
    return outputs


def batchnorm_gaps(model, images, batch=32):
    """Per BatchNorm layer: mean over channels and batches of the standardised mean gap and the
    variance ratio, batch statistics against running ones."""
    inputs = {}
    layers = {name: module for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: inputs.setdefault(name, []).append(i[0].detach()))
             for name, module in layers.items()]
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            model(images[start:start + batch])
    for hook in hooks:
        hook.remove()
    gaps = {}
    for name, module in layers.items():
        mean_gap, var_ratio = [], []
        for x in inputs[name]:
            batch_mean = x.mean(dim=(0, 2, 3))
            batch_var = x.var(dim=(0, 2, 3), unbiased=False)
            mean_gap.append(((batch_mean - module.running_mean).abs() / module.running_var.sqrt()).mean().item())
            var_ratio.append((batch_var / module.running_var).mean().item())
        gaps[name] = (sum(mean_gap) / len(mean_gap), sum(var_ratio) / len(var_ratio))
    return gaps


def least_squares_head(features, labels, classes):
    targets = torch.nn.functional.one_hot(labels, classes).float()
    x = torch.cat([features, torch.ones(len(features), 1)], 1)
    solution = torch.linalg.lstsq(x, targets, driver="gelsd").solution
    return lambda f: (torch.cat([f, torch.ones(len(f), 1)], 1) @ solution).argmax(1)


def describe(path, target_train, source_valid):
    model = resnet18(5)
    load_backbone(model, Path(path))
    images, labels = target_train
    report = {"backbone": str(path)}
    report["conv_weight_norm"] = {
        stage: round(sum(p.norm().item() ** 2 for n, p in model.named_parameters() if n.startswith(stage.replace("bn1", "conv1")) and p.dim() == 4) ** 0.5, 3)
        for stage in STAGES
    }
    report["bn_gamma_mean"] = round(torch.cat([m.weight.detach().abs() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]).mean().item(), 4)
    with torch.no_grad():
        model.eval()
        eval_out = stage_outputs(model, images)
        eval_pooled = model.avgpool(eval_out["layer4"]).flatten(1)
        train_model = resnet18(5)
        train_model.load_state_dict(model.state_dict())
        train_model.train()
        for module in train_model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.0  # batch statistics, running ones untouched
        train_out = {}
        pooled = []
        for start in range(0, len(images), 32):
            out = stage_outputs(train_model, images[start:start + 32])
            for name, value in out.items():
                train_out.setdefault(name, []).append(value)
            pooled.append(train_model.avgpool(out["layer4"]).flatten(1))
        train_out = {name: torch.cat(values) for name, values in train_out.items()}
        train_pooled = torch.cat(pooled)
    report["feature_std_eval"] = {name: round(eval_out[name].std().item(), 4) for name in STAGES}
    report["feature_std_train"] = {name: round(train_out[name].std().item(), 4) for name in STAGES}
    report["eval_over_train_std"] = {name: round(eval_out[name].std().item() / max(train_out[name].std().item(), 1e-12), 3) for name in STAGES}
    gaps = batchnorm_gaps(model, images)
    worst = max(gaps.items(), key=lambda item: item[1][0])
    report["bn_mean_gap_avg"] = round(sum(g[0] for g in gaps.values()) / len(gaps), 4)
    report["bn_var_ratio_avg"] = round(sum(g[1] for g in gaps.values()) / len(gaps), 4)
    report["bn_worst_layer"] = {"layer": worst[0], "mean_gap": round(worst[1][0], 4), "var_ratio": round(worst[1][1], 4)}
    head = least_squares_head(eval_pooled, labels, 5)
    report["head_acc_eval_features"] = round((head(eval_pooled) == labels).float().mean().item(), 4)
    report["head_acc_after_unfreeze"] = round((head(train_pooled) == labels).float().mean().item(), 4)
    # The source task's valid images in eval mode: how well the pretraining's own statistics fit.
    source_images, source_labels = source_valid
    with torch.no_grad():
        source_out = stage_outputs(model, source_images)
    report["source_feature_std_eval"] = {name: round(source_out[name].std().item(), 4) for name in STAGES}
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbones", nargs="+")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args()
    torch.manual_seed(0)
    train_images, train_labels, _ = load_folder(args.data / "target" / "train")
    source_images, source_labels, _ = load_folder(args.data / "source" / "valid")
    target_train = (normalise(train_images, MEAN, STD), train_labels)
    source_valid = (normalise(source_images, MEAN, STD), source_labels)
    for path in args.backbones:
        print(json.dumps(describe(path, target_train, source_valid)), flush=True)


if __name__ == "__main__":
    main()
