"""Post-hoc logit adjustment (Menon et al., ICLR 2021): logits - tau * log prior.

A classifier trained on long-tailed data learns the label prior into its logits; subtracting
tau times the log of each class's training frequency removes it, trading a little head accuracy
for much tail accuracy. tau = 0 is the plain classifier, tau = 1 the Bayes-optimal correction
for balanced error. It needs no retraining: the Results tab applies it to the stored validation
logits as the slider moves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workbench.train.metrics import EvalMetrics, compute_metrics
from workbench.train.predictions import Predictions

TAU_RANGE = (0.0, 3.0)


def log_prior(train_counts: Sequence[int]) -> np.ndarray:
    """log(n_c / N) per class, an empty class counted as half an image (so it stays finite)."""
    from workbench.train.losses import log_prior as torch_log_prior

    return torch_log_prior(train_counts).numpy().astype(np.float64)


def adjust_logits(logits: np.ndarray, train_counts: Sequence[int], tau: float) -> np.ndarray:
    """`logits - tau * log prior` (float64)."""
    return np.asarray(logits, dtype=np.float64) - tau * log_prior(train_counts)


def adjusted_metrics(preds: Predictions, tau: float) -> EvalMetrics:
    """The metrics of `preds` after adjustment by `tau` (the loss is of the adjusted logits)."""
    z = adjust_logits(preds.logits, preds.train_counts, tau)
    shifted = z - z.max(axis=1, keepdims=True)
    losses = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(z)), preds.labels]
    loss = float(losses.mean()) if len(z) else float("nan")
    return compute_metrics(preds.labels, z.argmax(axis=1) if len(z) else z, loss,
                           preds.class_names, preds.train_counts)


def best_tau(preds: Predictions, taus: Sequence[float] | None = None) -> tuple[float, float]:
    """The tau with the highest balanced accuracy on `preds`, and that accuracy (ties: the
    smallest tau, the least change)."""
    grid = np.round(np.arange(TAU_RANGE[0], TAU_RANGE[1] + 1e-9, 0.1), 2) if taus is None else taus
    scores = [(adjusted_metrics(preds, float(t)).balanced_acc, -float(t)) for t in grid]
    acc, neg_tau = max(scores)
    return -neg_tau, acc
