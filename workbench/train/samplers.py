"""Re-sampling for label imbalance: none, class-balanced, square-root, via WeightedRandomSampler.

With per-image weight 1/n_c every class is drawn equally often ("class_balanced"); with
1/sqrt(n_c) a class is drawn in proportion to sqrt(n_c) ("sqrt", Mahajan et al. 2018), a milder
correction that over-fits the tail less.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from workbench.errors import UserError


def sample_weights(labels: Sequence[int], mode: str) -> torch.Tensor | None:
    """Per-image sampling weights (float64) for `mode`, or None for "none" (plain shuffling)."""
    if mode == "none":
        return None
    labels_arr = np.asarray(labels, dtype=np.int64)
    if labels_arr.size == 0:
        raise UserError("the training split has no images to sample from")
    counts = np.bincount(labels_arr).astype(np.float64)
    if mode == "class_balanced":
        per_class = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    elif mode == "sqrt":
        per_class = np.divide(1.0, np.sqrt(counts), out=np.zeros_like(counts), where=counts > 0)
    else:
        raise UserError(f"unknown sampling {mode!r}")
    return torch.as_tensor(per_class[labels_arr], dtype=torch.float64)


def build_sampler(
    labels: Sequence[int], mode: str, generator: torch.Generator | None = None
) -> WeightedRandomSampler | None:
    """A sampler drawing one epoch's worth of images (with replacement), or None for "none"."""
    weights = sample_weights(labels, mode)
    if weights is None:
        return None
    return WeightedRandomSampler(weights, num_samples=len(weights), replacement=True,
                                 generator=generator)
