"""The training loop's hooks, Lightning-style: optional behaviour lives in small callbacks.

The engine (`train.engine.Trainer`) runs one loop; whatever is not "a step of gradient descent"
hooks into it here instead of being checked inside it: pause / stop (`control.RunControl`),
deferred re-weighting (`DeferredReweighting`), head-first fine-tuning (`GradualUnfreezing`),
checkpoints (`checkpointer.Checkpointer`), early stopping (`EarlyStopping`) and classifier
re-training (`crt.ClassifierRetraining`).

Every hook that may have something to tell the user returns the events to yield (an empty tuple
when not); `on_save` / `on_restore` add to and read back the checkpoint. The callbacks run in the
order given, which matters at an epoch's end: the checkpoint is written before early stopping
looks at it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.config import RunConfig
    from workbench.train.events import Event
    from workbench.train.metrics import EvalMetrics
    from workbench.train.state import Progress, RunSetup

log = logging.getLogger(__name__)


class Loop(Protocol):
    """What a hook sees of the running loop; `train.loop.Loop` is the one implementation. A
    protocol, so this module names no module that holds the callbacks (no import cycle)."""

    setup: RunSetup
    progress: Progress
    end_note: str  # set by a callback that ends the run early, saying why

    @property
    def config(self) -> RunConfig:
        """The config the run trains."""
        ...


class Callback:
    """A hook into the training loop; every method does nothing unless overridden."""

    def on_epoch_start(self, loop: Loop, epoch: int) -> Iterable[Event]:
        """Before the first batch of `epoch` (1-based)."""
        return ()

    def after_step(self, loop: Loop) -> Iterable[Event]:
        """After each batch (also one whose images all failed to load and trained nothing)."""
        return ()

    def on_epoch_end(self, loop: Loop, epoch: int,
                     metrics: EvalMetrics | None) -> Iterable[Event]:
        """After `epoch` trained and was evaluated (`metrics` None without validation images)."""
        return ()

    def on_save(self, loop: Loop, state: dict[str, Any]) -> None:
        """Add what this callback must find again on resume to a checkpoint's `state`."""

    def on_restore(self, loop: Loop, state: dict[str, Any]) -> None:
        """Read back what `on_save` stored (a resumed run)."""

    def on_train_end(self, loop: Loop) -> Iterable[Event]:
        """After the last epoch (or an early stop), before the run's predictions are stored."""
        return ()


class Callbacks:
    """Callbacks called in order; each hook yields every callback's events in turn."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.items = tuple(callbacks)

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.items)

    def on_epoch_start(self, loop: Loop, epoch: int) -> Iterator[Event]:
        """Every callback's `on_epoch_start`."""
        for callback in self.items:
            yield from callback.on_epoch_start(loop, epoch)

    def after_step(self, loop: Loop) -> Iterator[Event]:
        """Every callback's `after_step`."""
        for callback in self.items:
            yield from callback.after_step(loop)

    def on_epoch_end(self, loop: Loop, epoch: int,
                     metrics: EvalMetrics | None) -> Iterator[Event]:
        """Every callback's `on_epoch_end`."""
        for callback in self.items:
            yield from callback.on_epoch_end(loop, epoch, metrics)

    def on_save(self, loop: Loop, state: dict[str, Any]) -> None:
        """Every callback's `on_save`."""
        for callback in self.items:
            callback.on_save(loop, state)

    def on_restore(self, loop: Loop, state: dict[str, Any]) -> None:
        """Every callback's `on_restore`."""
        for callback in self.items:
            callback.on_restore(loop, state)

    def on_train_end(self, loop: Loop) -> Iterator[Event]:
        """Every callback's `on_train_end`."""
        for callback in self.items:
            yield from callback.on_train_end(loop)


class DeferredReweighting(Callback):
    """LDAM-DRW's switch (Cao et al. 2019): the loss re-weights the classes from epoch
    `int(drw_start * epochs) + 1` on (`losses.LDAMLoss.set_epoch`)."""

    def __init__(self, criterion: Any) -> None:
        self.criterion = criterion

    def on_epoch_start(self, loop: Loop, epoch: int) -> Iterable[Event]:
        """Tell the loss which epoch of how many begins."""
        self.criterion.set_epoch(epoch, loop.config.train.epochs)
        return ()


class GradualUnfreezing(Callback):
    """Head first, then the slider's stages (fastai's `fine_tune`, LP-FT of Kumar et al. 2022).

    For the first `after_epochs` epochs the whole backbone is frozen (no gradient, BatchNorm in
    eval mode): only the head trains. From the next epoch on the stages the slider leaves
    trainable (`freeze_stages`) train too, each at its own learning rate. The optimizer holds
    every group from the start (a frozen group gets no gradient, so it does not move), and the
    one schedule runs over the whole run.
    """

    def __init__(self, after_epochs: int, freeze_stages: int) -> None:
        self.after_epochs = after_epochs
        self.freeze_stages = freeze_stages

    def on_epoch_start(self, loop: Loop, epoch: int) -> Iterable[Event]:
        """Freeze the backbone during the head-only epochs, restore the slider's freeze after."""
        model = loop.setup.model
        wanted = model.num_stages if epoch <= self.after_epochs else self.freeze_stages
        if model.frozen_stages != wanted:
            log.info("epoch %d: %d of %d stages frozen", epoch, wanted, model.num_stages)
            model.freeze(wanted)
        return ()


class EarlyStopping(Callback):
    """End the run when validation balanced accuracy (the monitored metric, the one `best.pt`
    is chosen by) has not improved for `patience` epochs; the run finishes with a note saying
    so. Without validation images there is nothing to monitor and it never stops a run."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, loop: Loop, epoch: int,
                     metrics: EvalMetrics | None) -> Iterable[Event]:
        """After the checkpoint: stop when the best epoch is `patience` epochs back."""
        p = loop.progress
        waited = epoch - p.best_epoch
        if metrics is not None and waited >= self.patience and epoch < loop.config.train.epochs:
            loop.end_note = (f"stopped early after epoch {epoch} of {loop.config.train.epochs}: "
                             f"validation balanced accuracy did not improve for {waited} epoch(s) "
                             f"(best {p.best:.1%} at epoch {p.best_epoch})")
        return ()
