"""The one checkpoint policy of a run: after every epoch, `best.pt` (when it is the best) and then
`last.pt`, each written atomically (`checkpoints.save_checkpoint`).

`best.pt` holds the weights and the progress; `last.pt` adds the optimizer, schedule, gradient
scaler and random states, so it alone resumes a run (the optimizer state is as big as the model
again). Under torchrun rank 0 alone writes (`record.writes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from workbench.train.callbacks import Callback
from workbench.train.checkpoints import restore_rng, rng_state, save_checkpoint
from workbench.train.events import CheckpointSaved, Event

if TYPE_CHECKING:
    from workbench.train.loop import Loop
    from workbench.train.metrics import EvalMetrics


class Checkpointer(Callback):
    """Saves at each epoch's end; `last_saved` is the latest `CheckpointSaved` (None before)."""

    def __init__(self) -> None:
        self.last_saved: CheckpointSaved | None = None

    def on_epoch_end(self, loop: Loop, epoch: int,
                     metrics: EvalMetrics | None) -> Iterable[Event]:
        """Save the epoch (the progress already counts it)."""
        return (self.save(loop, metrics, resumable=True),)

    def save(self, loop: Loop, metrics: EvalMetrics | None,
             resumable: bool = False) -> CheckpointSaved:
        """Record `metrics` in the progress and write best.pt (when best) then last.pt.

        `resumable`: last.pt carries the optimizer state (False after cRT or a fitted head:
        there is nothing left to resume). Without validation every epoch is the best.
        """
        p = loop.progress
        score = metrics.balanced_acc if metrics is not None else p.best
        is_best = metrics is None or score > p.best
        if is_best:
            p.best, p.best_epoch = max(p.best, score), p.epoch
        weights = {
            "model": loop.setup.model.state_dict(),
            "epoch": p.epoch, "step": p.step, "best_metric": p.best, "best_epoch": p.best_epoch,
            "class_names": loop.setup.class_names, "backbone": loop.config.model.backbone,
            **loop.extra_state,
        }
        loop.callbacks.on_save(loop, weights)
        paths = loop.record.paths
        # best.pt first: a kill between the two writes must never leave last.pt recording a
        # best score whose weights were not saved
        if loop.record.writes:
            if is_best:
                save_checkpoint(weights, paths.best)
            save_checkpoint({**weights, **_resume_state(loop, resumable)}, paths.last)
        self.last_saved = CheckpointSaved(str(paths.best if is_best else paths.last), is_best)
        return self.last_saved


def _resume_state(loop: Loop, resumable: bool) -> dict[str, Any]:
    opt = loop.opt if resumable else None
    return {
        "optimizer": opt.optimizer.state_dict() if opt else {},
        "scheduler": opt.scheduler.state_dict() if opt else {},
        "scaler": opt.scaler.state_dict() if opt else {},
        "rng": rng_state(loop.setup.generator),
    }


def restore(loop: Loop, state: dict[str, Any]) -> None:
    """Put a resumed run back where `last.pt` left it: weights, optimizer, schedule, scaler,
    the callbacks' own state, and last the random states."""
    from workbench.train.schedule import restore_scheduler

    assert loop.opt is not None
    loop.setup.model.load_state_dict(state["model"])
    loop.opt.optimizer.load_state_dict(state["optimizer"])
    restore_scheduler(loop.opt.scheduler, state["scheduler"])
    if state.get("scaler"):
        loop.opt.scaler.load_state_dict(state["scaler"])
    loop.callbacks.on_restore(loop, state)
    # last: building the model and loaders drew random numbers; the next epoch must draw
    # what it would have drawn in an uninterrupted run (same order, same augmentation)
    restore_rng(state.get("rng"), loop.setup.generator)
