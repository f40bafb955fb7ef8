"""Augmentation of training batches: MixUp / CutMix in the loader, and a preview of a batch.

The per-image presets (crops, flips, TrivialAugmentWide, erasing) are part of the plan's training
transform (`workbench.models.transforms`). Mixing works on whole batches, so it lives in the
training loader's `collate_fn` (`batch_collate`): the engine's loop is unchanged, and the labels
it receives become class probabilities, which `torch.nn.functional.cross_entropy` (and so every
loss of `workbench.train.losses`) accepts as targets.

`iter_batch_preview` draws one augmented batch of the current plan for the Train tab's "show a
batch" grid: decoded in the caller's worker thread, never on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workbench.config import Augment, RunConfig
from workbench.data.index import DatasetIndex
from workbench.data.torch_dataset import collate_skip_bad

PREVIEW_IMAGES = 16  # a 4 x 4 grid


class BatchMixer:
    """A loader's `collate_fn`: collate the good items (`collate_skip_bad`), then mix the batch
    with MixUp (Zhang et al. 2018) or CutMix (Yun et al. 2019), one of them per batch when both
    are on. Labels come out as class probabilities (float, batch x classes).

    A class (not a closure) so that loader worker processes can pickle it.
    """

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0) -> None:
        from torchvision.transforms import v2

        mixers = []
        if mixup > 0:
            mixers.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
        if cutmix > 0:
            mixers.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
        if not mixers:
            raise ValueError("BatchMixer needs mixup or cutmix above 0")
        self.mix = mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)

    def __call__(self, batch: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, int]:
        images, labels, skipped = collate_skip_bad(batch)
        if len(labels) == 0:
            return images, labels, skipped
        images, labels = self.mix(images, labels)
        return images, labels, skipped


def batch_collate(config: RunConfig, num_classes: int) -> BatchMixer | None:
    """The training loader's `collate_fn` for `config`: a `BatchMixer` when MixUp or CutMix is
    on, else None (the loader's default, `collate_skip_bad`)."""
    if config.data.mixup <= 0 and config.data.cutmix <= 0:
        return None
    return BatchMixer(num_classes, config.data.mixup, config.data.cutmix)


def describe(config: RunConfig) -> str:
    """The training recipe's augmentation in a few words, e.g. "standard, MixUp 0.2"."""
    parts = [] if config.data.augment == Augment.NONE else [str(config.data.augment)]
    if config.data.mixup > 0:
        parts.append(f"MixUp {config.data.mixup:g}")
    if config.data.cutmix > 0:
        parts.append(f"CutMix {config.data.cutmix:g}")
    if config.train.label_smoothing > 0:
        parts.append(f"label smoothing {config.train.label_smoothing:g}")
    return ", ".join(parts) or "no augmentation"


# -- "show a batch" ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchPreview:
    """Augmented training images as the model sees them, de-normalized for display.

    `images`: uint8, N x H x W x 3; `captions`: per image its label, or the two largest shares
    of a mixed label ("3 (60%) · 7 (40%)"); `recipe`: `describe(config)`.
    """

    images: np.ndarray
    captions: tuple[str, ...]
    recipe: str


def iter_batch_preview(plan: Any, index: DatasetIndex, count: int = PREVIEW_IMAGES,
                       seed: int | None = None) -> Iterator[BatchPreview]:
    """Draw `count` random training images of `index` through `plan`'s training transform and
    batch mixing; yields one `BatchPreview` (a generator, like the core's other long work)."""
    from workbench.data.torch_dataset import ImageDataset
    from workbench.models.transforms import preset_values

    train_idx = index.indices(index.training_split())
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(train_idx), size=min(count, len(train_idx)), replace=False)
    dataset = ImageDataset(index, [train_idx[i] for i in chosen], plan.transform(train=True))
    collate = batch_collate(plan.config, len(index.class_names)) or collate_skip_bad
    with torch.random.fork_rng():  # the preview must not move a later run's random stream
        torch.manual_seed(int(rng.integers(2**31)))
        images, labels, _ = collate([dataset[i] for i in range(len(dataset))])
    values = preset_values(plan.preset)
    yield BatchPreview(_displayable(images, values["mean"], values["std"]),
                       tuple(_caption(row, index.class_names) for row in labels),
                       describe(plan.config))


def _displayable(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]
                 ) -> np.ndarray:
    """Normalized N x 3 x H x W floats -> uint8 N x H x W x 3."""
    if images.numel() == 0:
        return np.zeros((0, 1, 1, 3), dtype=np.uint8)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    pixels = (images * s + m).clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


def _caption(label: torch.Tensor, class_names: Sequence[str]) -> str:
    """A class name, or the two largest shares of a mixed label."""
    if label.dim() == 0:
        return str(class_names[int(label)])
    shares, classes = label.topk(min(2, label.numel()))
    if shares[1] < 0.005:
        return str(class_names[int(classes[0])])
    return " · ".join(f"{class_names[int(c)]} ({float(w):.0%})"
                      for w, c in zip(shares, classes, strict=True))
