"""Run progress: a bar over all steps with epoch, batch and the estimated time left."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QWidget

from workbench.train.events import (
    BatchDone,
    EpochStarted,
    EvalDone,
    Failed,
    FeaturesProgress,
    Finished,
    Paused,
    Resumed,
    RunStarted,
    Stopped,
)


def format_duration(seconds: float) -> str:
    """`1:02:03`, `2:03` or `0:05` for a duration in seconds."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(elapsed: float, steps_done: int, steps_left: int) -> float | None:
    """Time left at the average pace so far (evaluation included); None before any step."""
    if steps_done <= 0 or elapsed <= 0:
        return None
    return elapsed / steps_done * steps_left


def finished_text(best_metric: float, early: bool = False) -> str:
    """The line for a finished run (`early`: early stopping ended it); no number when none was
    measured (the engine's -1 means no validation accuracy: no val images, or no epoch
    evaluated)."""
    finished = "Finished early" if early else "Finished"
    if not 0.0 <= best_metric <= 1.0:  # also NaN
        return f"{finished} (no validation accuracy was measured)"
    return f"{finished}: best balanced accuracy {100 * best_metric:.1f}%"


class ProgressView(QWidget):
    """The progress bar and a line saying what the run is doing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("%p%")
        self.status = QLabel("Idle")
        # A label that resized with its text would re-lay out the whole tab on every batch,
        # repainting every plot; a fixed width keeps the per-batch update to this label.
        self.status.setFixedWidth(440)
        self.status.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.status)
        self._epochs = 0
        self._epochs_kept = 0  # the last epoch evaluated (and checkpointed)
        self._in_epoch = 0  # the epoch whose batches are training now (0: none)
        self._steps_per_epoch = 0
        self._first_step = 0
        self._start_time = 0.0
        self._paused_since: float | None = None

    def show_event(self, event: Any) -> None:
        """Update the bar and the line for one engine event."""
        if isinstance(event, RunStarted):
            self._start(event)
        elif isinstance(event, FeaturesProgress):
            self._features(event)
        elif isinstance(event, EpochStarted):
            self.status.setText(f"Epoch {event.epoch}/{self._epochs} starting")
        elif isinstance(event, BatchDone):
            self._in_epoch = event.epoch
            self._batch(event)
        elif isinstance(event, EvalDone):
            self._epochs_kept, self._in_epoch = event.epoch, 0
            self._end_busy()
            self.status.setText(f"Epoch {event.epoch}/{self._epochs} evaluated: balanced "
                                f"accuracy {100 * event.metrics.balanced_acc:.1f}%")
        else:
            self._control(event)

    def _features(self, event: FeaturesProgress) -> None:
        # the bar follows the images pushed through the frozen backbone, then the steps
        self.bar.setRange(0, max(1, event.total))
        self.bar.setValue(event.done)
        self.bar.setFormat(f"features ({event.split}) %p%")
        source = "from cache" if event.cached else "computing"
        self.status.setText(f"Features of the frozen backbone ({event.split}, {source}): "
                            f"{event.done}/{event.total}")

    def show_fitting(self, what: str) -> None:
        """A one-shot fit (a scikit-learn head) has no batches: a busy bar and what it does."""
        self.bar.setRange(0, 0)  # Qt's busy indicator
        self.status.setText(f"Fitting {what} on the cached features (one pass)…")

    def _end_busy(self) -> None:
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        self.bar.setFormat("%p%")

    def _control(self, event: Any) -> None:
        if isinstance(event, Paused):
            self._paused_since = time.monotonic()
            self.status.setText("Paused")
        elif isinstance(event, Resumed):
            if self._paused_since is not None:  # a pause must not inflate the ETA
                self._start_time += time.monotonic() - self._paused_since
            self._paused_since = None
            self.status.setText("Resumed")
        elif isinstance(event, Finished):
            self._end_busy()
            self.bar.setValue(self.bar.maximum())
            self.status.setText(finished_text(event.best_metric, early=bool(event.note)))
            self.status.setToolTip(event.note)  # why early stopping ended the run
        elif isinstance(event, Stopped):
            self._end_busy()
            self.status.setText(self.stopped_text())
            self.status.setToolTip("A stop keeps the completed epochs (their checkpoint; Resume "
                                   "run… continues from it); the batches of an epoch in "
                                   "progress are not kept.")
        elif isinstance(event, Failed):
            self._end_busy()
            self.status.setText("Failed")

    def stopped_text(self) -> str:
        """What a stop kept: the completed epochs, never the batches of the epoch in progress."""
        if not self._epochs_kept:
            return "Stopped before epoch 1 ended: nothing kept"
        lost = f" · unfinished epoch {self._in_epoch} not kept" if self._in_epoch else ""
        return f"Stopped · kept epoch {self._epochs_kept}/{self._epochs} (resumable){lost}"

    def _start(self, event: RunStarted) -> None:
        self._epochs = event.epochs
        self._epochs_kept, self._in_epoch = event.start_epoch, 0
        self._steps_per_epoch = max(1, event.steps_per_epoch)
        self._first_step = event.start_epoch * self._steps_per_epoch
        self._start_time = time.monotonic()
        self._paused_since = None
        self.bar.setRange(0, max(1, event.epochs * self._steps_per_epoch))
        self.bar.setValue(self._first_step)
        self.status.setText(f"Started on {event.device}: {event.num_train} training, "
                            f"{event.num_val} validation images")

    def _batch(self, event: BatchDone) -> None:
        if self.bar.format() != "%p%":
            self.bar.setFormat("%p%")
        self.bar.setMaximum(max(1, event.total_steps))
        self.bar.setValue(min(event.step, event.total_steps))
        batch = event.step - (event.epoch - 1) * self._steps_per_epoch
        eta = eta_seconds(time.monotonic() - self._start_time, event.step - self._first_step,
                          event.total_steps - event.step)
        text = (f"Epoch {event.epoch}/{self._epochs} · batch {batch}/{self._steps_per_epoch}"
                f" · {event.images_per_s:.0f} img/s")
        if eta is not None:
            text += f" · ETA {format_duration(eta)}"
        if event.skipped_images:
            text += f" · {event.skipped_images} unreadable images skipped"
        self.status.setText(text)
