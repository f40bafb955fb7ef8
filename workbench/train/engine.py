"""The training engine: `Trainer(config).run()` is a generator of typed events.

The GUI runs it in a worker thread and forwards each event as a signal; the CLI prints them with
a progress bar; the run directory records every one. `stop()`, `pause()` and `resume()` are
thread-safe flags checked between batches (and inside the evaluation loop), so stop takes effect
within one batch and pausing blocks the worker, not the GUI.

One loop trains every run; optional behaviour hooks into it as callbacks (`train.callbacks`):
pause / stop, LDAM's deferred re-weighting, head-first unfreezing, checkpoints, early stopping
and cRT. The run's state is built once into frozen records (`train.state`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import torch

from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.devices import World, configure_threads
from workbench.errors import UserError
from workbench.plan import RunPlan, plan_run
from workbench.train import distributed, setup
from workbench.train import features as fx
from workbench.train.callbacks import (
    Callback,
    Callbacks,
    DeferredReweighting,
    EarlyStopping,
    GradualUnfreezing,
)
from workbench.train.checkpointer import Checkpointer, restore
from workbench.train.checkpoints import load_checkpoint
from workbench.train.control import RunControl
from workbench.train.crt import ClassifierRetraining
from workbench.train.events import (
    BatchDone,
    EpochStarted,
    EvalDone,
    Event,
    Failed,
    Finished,
    RunStarted,
    Stopped,
)
from workbench.train.feeds import build_feed, estimated_steps
from workbench.train.loop import Loop, Record
from workbench.train.losses import LDAMLoss, class_weights
from workbench.train.rundir import RunDir, resumable_checkpoint
from workbench.train.state import Feed, Optimisation, Progress, RunSetup
from workbench.train.trained import PooledStageClassifier

log = logging.getLogger(__name__)

# A loss this many times above the first batches' (or above ln K, chance level) has diverged.
DIVERGED_FACTOR = 100.0


class Trainer:
    """Trains a run plan (or `config`, planned here) on `index` (or on `config.data.path`),
    recording into a run directory.

    `run_dir` names the folder to write (a new timestamped one under the runs folder when None);
    with `resume=True` it must be an existing run, continued from its `checkpoints/last.pt`.
    The plan is made before any folder is created, so a config that cannot run leaves nothing.
    """

    def __init__(self, config: RunConfig, index: DatasetIndex | None = None,
                 run_dir: str | Path | None = None, resume: bool = False,
                 plan: RunPlan | None = None) -> None:
        self.config = plan.config if plan is not None else config.validate()
        self.plan = plan
        self.index = index
        self.run_dir = Path(run_dir) if run_dir else None
        self.resuming = resume
        if resume and self.run_dir is None:
            raise UserError("resuming needs the run folder to continue")
        self.control = RunControl()
        self.control.world = World()  # several processes under torchrun: set by `_prepare`
        self._record: Record | None = None
        self._ended = False  # a Finished / Stopped / Failed event was recorded

    def stop(self) -> None:
        """Ask the run to end after the current batch (also wakes a paused run)."""
        self.control.stop()

    def pause(self) -> None:
        """Block the run between batches until `resume()` or `stop()`."""
        self.control.pause()

    def resume(self) -> None:
        """Continue a paused run."""
        self.control.resume()

    def run(self) -> Iterator[Event]:
        """Train, yielding events; every error ends the run with one `Failed` event."""
        threads = torch.get_num_threads()  # the run leaves a core free; the process gets it back
        try:
            for event in self._events():
                self._write(event)
                yield event
        except (GeneratorExit, KeyboardInterrupt):  # the consumer stopped listening (the GUI
            # closing), Ctrl-C or SIGTERM: say so; the last finished epoch's checkpoint is kept
            if self._record is not None and not self._ended:
                self._write(Stopped(str(self._record.path)))
            raise
        except UserError as exc:
            yield self._failed(str(exc), user_error=True)
        except torch.OutOfMemoryError:
            log.exception("out of memory")
            torch.cuda.empty_cache()
            yield self._failed(f"CUDA out of memory at batch size {self.config.train.batch_size}: "
                               "try a smaller batch size")
        except Exception as exc:
            log.exception("training failed")  # the traceback goes to the log, the line to the user
            lost = distributed.lost_peer(exc) if self.control.spread else None
            yield self._failed(lost or f"training failed: {type(exc).__name__}: {exc}")
        finally:
            if self._record is not None:
                self._record.close()
            torch.set_num_threads(threads)

    def _write(self, event: Event) -> None:
        if self._record is not None:
            self._record.record(event)
            self._ended = self._ended or isinstance(event, Finished | Stopped | Failed)

    def _failed(self, message: str, user_error: bool = False) -> Failed:
        event = Failed(message, user_error=user_error)
        self._write(event)
        return event

    # -- the run -------------------------------------------------------------------------------

    def _events(self) -> Generator[Event, None, None]:
        s = self._prepare()
        checkpoint = self._read_checkpoint(s)
        progress = Progress.from_checkpoint(checkpoint) if checkpoint else Progress()
        self._record = record = self._open_record(progress)
        yield RunStarted(str(record.path), str(s.device), len(s.train_idx), len(s.val_idx),
                         self.config.train.epochs, estimated_steps(s), progress.epoch,
                         s.plan.fast_path)
        feed = yield from build_feed(s, self.control)
        if feed is None:
            yield Stopped(str(record.path))
            return
        extra = {"feature_stage": s.plan.feature_stage} if s.plan.fast_path else {}
        if s.plan.head.fitted_once:
            loop = Loop(s, feed, None, progress, record, self.control,
                        Callbacks([self.control]), extra)
            # fitted once: a resumed run whose head is fitted has nothing left to do
            yield from (self._fit_sklearn(loop) if progress.epoch == 0 else
                        iter([Finished(loop.run_dir, progress.best)]))
            return
        opt = self._build_optimisation(s, feed)
        checkpointer = Checkpointer()
        loop = Loop(s, feed, opt, progress, record, self.control,
                    Callbacks(self._callbacks(s, opt, checkpointer)), extra)
        if checkpoint is not None:
            restore(loop, checkpoint)
        yield from self._train_epochs(loop, checkpointer)

    def _callbacks(self, s: RunSetup, opt: Optimisation,
                   checkpointer: Checkpointer) -> list[Callback]:
        """The loop's callbacks, in the order they run (the checkpoint before early stopping
        looks at it; cRT after the last epoch's checkpoint)."""
        t = self.config.train
        callbacks: list[Callback] = [self.control]
        if isinstance(opt.criterion, LDAMLoss):
            callbacks.append(DeferredReweighting(opt.criterion))
        if s.plan.unfreeze_after_epochs:
            callbacks.append(GradualUnfreezing(s.plan.unfreeze_after_epochs,
                                               s.plan.freeze_stages))
        callbacks.append(checkpointer)
        if t.early_stopping_patience:
            callbacks.append(EarlyStopping(t.early_stopping_patience))
        if t.crt_epochs and not self.control.spread:
            callbacks.append(ClassifierRetraining(checkpointer))
        return callbacks

    def _prepare(self) -> RunSetup:
        c = self.config
        index = setup.load_index(c, self.index)
        plan = self.plan if self.plan is not None else plan_run(c, index)
        self.plan, self.config = plan, plan.config
        if plan.processes > 1:  # under torchrun: join the others, check they read the same data
            self.control.world = distributed.init_process_group()
            distributed.check_same_dataset(index)
        generator = setup.seed_everything(c.train.seed, c.train.deterministic)
        train_idx = index.indices(index.training_split())
        val_idx = index.indices("val") if index.training_split() == "train" else []
        counts = index.class_counts(index.training_split())
        device = torch.device(plan.device)
        self.control.device = device
        configure_threads(device)
        model = plan.build_model()
        cuda = device.type == "cuda"
        channels_last = cuda and c.train.channels_last and not plan.fast_path
        model.to(device, memory_format=torch.channels_last if channels_last else
                 torch.preserve_format)
        return RunSetup(plan, index, train_idx, val_idx, [counts[n] for n in index.class_names],
                        device, model, generator, cuda and c.train.amp, channels_last)

    def _read_checkpoint(self, s: RunSetup) -> dict[str, Any] | None:
        if not self.resuming:
            return None
        assert self.run_dir is not None
        state = load_checkpoint(resumable_checkpoint(self.run_dir), map_location=s.device)
        if list(state.get("class_names", [])) != s.class_names:
            raise UserError(f"cannot resume {self.run_dir}: its classes differ from the dataset's")
        return state

    def _open_record(self, progress: Progress) -> Record:
        world = self.control.world
        if world.active:  # rank 0 alone writes the run directory
            record = self._open_main_record(progress) if world.is_main else None
            path = distributed.share_run_path(record.path if record else None)
            return record or distributed.FollowerRecord(path)
        return self._open_main_record(progress)

    def _open_main_record(self, progress: Progress) -> RunDir:
        if self.resuming:
            assert self.run_dir is not None
            return RunDir.open(self.run_dir, step=progress.step, epoch=progress.epoch,
                               config=self.config)
        if self.run_dir is not None:
            return RunDir.create_at(self.run_dir, self.config)
        return RunDir.create(self.config)

    def _build_optimisation(self, s: RunSetup, feed: Feed) -> Optimisation:
        criterion = setup.build_criterion(s.plan, s.train_counts).to(s.device)
        optimizer = setup.build_optimizer(s.plan, s.model)
        scheduler = setup.build_schedule(s.plan, optimizer, feed.steps_per_epoch)
        return Optimisation(criterion, optimizer, scheduler,
                            torch.amp.GradScaler(s.device.type, enabled=s.amp))

    # -- the loop ------------------------------------------------------------------------------

    def _train_epochs(self, loop: Loop,
                      checkpointer: Checkpointer) -> Generator[Event, None, None]:
        p, hooks = loop.progress, loop.callbacks
        for epoch in range(p.epoch + 1, self.config.train.epochs + 1):
            yield EpochStarted(epoch)
            yield from hooks.on_epoch_start(loop, epoch)
            distributed.set_epoch(loop.feed.train_loader, epoch)
            completed = not self.control.stopping() and (
                yield from self._train_one_epoch(loop, epoch))
            metrics = loop.evaluate() if completed else None
            if not completed or (loop.feed.val_loader is not None and metrics is None):
                yield Stopped(loop.run_dir)
                return
            if metrics is not None:
                yield EvalDone(epoch, metrics)
            p.epoch = epoch
            yield from hooks.on_epoch_end(loop, epoch, metrics)
            if loop.ending:
                break
        yield from hooks.on_train_end(loop)
        saved = checkpointer.last_saved
        loop.store_predictions(loop.setup.model, best=saved is not None and saved.best)
        yield Finished(loop.run_dir, p.best, loop.end_note)

    def _train_one_epoch(self, loop: Loop, epoch: int) -> Generator[Event, None, bool]:
        s, feed, opt, p = loop.setup, loop.feed, loop.opt, loop.progress
        assert opt is not None
        if s.plan.fast_path:
            s.model.eval()  # the frozen backbone is not run at all; only the head trains
        feed.trainable.train()
        total = self.config.train.epochs * feed.steps_per_epoch
        names = [g.get("name", f"group{i}") for i, g in enumerate(opt.optimizer.param_groups)]
        done, tick = 0, time.perf_counter()
        for images, labels, skipped in feed.train_loader:
            p.skipped += skipped
            if len(labels):  # else every image of the batch failed to load
                loss = self._step(s, feed, opt, images, labels)
                if self.control.spread:  # the step's loss, equal on every process
                    loss = distributed.average(loss, s.device)
                self._check_divergence(s, p, loss)
                p.step, done = p.step + 1, done + 1
                now = time.perf_counter()
                rate, tick = len(labels) * self.control.world.size / max(now - tick, 1e-9), now
                lrs = {n: g["lr"] for n, g in zip(names, opt.optimizer.param_groups, strict=True)}
                yield BatchDone(epoch, p.step, total, loss, lrs, rate,
                                setup.gpu_memory_mb(s.device), p.skipped)
            yield from loop.callbacks.after_step(loop)
            if done >= feed.steps_per_epoch or self.control.stopping():
                break
        return not self.control.stopping()

    def _check_divergence(self, s: RunSetup, p: Progress, loss: float) -> None:
        """End the run with a readable message when the loss is not finite or has exploded."""
        if p.first_loss is None and math.isfinite(loss):
            p.first_loss = loss
        chance = math.log(max(2, len(s.class_names)))
        ceiling = DIVERGED_FACTOR * max(p.first_loss or chance, chance)
        if math.isfinite(loss) and loss <= ceiling:
            return
        lr = self.config.train.lr
        raise UserError(f"training diverged at step {p.step + 1} (loss {loss:.3g}) with learning "
                        f"rate {lr:g}: try {lr / 10:g} or lower")

    def _step(self, s: RunSetup, feed: Feed, opt: Optimisation, images: torch.Tensor,
              labels: torch.Tensor) -> float:
        images = s.prepare_batch(images)
        labels = labels.to(s.device, non_blocking=True)
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            loss = opt.criterion(feed.forward(images), labels)
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        opt.scheduler.step()
        return float(loss.item())

    def _fit_sklearn(self, loop: Loop) -> Generator[Event, None, None]:
        s, c = loop.setup, self.config
        yield EpochStarted(1)
        loss_weights = class_weights(s.train_counts, c.data.loss_weighting, c.data.beta)
        layer = fx.fit_sklearn_head(s.plan.head, loop.feed.train_features,  # type: ignore[arg-type]
                                    len(s.class_names), loss_weights, c.train.seed)
        layer.to(s.device)
        loop.extra_state["probe_head"] = dict(layer.state_dict())
        metrics = loop.evaluate(layer)
        if metrics is not None:
            yield EvalDone(1, metrics)
        loop.progress.epoch = 1
        yield Checkpointer().save(loop, metrics)
        loop.store_predictions(PooledStageClassifier(s.model, s.plan.feature_stage, layer),
                               best=True)
        yield Finished(loop.run_dir, loop.progress.best)
