"""`metrics.csv`: one flat row per epoch, derived from the engine's events.

metrics.jsonl keeps every event; a spreadsheet, pandas or a quick `column -t` wants one row per
epoch with fixed columns. `EpochTable` folds the events of a run into those rows as they come
(the run directory appends each row when the epoch's checkpoint is saved) and rebuilds the whole
table from metrics.jsonl when a resumed run rewrites it. The columns never change order; a value
that does not apply (no validation images, no images of a shot band) is left empty.

No torch import: the run list reads run folders before torch is loaded.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

COLUMNS = ("epoch", "stage", "step", "train_loss", "val_loss", "val_acc", "val_balanced_acc",
           "val_many_shot_acc", "val_medium_shot_acc", "val_few_shot_acc", "lr",
           "images_per_s", "seconds", "best")
# "stage": "train" for an epoch of training, "crt" for the classifier re-training after the
# last epoch (same epoch number, no training columns), "fit" for a scikit-learn head.


class EpochTable:
    """Folds events (as `Event.to_dict()` dicts) into rows of `COLUMNS`."""

    def __init__(self) -> None:
        self._reset()
        self._last_epoch = 0  # the epoch of the last row written (cRT repeats it)

    def _reset(self) -> None:
        self._losses: list[float] = []
        self._rates: list[float] = []
        self._lr: float | None = None
        self._step: int | None = None
        self._started: float | None = None
        self._epoch = 0
        self._metrics: dict[str, Any] | None = None

    def add(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Take one event; returns the finished row when it closes an epoch (a checkpoint)."""
        kind = event.get("event")
        if kind == "EpochStarted":
            self._reset()
            self._epoch, self._started = int(event["epoch"]), float(event.get("time", 0.0))
        elif kind == "BatchDone":
            self._batch(event)
        elif kind == "EvalDone":
            self._metrics = event.get("metrics") or {}
        elif kind == "CheckpointSaved":
            return self._row(event)
        return None

    def _batch(self, event: dict[str, Any]) -> None:
        if event.get("loss") is not None:
            self._losses.append(float(event["loss"]))
        self._rates.append(float(event.get("images_per_s") or 0.0))
        lrs = event.get("lrs") or {}
        self._lr = lrs.get("head", next(iter(lrs.values()), None))
        self._step = int(event["step"])

    def _row(self, event: dict[str, Any]) -> dict[str, Any]:
        m = self._metrics or {}
        shots = m.get("shot_acc") or {}
        trained = bool(self._losses)
        stage = "train" if trained else ("crt" if self._epoch <= self._last_epoch else "fit")
        row = {
            "epoch": self._epoch or self._last_epoch, "stage": stage, "step": self._step,
            "train_loss": _mean(self._losses), "val_loss": m.get("loss"),
            "val_acc": m.get("top1"), "val_balanced_acc": m.get("balanced_acc"),
            "val_many_shot_acc": shots.get("many"), "val_medium_shot_acc": shots.get("medium"),
            "val_few_shot_acc": shots.get("few"), "lr": self._lr if trained else None,
            "images_per_s": _mean(self._rates),
            "seconds": (round(float(event.get("time", 0.0)) - self._started, 3)
                        if self._started is not None else None),
            "best": int(bool(event.get("best"))),
        }
        self._last_epoch = max(self._last_epoch, int(row["epoch"] or 0))
        self._losses, self._rates, self._metrics, self._started = [], [], None, None
        return row


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def csv_text(rows: Iterable[dict[str, Any]], header: bool) -> str:
    """Rows as CSV text (empty cells for None; floats as Python writes them)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None or (isinstance(v, float) and not math.isfinite(v))
                             else v) for k, v in row.items()})
    return out.getvalue()


def rewrite(file: Path, events: Iterable[dict[str, Any]]) -> EpochTable:
    """Write `file` afresh from recorded events (a resumed run); returns the table, ready to
    take the events that follow."""
    table = EpochTable()
    rows = [row for row in map(table.add, events) if row is not None]
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(csv_text(rows, header=True), encoding="utf-8")
    tmp.replace(file)
    return table
