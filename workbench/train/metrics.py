"""Validation metrics: loss, top-1, balanced accuracy, per-class and shot-band accuracy, confusion.

Shot bands follow the long-tail literature (Liu et al. 2019): a class is "many"-shot with more than
100 training images, "medium" with 20-100, "few" below 20; the band is decided by the TRAINING
count, and the band accuracy is the mean per-class accuracy of its classes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from workbench.data.stats import SHOT_BANDS, shot_band


@dataclass(frozen=True)
class EvalMetrics:
    """One evaluation. Accuracies are fractions in [0, 1]; None where there is nothing to measure.

    `per_class_acc` maps class name to accuracy (None for a class without validation images),
    `bands` maps class name to its shot band, `confusion[true][predicted]` counts images in the
    order of `per_class_acc`.
    """

    loss: float
    top1: float
    balanced_acc: float
    per_class_acc: dict[str, float | None]
    shot_acc: dict[str, float | None]
    confusion: list[list[int]]
    bands: dict[str, str] = field(default_factory=dict)
    num_images: int = 0


def compute_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    loss: float,
    class_names: list[str],
    train_counts: list[int],
) -> EvalMetrics:
    """Metrics from true and predicted labels; `train_counts[c]` decides each class's shot band."""
    return metrics_from_confusion(confusion_counts(y_true, y_pred, len(class_names)), loss,
                                  class_names, train_counts)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """`cm[true, predicted]` image counts for `n` classes."""
    # numpy rather than sklearn's confusion_matrix: the GUI imports this module (through the
    # events) at start-up, and sklearn.metrics takes about a second to import
    return np.bincount(np.asarray(y_true, dtype=np.int64) * n
                       + np.asarray(y_pred, dtype=np.int64), minlength=n * n).reshape(n, n)


def metrics_from_confusion(cm: np.ndarray, loss: float, class_names: list[str],
                           train_counts: list[int]) -> EvalMetrics:
    """Metrics from confusion counts (summed over processes, they equal one process's)."""
    n = len(class_names)
    support = cm.sum(axis=1)
    recall = [cm[c, c] / support[c] if support[c] else None for c in range(n)]
    measured = [r for r in recall if r is not None]
    bands = {name: shot_band(count) for name, count in zip(class_names, train_counts, strict=True)}
    shot_acc = {}
    for band in SHOT_BANDS:
        values = [r for r, name in zip(recall, class_names, strict=True)
                  if r is not None and bands[name] == band]
        shot_acc[band] = float(np.mean(values)) if values else None
    return EvalMetrics(
        loss=float(loss),
        top1=float(np.trace(cm) / max(1, cm.sum())),
        # mean per-class recall over classes present in the validation split (as sklearn's
        # balanced_accuracy_score), computed from the same confusion matrix
        balanced_acc=float(np.mean(measured)) if measured else 0.0,
        per_class_acc={name: (None if r is None else float(r))
                       for name, r in zip(class_names, recall, strict=True)},
        shot_acc=shot_acc,
        confusion=cm.astype(int).tolist(),
        bands=bands,
        num_images=int(cm.sum()),
    )


@torch.no_grad()
def evaluate(
    forward: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable,
    device: torch.device,
    class_names: list[str],
    train_counts: list[int],
    stop: threading.Event | None = None,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    reduce: Callable[[np.ndarray], np.ndarray] | None = None,
) -> EvalMetrics | None:
    """Run `forward` over `(images, labels, skipped)` batches; None when `stop` was set meanwhile.

    The loss is plain cross-entropy (no class weights, no smoothing) so runs compare fairly.
    `reduce` sums `[loss sum, confusion counts...]` over processes that each saw a share.
    """
    losses, truths, preds = [], [], []
    for images, labels, _skipped in batches:
        if stop is not None and stop.is_set():
            return None
        if len(labels) == 0:
            continue
        images = prepare(images) if prepare else images.to(device)
        logits = forward(images).float()
        labels = labels.to(device)
        losses.append(torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item())
        truths.append(labels.cpu().numpy())
        preds.append(logits.argmax(1).cpu().numpy())
    y_true = np.concatenate(truths) if truths else np.zeros(0, dtype=np.int64)
    y_pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    n = len(class_names)
    counts = np.concatenate([[sum(losses)], confusion_counts(y_true, y_pred, n).ravel()])
    if reduce is not None:
        counts = reduce(counts)
    cm = np.rint(counts[1:]).astype(np.int64).reshape(n, n)
    loss = counts[0] / cm.sum() if cm.sum() else math.nan
    return metrics_from_confusion(cm, loss, class_names, train_counts)
