"""Evaluation of a finished run on its val or test split: what `workbench evaluate` prints and
the Results tab shows.

`iter_evaluate(run_dir, split, checkpoint)` reads the per-image predictions the run stored (the
engine writes the val and test predictions when training ends) or, for an older run or another
checkpoint, computes them with the run's own classifier and preprocessing (`load_trained`) and
stores them; it then returns an `Evaluation`: loss, top-1, balanced accuracy, per-class
precision / recall / F1, shot-band accuracy, the confusion matrix, calibration and top losses.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data.index import DatasetIndex
from workbench.errors import UserError
from workbench.results.calibration import Reliability, reliability
from workbench.train.metrics import EvalMetrics, compute_metrics
from workbench.train.predictions import (
    Predictions,
    assemble,
    load_predictions,
    predictions_file,
    save_predictions,
)

SPLITS = ("val", "test")
TOP_LOSSES = 24


@dataclass(frozen=True)
class EvalProgress:
    """Images classified so far while predictions are computed."""

    done: int
    total: int


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a run: the predictions and everything measured from them."""

    run_dir: Path
    predictions: Predictions
    metrics: EvalMetrics
    precision: list[float | None]  # per class, in `predictions.class_names` order
    recall: list[float | None]
    f1: list[float | None]
    support: list[int]
    calibration: Reliability
    # computed once (in the worker): the GUI browses without redoing an [N, K] softmax per click
    probs: np.ndarray  # [N, K] float32
    losses: np.ndarray  # [N] float64

    @property
    def class_names(self) -> list[str]:
        """The model's classes."""
        return self.predictions.class_names

    def top_losses(self, n: int = TOP_LOSSES) -> list[dict[str, Any]]:
        """The `n` images with the highest loss (least probability on the true class) first."""
        p, losses, probs = self.predictions, self.losses, self.probs
        rows = []
        for i in np.argsort(-losses, kind="stable")[:n]:
            pred = int(probs[i].argmax())
            rows.append({"path": p.paths[i], "row": int(i), "true": p.class_names[p.labels[i]],
                         "predicted": p.class_names[pred], "prob": float(probs[i, pred]),
                         "true_prob": float(probs[i, p.labels[i]]), "loss": float(losses[i])})
        return rows

    def rows_of_cell(self, true: int, predicted: int) -> list[int]:
        """Rows of the images of class `true` predicted as `predicted`, surest first."""
        probs = self.probs
        pred = probs.argmax(axis=1)
        rows = np.flatnonzero((self.predictions.labels == true) & (pred == predicted))
        return [int(r) for r in rows[np.argsort(-probs[rows, predicted], kind="stable")]]

    def to_json(self) -> dict[str, Any]:
        """The JSON `workbench evaluate --json` prints."""
        m, p = self.metrics, self.predictions
        per_class = [{"class": name, "precision": self.precision[c], "recall": self.recall[c],
                      "f1": self.f1[c], "support": self.support[c],
                      "train_count": p.train_counts[c], "band": m.bands.get(name)}
                     for c, name in enumerate(p.class_names)]
        return {"run_dir": str(self.run_dir), "split": p.split, "checkpoint": p.checkpoint,
                "num_images": len(p), "loss": m.loss, "top1": m.top1,
                "balanced_accuracy": m.balanced_acc, "shot_accuracy": m.shot_acc,
                "per_class": per_class,
                "confusion": {"classes": p.class_names, "matrix": m.confusion},
                "calibration": self.calibration.to_json(), "top_losses": self.top_losses(),
                "notes": list(p.notes),
                "predictions_file": str(predictions_file(self.run_dir, p.split, p.checkpoint))}


def evaluation_of(run_dir: str | Path, preds: Predictions) -> Evaluation:
    """Everything measured from stored predictions (no model, no image decoded)."""
    probs, losses = preds.probabilities(), preds.losses()
    y_pred = probs.argmax(axis=1) if len(preds) else np.zeros(0, np.int64)
    metrics = compute_metrics(preds.labels, y_pred, float(losses.mean()) if len(preds)
                              else float("nan"), preds.class_names, preds.train_counts)
    cm = np.asarray(metrics.confusion)
    support, predicted, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    precision = [float(h / n) if n else None for h, n in zip(hits, predicted, strict=True)]
    recall = [float(h / n) if n else None for h, n in zip(hits, support, strict=True)]
    f1 = [None if p is None or r is None else (0.0 if p + r == 0 else 2 * p * r / (p + r))
          for p, r in zip(precision, recall, strict=True)]
    return Evaluation(Path(run_dir), preds, metrics, precision, recall, f1,
                      [int(s) for s in support], reliability(probs, preds.labels),
                      probs.astype(np.float32), losses)


def iter_evaluate(run_dir: str | Path, split: str = "val", checkpoint: str = "best", *,
                  recompute: bool = False, stop: threading.Event | None = None,
                  ) -> Generator[EvalProgress, None, Evaluation | None]:
    """Yield progress while predictions are computed (none when stored); return the evaluation
    (None when stopped)."""
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if not recompute and predictions_file(run_dir, split, checkpoint).is_file():
        return evaluation_of(run_dir, load_predictions(run_dir, split, checkpoint))
    preds = yield from _compute(run_dir, split, checkpoint, stop)
    if preds is None:
        return None
    save_predictions(run_dir, preds)
    return evaluation_of(run_dir, preds)


def evaluate_run(run_dir: str | Path, split: str = "val", checkpoint: str = "best",
                 recompute: bool = False) -> Evaluation:
    """`iter_evaluate` run to the end."""
    gen = iter_evaluate(run_dir, split, checkpoint, recompute=recompute)
    while True:
        try:
            next(gen)
        except StopIteration as end:
            return end.value


def _compute(run_dir: str | Path, split: str, checkpoint: str, stop: threading.Event | None
             ) -> Generator[EvalProgress, None, Predictions | None]:
    import torch

    from workbench.devices import resolve_device
    from workbench.train.predictions import iter_logits
    from workbench.train.setup import load_index
    from workbench.train.trained import load_trained

    device = resolve_device("auto")
    trained = load_trained(run_dir, checkpoint, device=device)
    index = load_index(trained.plan.config, None)
    indices, notes = _usable_images(index, split, trained.class_names)
    counts = index.class_counts(index.training_split())
    train_counts = [counts.get(name, 0) for name in trained.class_names]
    rows = []
    yield EvalProgress(0, len(indices))
    for done, total, positions, logits in iter_logits(
            trained.classifier, index, indices, trained.transform(), device=torch.device(device),
            batch_size=trained.plan.batch_size, stop=stop):
        rows.append((positions, logits))
        yield EvalProgress(done, total)
    if stop is not None and stop.is_set():
        return None
    return assemble(split, checkpoint, trained.class_names, index, indices, rows, train_counts,
                    notes)


def _usable_images(index: DatasetIndex, split: str,
                   model_classes: list[str]) -> tuple[list[int], list[str]]:
    """The split's images whose class the model knows, and a note per class it does not."""
    if split not in index.split_names():
        raise UserError(f"the dataset {index.root} has no {split} split")
    known = set(model_classes)
    indices: list[int] = []
    unknown: dict[str, int] = {}
    for i in index.indices(split):
        name = index.class_names[index.labels[i]]
        if name in known:
            indices.append(i)
        else:
            unknown[name] = unknown.get(name, 0) + 1
    notes = [f"class '{name}' ({n} images) is not one the model was trained on: left out"
             for name, n in sorted(unknown.items())]
    if not indices:
        raise UserError(f"none of the {split} images belongs to a class the model knows "
                        "(were the classes renamed?)")
    return indices, notes


def iter_evaluation_events(run_dir: str | Path, split: str = "val", checkpoint: str = "best",
                           stop: threading.Event | None = None
                           ) -> Generator[EvalProgress | Evaluation, None, None]:
    """`iter_evaluate` for a GUI worker: the progress, then the `Evaluation` itself as the last
    event (nothing when stopped)."""
    result = yield from iter_evaluate(run_dir, split, checkpoint, stop=stop)
    if result is not None:
        yield result
