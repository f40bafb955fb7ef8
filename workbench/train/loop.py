"""What the training loop and its callbacks share: the run's state, its record and its control.

`Loop` is handed to every callback hook (`train.callbacks`); it also evaluates the model and
stores the run's per-image predictions, the two things several hooks and the engine all do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from workbench.config import RunConfig
from workbench.train import distributed
from workbench.train.callbacks import Callbacks
from workbench.train.control import RunControl
from workbench.train.metrics import EvalMetrics, evaluate
from workbench.train.predictions import record_predictions
from workbench.train.runpaths import RunPaths
from workbench.train.state import Feed, Optimisation, Progress, RunSetup


class Record(Protocol):
    """Where a run's events and checkpoints go: a `rundir.RunDir`, or under torchrun, on every
    process but rank 0, a `distributed.FollowerRecord` that writes nothing."""

    path: Path
    paths: RunPaths
    writes: bool

    def record(self, event: Any) -> None: ...
    def close(self) -> None: ...


@dataclass
class Loop:
    """One training run in progress, as its callbacks see it."""

    setup: RunSetup
    feed: Feed
    opt: Optimisation | None  # None for a head fitted once by scikit-learn
    progress: Progress
    record: Record
    control: RunControl
    callbacks: Callbacks
    extra_state: dict[str, Any] = field(default_factory=dict)  # saved in every checkpoint
    end_note: str = ""  # set by a callback that ends the run early, saying why

    @property
    def config(self) -> RunConfig:
        """The config the run trains (the plan's)."""
        return self.setup.plan.config

    @property
    def run_dir(self) -> str:
        """The run folder, as events name it."""
        return str(self.record.path)

    @property
    def ending(self) -> bool:
        """True once a callback has decided the run ends after this epoch."""
        return bool(self.end_note)

    def evaluate(self, forward: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> EvalMetrics | None:
        """Validation metrics of `forward` (default: the trained model); None without
        validation images or when stopped meanwhile."""
        s, feed = self.setup, self.feed
        if feed.val_loader is None:
            return None
        s.model.eval()
        spread = self.control.spread
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            # several processes each evaluate a share; a stop waits for the next batch's check
            if spread:
                distributed.sync_buffers(s.model)
            # the plain model, not DDP's wrapper: shares may differ by a batch, and DDP's
            # forward would wait for the others to exchange buffers
            forward = forward or (s.model if spread else feed.forward)
            return evaluate(forward, feed.val_loader, s.device, s.class_names,
                            s.train_counts, stop=None if spread else self.control.stop_event,
                            prepare=s.prepare_batch,
                            reduce=(lambda v: distributed.sum_counts(v, s.device)) if spread
                            else None)

    def store_predictions(self, forward: Callable[[torch.Tensor], torch.Tensor],
                          best: bool) -> None:
        """Per-image predictions of the val and test splits, kept in the run folder (`best`:
        the last checkpoint is also the best one)."""
        if not self.record.writes:
            return
        s = self.setup
        s.model.eval()
        splits = {"val": s.val_idx, "test": s.index.indices("test")}
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            record_predictions(self.record.path, forward, s.index, splits, s.plan.transform(),
                               device=s.device, class_names=s.class_names,
                               train_counts=s.train_counts,
                               checkpoints=("last", "best") if best else ("last",),
                               batch_size=s.plan.batch_size, stop=self.control.stop_event)
