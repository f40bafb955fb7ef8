"""Class weights for the loss: none, inverse frequency, inverse square root, effective number.

Weights are normalised so they average 1 over the classes that have training images; the loss
scale (and so a good learning rate) then does not depend on the weighting. A class without
training images gets weight 0: it never appears as a target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from workbench.data.stats import effective_number
from workbench.errors import UserError


def class_weights(counts: Sequence[int], mode: str, beta: float = 0.999) -> torch.Tensor | None:
    """Per-class loss weights (float32) for `mode`, or None for "none".

    "inverse": 1/n; "inverse_sqrt": 1/sqrt(n); "effective_number": (1 - beta) / (1 - beta^n), the
    class-balanced weighting of Cui et al. (CVPR 2019).
    """
    if mode == "none":
        return None
    n = np.asarray(counts, dtype=np.float64)
    present = n > 0
    if not present.any():
        raise UserError("the training split has no images, so no class weights can be computed")
    raw = np.zeros_like(n)
    if mode == "inverse":
        raw[present] = 1.0 / n[present]
    elif mode == "inverse_sqrt":
        raw[present] = 1.0 / np.sqrt(n[present])
    elif mode == "effective_number":
        raw[present] = 1.0 / np.asarray(effective_number(n[present], beta), dtype=np.float64)
    else:
        raise UserError(f"unknown loss weighting {mode!r}")
    raw[present] /= raw[present].mean()
    return torch.tensor(raw, dtype=torch.float32)


def build_loss(
    weights: torch.Tensor | None, label_smoothing: float = 0.0
) -> torch.nn.CrossEntropyLoss:
    """Cross-entropy with optional class weights and label smoothing."""
    return torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing)
