"""Typed events yielded by the training engine.

The GUI worker turns them into signals, the CLI prints them, and the run directory writes each one
as a line of `metrics.jsonl` (`to_dict()`: the fields, an `"event"` key and a timestamp).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.train.metrics import EvalMetrics


@dataclass(frozen=True)
class Event:
    """Base of every engine event; `time` is when it was created (seconds since the epoch)."""

    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: `{"event": "BatchDone", "time": ..., <fields>}`."""
        values = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"event": type(self).__name__, **values}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


@dataclass(frozen=True)
class RunStarted(Event):
    """Model and data are ready; `epochs` is the total, counting epochs done before a resume."""

    run_dir: str
    device: str
    num_train: int
    num_val: int
    epochs: int
    steps_per_epoch: int
    start_epoch: int = 0  # epochs already done (a resumed run)
    fast_path: bool = False  # the head trains on cached features of a frozen backbone


@dataclass(frozen=True)
class FeaturesProgress(Event):
    """Pooled features of the frozen backbone being computed (or found in the cache)."""

    split: str
    done: int
    total: int
    cached: bool = False


@dataclass(frozen=True)
class EpochStarted(Event):
    """An epoch begins (epochs count from 1)."""

    epoch: int


@dataclass(frozen=True)
class BatchDone(Event):
    """One optimisation step; `step` counts from 1 over the whole run."""

    epoch: int
    step: int
    total_steps: int
    loss: float
    lrs: dict[str, float]
    images_per_s: float
    gpu_mem_mb: float = 0.0
    # failed image loads so far in this run (skipped, not fatal): an unreadable file counts once
    # per epoch it is drawn in
    skipped_images: int = 0


@dataclass(frozen=True)
class EvalDone(Event):
    """Validation metrics at the end of an epoch."""

    epoch: int
    metrics: EvalMetrics


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """`checkpoints/last.pt` (and `best.pt` when `best`) was written."""

    path: str
    best: bool


@dataclass(frozen=True)
class Paused(Event):
    """Training is blocked between batches until resumed or stopped."""

    step: int = 0


@dataclass(frozen=True)
class Resumed(Event):
    """Training continues after a pause."""

    step: int = 0


@dataclass(frozen=True)
class Finished(Event):
    """The run ended as planned: every epoch ran, or early stopping ended it (`note` says why);
    `best_metric` is the best validation balanced accuracy."""

    run_dir: str
    best_metric: float
    note: str = ""  # why the run ended before its last epoch ("" when every epoch ran)


@dataclass(frozen=True)
class Stopped(Event):
    """The user stopped the run; the last completed epoch's checkpoint stays resumable."""

    run_dir: str


@dataclass(frozen=True)
class Failed(Event):
    """The run ended with an error; `user_error` marks bad input (the CLI exits 2) vs a bug."""

    message: str
    user_error: bool = False


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (RunStarted, FeaturesProgress, EpochStarted, BatchDone, EvalDone,
                                  CheckpointSaved, Paused, Resumed, Finished, Stopped, Failed)
}


def event_from_dict(record: dict[str, Any]) -> Event | None:
    """The typed event of one metrics.jsonl line (`to_dict()`'s inverse); None when unknown."""
    cls = EVENT_TYPES.get(str(record.get("event")))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in record.items() if k in names}
    if cls is EvalDone and isinstance(values.get("metrics"), dict):
        known = {f.name for f in dataclasses.fields(EvalMetrics)}
        values["metrics"] = EvalMetrics(**{k: v for k, v in values["metrics"].items()
                                           if k in known})
    try:
        return cls(**values)
    except TypeError:  # a line written by another version, missing a field
        return None
