#!/usr/bin/env python3
"""Reads recommend.sh's JSON lines (stdin) and prints issue 27's done-when as Markdown tables.

For each task and backbone the recommended recipe is the tools' variant (probe's cut and lr-find's
rate; with or without augmentation, finetune 8 or 16 epochs; or the stages the probe advises) with
the best mean accuracy on the dev half over the seeds; scratch's schedule is chosen the same way. Every figure printed is on the test
half, which no choice saw. Needs scipy (the t quantile of the paired intervals).
"""

import json
import sys

import numpy as np
from scipy import stats

TOOLS = ["tools", "tools_aug", "tools_16", "tools_aug16", "advice"]
SCRATCH = ["scratch", "scratch_aug", "scratch_16", "scratch_aug16"]
LABELS = {
    "base": "`transfer.tl` as it is",
    "base_16": "`transfer.tl`, finetune 16 epochs",
    "tools": "tools' cut and rate",
    "tools_aug": "tools + augment",
    "tools_16": "tools, finetune 16 epochs",
    "tools_aug16": "tools + augment, finetune 16 epochs",
    "advice": "probe's printed advice (its cut and stages)",
    "scratch": "scratch (`scratch.tl`)",
    "scratch_aug": "scratch + augment",
    "scratch_16": "scratch, finetune 16 epochs",
    "scratch_aug16": "scratch + augment, finetune 16 epochs",
}


def mean_sd(values):
    values = 100 * np.asarray(values)
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}%"


def paired(a, b):
    """Mean of a - b in points with its 95% paired-t interval."""
    d = 100 * (np.asarray(a) - np.asarray(b))
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.1f} (95% CI {d.mean() - half:+.1f} to {d.mean() + half:+.1f})"


def chosen(rows, prefix, names):
    """The variant with the best mean dev accuracy."""
    return max(names, key=lambda n: np.mean([r[f"{prefix}_{n}"][0] for r in rows]))


def table(rows, prefix, names, pick, extra=()):
    seeds = [r["seed"] for r in rows]
    print("| recipe | " + " | ".join(f"seed {s}" for s in seeds) + " | test mean ± sd | dev mean |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for name in names:
        test = [r[f"{prefix}_{name}"][1] for r in rows]
        dev = [r[f"{prefix}_{name}"][0] for r in rows]
        label = LABELS[name] + (" **(chosen on dev)**" if name == pick else "")
        cells = " | ".join(f"{100 * t:.1f}" for t in test)
        print(f"| {label} | {cells} | {mean_sd(test)} | {100 * np.mean(dev):.1f}% |")
    for label, values in extra:
        cells = " | ".join(f"{100 * t:.1f}" for t in values)
        print(f"| {label} | {cells} | {mean_sd(values)} | |")
    print()


def main():
    rows = [json.loads(line) for line in sys.stdin if line.strip()]
    reference = [r["reference"]["transfer_acc"] for r in rows]
    reference_16 = [r["reference_16"]["transfer_acc"] for r in rows]
    reference_scratch = [r["reference"]["scratch_acc"] for r in rows]
    picks = {}
    for task in ("target", "scanned"):
        for backbone in ("tlrun", "torch"):
            prefix = f"{task}_{backbone}"
            pick = picks[prefix] = chosen(rows, prefix, TOOLS)
            print(f"### {task}, {backbone}'s backbone (test accuracy, %)\n")
            extra = [("PyTorch reference (`fastai_style.py`)", reference),
                     ("PyTorch reference, finetune 16 epochs (PyTorch's backbone)", reference_16)] if task == "target" else []
            table(rows, prefix, ["base", "base_16"] + TOOLS, pick, extra)
            print("tools' picks (cut, finetune rate): "
                  + "; ".join(f"seed {r['seed']}: {r[prefix + '_picks'][0]}, {r[prefix + '_picks'][1]}" for r in rows) + "\n")
    scratch_pick = chosen(rows, "scanned", SCRATCH)
    print("### scanned, from random weights (test accuracy, %)\n")
    table(rows, "scanned", SCRATCH, scratch_pick)

    print("### Done-when\n")
    for backbone in ("tlrun", "torch"):
        prefix = f"target_{backbone}"
        ours = [r[f"{prefix}_{picks[prefix]}"][1] for r in rows]
        print(f"- target, {backbone}'s backbone: recommended ({LABELS[picks[prefix]]}) {mean_sd(ours)} against "
              f"the PyTorch reference's {mean_sd(reference)}: {paired(ours, reference)} points, paired by seed; "
              f"{paired(ours, reference_16)} against the reference with a finetune of 16 epochs.")
    scratch = [r[f"scanned_{scratch_pick}"][1] for r in rows]
    for backbone in ("tlrun", "torch"):
        prefix = f"scanned_{backbone}"
        ours = [r[f"{prefix}_{picks[prefix]}"][1] for r in rows]
        print(f"- scanned, {backbone}'s backbone: recommended ({LABELS[picks[prefix]]}) {mean_sd(ours)} against "
              f"scratch's best on dev ({LABELS[scratch_pick]}) {mean_sd(scratch)}: {paired(ours, scratch)} points.")
    print(f"- (PyTorch's scratch on the plain target, for scale: {mean_sd(reference_scratch)}.)")


if __name__ == "__main__":
    main()
