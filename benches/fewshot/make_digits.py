#!/usr/bin/env python3
"""Export scikit-learn's bundled digits (offline) as PNG image folders for the few-shot benchmark.

Layout, under benches/fewshot/data/ (or --out):

    source/train/d0..d4/NNNN.png   source task: digits 0-4, 80% of each class (stratified)
    source/valid/d0..d4/NNNN.png   the other 20%
    target/train/d5..d9/NNNN.png   target few-shot task: 10 images per class of digits 5-9
    target/valid/d5..d9/NNNN.png   every other image of digits 5-9

Images are RGB PNGs (the grey value replicated to the three channels), pixel values 0..16 scaled
to 0..255, upscaled from 8x8 to 28x28 with PIL's bilinear filter. The file name is the image's
index in `load_digits()`, so the same image keeps the same name on every machine.

Everything random comes from numpy.random.RandomState(--seed, default 0), so the split is the
same on every run.
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

SOURCE_DIGITS = [0, 1, 2, 3, 4]
TARGET_DIGITS = [5, 6, 7, 8, 9]
SHOTS = 10  # target train images per class
VALID_FRACTION = 0.2  # source task
SIZE = 28


def to_png(pixels8x8: np.ndarray) -> Image.Image:
    grey = np.clip(np.rint(pixels8x8 * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    image = Image.fromarray(grey).resize((SIZE, SIZE), Image.BILINEAR)
    return image.convert("RGB")


def write(root: Path, digit: int, indices, images) -> None:
    folder = root / f"d{digit}"
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        to_png(images[index]).save(folder / f"{index:04d}.png")


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=here / "data", help="output folder (default: benches/fewshot/data)")
    parser.add_argument("--seed", type=int, default=0, help="numpy RandomState seed for the splits (default 0)")
    args = parser.parse_args()

    digits = load_digits()
    images, labels = digits.images, digits.target
    rng = np.random.RandomState(args.seed)

    for task in ("source", "target"):
        shutil.rmtree(args.out / task, ignore_errors=True)

    counts = {}
    # Source task: a stratified 80/20 split of each class.
    for digit in SOURCE_DIGITS:
        indices = np.flatnonzero(labels == digit)
        order = rng.permutation(indices)
        n_valid = int(round(len(order) * VALID_FRACTION))
        valid, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
        write(args.out / "source" / "train", digit, train, images)
        write(args.out / "source" / "valid", digit, valid, images)
        counts[("source", "train", digit)] = len(train)
        counts[("source", "valid", digit)] = len(valid)
    # Target task: SHOTS images per class to train on, the rest to validate on.
    for digit in TARGET_DIGITS:
        indices = np.flatnonzero(labels == digit)
        order = rng.permutation(indices)
        train, valid = np.sort(order[:SHOTS]), np.sort(order[SHOTS:])
        write(args.out / "target" / "train", digit, train, images)
        write(args.out / "target" / "valid", digit, valid, images)
        counts[("target", "train", digit)] = len(train)
        counts[("target", "valid", digit)] = len(valid)

    print(f"wrote {args.out} ({SIZE}x{SIZE} RGB PNGs, split seed {args.seed})")
    for task, task_digits in (("source", SOURCE_DIGITS), ("target", TARGET_DIGITS)):
        for split in ("train", "valid"):
            per_class = [counts[(task, split, d)] for d in task_digits]
            detail = " ".join(f"d{d}:{n}" for d, n in zip(task_digits, per_class))
            print(f"  {task}/{split:5s} {sum(per_class):4d} images  ({detail})")


if __name__ == "__main__":
    main()
