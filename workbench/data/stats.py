"""Statistics of a `DatasetIndex`, computed from the listing alone (no image is decoded).

Shot bands follow the long-tail literature (Liu et al. 2019, "Large-scale long-tailed
recognition in an open world"): many-shot classes have more than 100 training images, medium-shot
20 to 100, few-shot fewer than 20.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from workbench.data.index import DatasetIndex

# band -> (lowest, highest) training images per class, inclusive; None: no upper bound
SHOT_BANDS: dict[str, tuple[int, int | None]] = {
    "many": (101, None),
    "medium": (20, 100),
    "few": (0, 19),
}
# Problem kinds that make an image unusable for training (set by the checks).
UNUSABLE_KINDS = frozenset({"corrupt", "unreadable", "too_large", "missing_file"})


def shot_band(count: int) -> str:
    """The band of a class with `count` training images: "many", "medium" or "few"."""
    for band, (low, high) in SHOT_BANDS.items():
        if count >= low and (high is None or count <= high):
            return band
    return "few"


def effective_number(counts: Sequence[int] | np.ndarray, beta: float) -> np.ndarray:
    """Effective number of samples per class, (1 - beta^n) / (1 - beta) (Cui et al. 2019).

    beta = 0 gives 1 for every non-empty class; beta -> 1 tends to n itself, which is what
    beta >= 1 returns.
    """
    n = np.asarray(counts, dtype=np.float64)
    if beta >= 1.0:
        return n
    return (1.0 - np.power(beta, n)) / (1.0 - beta)


def imbalance_ratio(counts: Sequence[int]) -> float:
    """Largest / smallest class count, over the non-empty classes.

    Empty classes are left out (a ratio of infinity says nothing; the scan lists them as
    "empty_class" problems instead). 1.0 for one non-empty class, 0.0 when all are empty.
    """
    nonzero = [c for c in counts if c > 0]
    if not nonzero:
        return 0.0
    return max(nonzero) / min(nonzero)


@dataclass
class DatasetStats:
    """What the histogram, the advisor and `workbench scan` show about a dataset."""

    class_counts: dict[str, dict[str, int]]  # split -> class name -> images
    training_split: str
    imbalance_ratio: float
    bands: dict[str, list[str]]  # band -> class names (training split; empty classes are "few")
    images_per_class: dict[str, float]  # "min", "median", "max" over the training split
    split_counts: dict[str, int] = field(default_factory=dict)
    num_images: int = 0
    num_classes: int = 0

    def train_counts(self) -> dict[str, int]:
        """Images per class in the training split."""
        return self.class_counts.get(self.training_split, {})

    def band_of(self, class_name: str) -> str:
        """The shot band of one class."""
        return shot_band(self.train_counts().get(class_name, 0))


def dataset_stats(index: DatasetIndex) -> DatasetStats:
    """Class counts per split, imbalance ratio, shot bands and images per class."""
    training = index.training_split()
    per_split = {split: index.class_counts(split) for split in index.split_names()}
    train = per_split.get(training, {name: 0 for name in index.class_names})
    counts = list(train.values())
    bands: dict[str, list[str]] = {band: [] for band in SHOT_BANDS}
    for name, count in train.items():
        bands[shot_band(count)].append(name)
    ipc = {"min": 0.0, "median": 0.0, "max": 0.0}
    if counts:
        ipc = {"min": float(min(counts)), "median": float(np.median(counts)),
               "max": float(max(counts))}
    return DatasetStats(
        class_counts=per_split, training_split=training,
        imbalance_ratio=imbalance_ratio(counts), bands=bands, images_per_class=ipc,
        split_counts=index.split_counts(), num_images=len(index),
        num_classes=index.num_classes,
    )


def unusable_reason(index: DatasetIndex) -> str | None:
    """Why the dataset cannot train a classifier, in one line; None when it can.

    Images the checks found unusable (corrupt, unreadable, too large) do not count.
    """
    bad = {p.path for p in index.problems if p.kind in UNUSABLE_KINDS}
    training = index.training_split()
    usable = {
        index.labels[i] for i in index.indices(training) if index.paths[i] not in bad
    }
    if not usable:
        return f"{index.root}: no usable training images (all are corrupt or unreadable)"
    if len(usable) < 2:
        name = index.class_names[next(iter(usable))]
        return (f"{index.root}: only one class with usable training images ('{name}'); "
                "a classifier needs at least two")
    return None


def typical_image_side(index: DatasetIndex, sample: int = 32, seed: int = 0) -> int | None:
    """The median shorter side, in pixels, of a seeded sample of training images (None: none
    readable).

    Only the files' headers are read (PIL opens lazily), so this takes milliseconds; it tells
    the run plan whether the weights' 224 px would just upscale small images.
    """
    import os
    import random

    from PIL import Image, UnidentifiedImageError

    train = index.indices(index.training_split())
    picked = random.Random(seed).sample(train, min(sample, len(train)))
    sides = []
    for i in picked:
        path = index.paths[i]
        if not os.path.isfile(path):  # never open a FIFO or a device named like an image
            continue
        try:
            with Image.open(path) as img:
                sides.append(min(img.size))
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            continue
    return int(np.median(sides)) if sides else None
