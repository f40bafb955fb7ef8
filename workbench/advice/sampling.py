"""What the advisor's measurements share: the stratified sample, its loader, relaying progress.

Used by the one-pass measurement (`advisor.py`) and by the trials (`trials.py`), which must
sample and load images the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from workbench.data.index import DatasetIndex
from workbench.plan import RunPlan

BATCH_SIZE = 32


def stratified_sample(labels: list[int], size: int, seed: int = 0, floor: int = 3) -> list[int]:
    """Positions of a seeded sample of about `size` items, proportional to each label's share.

    Every label keeps at least `floor` items (or all it has), so tail classes still reach the
    linear probe's folds; the largest remainders fill the rest.
    """
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    if len(labels_arr) <= size:
        return sorted(range(len(labels_arr)))
    classes, counts = np.unique(labels_arr, return_counts=True)
    quota = _quotas(counts, size, floor)
    picked: list[int] = []
    for cls, q in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels_arr == cls)
        picked.extend(rng.choice(members, size=q, replace=False).tolist())
    return sorted(picked)


def _quotas(counts: np.ndarray, size: int, floor: int) -> np.ndarray:
    exact = counts * size / counts.sum()
    quota = np.minimum(counts, np.maximum(np.floor(exact).astype(int), floor))
    while quota.sum() > size:  # the floors overshot: take back from the largest quotas
        quota[np.argmax(quota)] -= 1
    for i in np.argsort(-(exact - np.floor(exact))):  # largest remainders fill the rest
        if quota.sum() >= size:
            break
        quota[i] = min(counts[i], quota[i] + 1)
    return quota


def sample_loader(index: DatasetIndex, indices: list[int], plan: RunPlan, input_size: int
            ) -> Any:
    """A loader over `indices` with the plan's preprocessing at `input_size` (no shuffling)."""
    from torch.utils.data import DataLoader

    from workbench.data.torch_dataset import ImageDataset, collate_skip_bad
    from workbench.devices import choose_num_workers
    from workbench.models.transforms import build_transform

    transform = build_transform(plan.preset, input_size=input_size, train=False)
    dataset = ImageDataset(index, indices, transform)
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=False,
                      num_workers=choose_num_workers(plan.config.data.num_workers),
                      collate_fn=collate_skip_bad)


def relay(events: Iterator, result_type: type):
    """Pass progress events on; return the one event of `result_type` (None if none came)."""
    result = None
    for event in events:
        if isinstance(event, result_type):
            result = event
        else:
            yield event
    return result
