#!/usr/bin/env python3
"""Export scikit-learn's bundled digits (offline) as PNG image folders for the few-shot benchmark.

Layout, under benches/fewshot/data/ (or --out):

    source/train/d0..d4/NNNN.png   source task: digits 0-4, 80% of each class (stratified)
    source/valid/d0..d4/NNNN.png   the other 20%
    target/train/d5..d9/NNNN.png   target few-shot task: 10 images per class of digits 5-9
    target/valid/d5..d9/NNNN.png   every other image of digits 5-9
    target/dev, target/test        target/valid in two halves (alternate images of each class):
                                   options are chosen on dev and reported on test
    scanned/{train,valid,dev,test} the same target images as a scanner would see printed digits:
                                   dark ink on tinted paper, rotated, blurred, with sensor noise
                                   (a shifted target for the handwriting backbone)

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
from PIL import Image, ImageFilter
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


def scanned(image: Image.Image, rng: np.random.RandomState) -> Image.Image:
    """The digit as a scanned print: ink on tinted paper instead of light strokes on black, turned
    a little on the platen, softened by the optics and grainy from the sensor."""
    ink = image.convert("L").rotate(rng.uniform(-10.0, 10.0), resample=Image.BILINEAR)
    ink = np.asarray(ink.filter(ImageFilter.GaussianBlur(0.7)), dtype=np.float64)[..., None] / 255.0
    paper = np.array([0.93, 0.90, 0.80]) + rng.uniform(-0.03, 0.03, size=3)
    pen = np.array([0.15, 0.15, 0.25])
    pixels = paper * (1.0 - ink) + pen * ink + rng.normal(0.0, 0.04, size=ink.shape[:2] + (3,))
    return Image.fromarray(np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8), "RGB")


def write(root: Path, digit: int, indices, images, scan_seed=None) -> None:
    folder = root / f"d{digit}"
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        image = to_png(images[index])
        if scan_seed is not None:
            # A generator of the image's own, so that it scans the same in valid and dev or test,
            # and the splits' generator above is left as every earlier version used it.
            image = scanned(image, np.random.RandomState([scan_seed, index]))
        image.save(folder / f"{index:04d}.png")


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=here / "data", help="output folder (default: benches/fewshot/data)")
    parser.add_argument("--seed", type=int, default=0, help="numpy RandomState seed for the splits (default 0)")
    args = parser.parse_args()

    digits = load_digits()
    images, labels = digits.images, digits.target
    rng = np.random.RandomState(args.seed)

    for task in ("source", "target", "scanned"):
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
        splits = {"train": train, "valid": valid, "dev": valid[0::2], "test": valid[1::2]}
        for split, chosen in splits.items():
            write(args.out / "target" / split, digit, chosen, images)
            counts[("target", split, digit)] = len(chosen)
        for split, chosen in splits.items():
            write(args.out / "scanned" / split, digit, chosen, images, scan_seed=args.seed)
            counts[("scanned", split, digit)] = len(chosen)

    print(f"wrote {args.out} ({SIZE}x{SIZE} RGB PNGs, split seed {args.seed})")
    for task, task_digits in (("source", SOURCE_DIGITS), ("target", TARGET_DIGITS), ("scanned", TARGET_DIGITS)):
        for split in ("train", "valid") if task == "source" else ("train", "valid", "dev", "test"):
            per_class = [counts[(task, split, d)] for d in task_digits]
            detail = " ".join(f"d{d}:{n}" for d, n in zip(task_digits, per_class))
            print(f"  {task}/{split:5s} {sum(per_class):4d} images  ({detail})")


if __name__ == "__main__":
    main()
