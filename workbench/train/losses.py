"""Class weights for the loss: none, inverse frequency, inverse square root, effective number.

Weights are normalised so they average 1 over the classes that have training images; the loss
scale (and so a good learning rate) then does not depend on the weighting. A class without
training images gets weight 0: it never appears as a target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from workbench.config import Loss, TrainConfig
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
    """Cross-entropy with optional class weights and label smoothing; its targets may be class
    indices or class probabilities (MixUp / CutMix batches)."""
    return torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing)


# -- margin losses against label imbalance ------------------------------------------------------
DRW_BETA = 0.9999  # the deferred re-weighting's effective-number beta (Cao et al. 2019)


def log_prior(counts: Sequence[int]) -> torch.Tensor:
    """log(n_c / N) per class (float32); an empty class counts as half an image, so the prior
    stays finite and such a class is pushed hardest, as the rarest."""
    n = np.maximum(np.asarray(counts, dtype=np.float64), 0.5)
    return torch.tensor(np.log(n / n.sum()), dtype=torch.float32)


class LogitAdjustedLoss(torch.nn.Module):
    """Cross-entropy on `logits + tau * log prior` (Menon et al., ICLR 2021).

    Training with the prior added makes the logits themselves balanced: the rare classes need a
    larger raw margin to win, and at test time the plain logits are used.
    """

    def __init__(self, counts: Sequence[int], tau: float = 1.0,
                 weights: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("offset", tau * log_prior(counts))
        self.register_buffer("weight", weights)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mean loss of a batch."""
        return torch.nn.functional.cross_entropy(
            logits + self.offset.to(logits.dtype), target, weight=self.weight,
            label_smoothing=self.label_smoothing)


class LDAMLoss(torch.nn.Module):
    """Label-distribution-aware margin loss with deferred re-weighting (Cao et al., NeurIPS 2019).

    The true class's logit is lowered by a margin proportional to n_c^(-1/4), the rarest class's
    being `max_margin`. From `set_epoch` past `drw_start` of the epochs, the loss weighs classes
    by the inverse effective number (beta 0.9999): the features are learned first, re-weighting
    only tunes the decision boundary afterwards.
    """

    def __init__(self, counts: Sequence[int], max_margin: float = 0.5, drw_start: float = 0.8,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
        margins = 1.0 / np.power(n, 0.25)
        self.register_buffer("margins", torch.tensor(margins * (max_margin / margins.max()),
                                                     dtype=torch.float32))
        self.register_buffer("drw_weights", class_weights(counts, "effective_number", DRW_BETA))
        self.drw_start = drw_start
        self.reweighting = drw_start <= 0.0
        self.label_smoothing = label_smoothing

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Switch re-weighting on from epoch `int(drw_start * epochs) + 1` (1-based): with 5
        epochs and 0.8, the last one."""
        self.reweighting = (epoch - 1) >= int(self.drw_start * epochs)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mean loss of a batch; `target` holds class indices, or class probabilities
        (MixUp / CutMix), whose margins are shared out in proportion."""
        margins = self.margins.to(logits.dtype)
        if target.dim() == 2:  # soft targets: each class's margin weighed by its share
            shift = target.to(logits.dtype) * margins
        else:
            shift = torch.zeros_like(logits)
            shift.scatter_(1, target[:, None], margins[target][:, None])
        weight = self.drw_weights.to(logits.device) if self.reweighting else None
        return torch.nn.functional.cross_entropy(logits - shift, target, weight=weight,
                                                 label_smoothing=self.label_smoothing)


def build_criterion(train: TrainConfig, counts: Sequence[int],
                    weights: torch.Tensor | None) -> torch.nn.Module:
    """The loss `train.loss` names, for a training split with `counts` images per class.

    `weights` (from `data.loss_weighting`) apply to cross-entropy and the logit-adjusted loss;
    LDAM-DRW brings its own deferred weights.
    """
    if train.loss == Loss.LOGIT_ADJUSTED:
        return LogitAdjustedLoss(counts, train.loss_tau, weights, train.label_smoothing)
    if train.loss == Loss.LDAM_DRW:
        return LDAMLoss(counts, train.ldam_margin, train.drw_start, train.label_smoothing)
    return build_loss(weights, train.label_smoothing)
