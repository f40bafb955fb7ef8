"""A torch `Dataset` over a `DatasetIndex` that survives bad files mid-epoch.

A corrupt image found while training must not end a long run: `__getitem__` returns None for it
and `collate_skip_bad` drops such items from the batch and reports how many it dropped, so the
trainer can count and show them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate
from torchvision.transforms.v2 import functional as F

from workbench.data.images import ImageError, load_image
from workbench.data.index import DatasetIndex

Sample = tuple[torch.Tensor, int]


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """A float tensor in [0, 1], `[3, H, W]` (used when no transform is given)."""
    return F.to_dtype(F.to_image(img), torch.float32, scale=True)


class ImageDataset(Dataset):
    """The images of `index` at `indices`, loaded as RGB and passed through `transform`.

    Items are `(tensor, label)`, or None for a file that fails to load (see `collate_skip_bad`).
    """

    def __init__(
        self, index: DatasetIndex, indices: Sequence[int],
        transform: Callable[[Image.Image], Any] | None = None,
    ) -> None:
        self.paths = [index.paths[i] for i in indices]
        self.targets = [index.labels[i] for i in indices]  # for samplers and class weights
        self.classes = list(index.class_names)
        self.transform = transform or pil_to_tensor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Sample | None:
        try:
            img = load_image(self.paths[i])
        except ImageError:
            return None  # counted by collate_skip_bad; the checks list the file itself
        return self.transform(img), self.targets[i]


def collate_skip_bad(
    batch: Sequence[Sample | None],
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Collate the good items into `(images, labels)` and count the bad ones.

    When every item is bad, `images` is an empty tensor and `labels` an empty long tensor.
    """
    good = [item for item in batch if item is not None]
    skipped = len(batch) - len(good)
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images, labels = default_collate(good)
    return images, labels, skipped
