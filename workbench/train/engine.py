"""The training engine: `Trainer(config).run()` is a generator of typed events.

The GUI runs it in a worker thread and forwards each event as a signal; the CLI prints them with
a progress bar; the run directory records every one. `stop()`, `pause()` and `resume()` are
thread-safe flags checked between batches (and inside the evaluation loop), so stop takes effect
within one batch and pausing blocks the worker, not the GUI.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.data.torch_dataset import ImageDataset
from workbench.devices import World, choose_num_workers, configure_threads
from workbench.errors import UserError
from workbench.models.transfer import TransferModel
from workbench.plan import RunPlan, plan_run
from workbench.train import distributed, setup
from workbench.train import features as fx
from workbench.train.checkpoints import (
    load_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from workbench.train.crt import retrain_classifier
from workbench.train.events import (
    BatchDone,
    CheckpointSaved,
    EpochStarted,
    EvalDone,
    Event,
    Failed,
    FeaturesProgress,
    Finished,
    Paused,
    Resumed,
    RunStarted,
    Stopped,
)
from workbench.train.losses import build_criterion, class_weights
from workbench.train.metrics import EvalMetrics, evaluate
from workbench.train.predictions import record_predictions
from workbench.train.rundir import RunDir, resumable_checkpoint
from workbench.train.samplers import build_sampler
from workbench.train.schedule import build_scheduler
from workbench.train.trained import PooledStageClassifier

log = logging.getLogger(__name__)

# A loss this many times above the first batches' (or above ln K, chance level) has diverged.
DIVERGED_FACTOR = 100.0


@dataclass(frozen=True)
class _Setup:
    """What the run trains on and with: built once by `Trainer._prepare`."""

    plan: RunPlan
    index: DatasetIndex
    train_idx: list[int]
    val_idx: list[int]
    train_counts: list[int]
    device: torch.device
    model: TransferModel
    generator: torch.Generator | None
    amp: bool
    channels_last: bool

    @property
    def class_names(self) -> list[str]:
        """The dataset's classes, in label order."""
        return list(self.plan.class_names)


@dataclass(frozen=True)
class _Feed:
    """How batches reach the model: images through the whole network, or cached features
    through the head (the fast path)."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    trainable: torch.nn.Module
    train_loader: Any
    val_loader: Any
    steps_per_epoch: int
    train_features: fx.FeatureSet | None = None


@dataclass(frozen=True)
class _Optimisation:
    """Loss, optimizer, schedule and gradient scaler of a trained head or network."""

    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler


@dataclass
class _Progress:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps completed
    best: float = -1.0  # best validation balanced accuracy so far
    skipped: int = 0  # images that failed to load
    first_loss: float | None = None  # the first finite batch loss, the divergence yardstick


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
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._record: RunDir | None = None
        self._ended = False  # a Finished / Stopped / Failed event was recorded
        self._extra_state: dict[str, Any] = {}  # saved in every checkpoint (fast path, sklearn)
        self._world = World()  # several processes under torchrun: set by `_prepare`
        self._synced_stop = False  # rank 0's stop, as last exchanged with the other processes

    def stop(self) -> None:
        """Ask the run to end after the current batch (also wakes a paused run)."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        """Block the run between batches until `resume()` or `stop()`."""
        self._running.clear()

    def resume(self) -> None:
        """Continue a paused run."""
        self._running.set()

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
            lost = distributed.lost_peer(exc) if self._world.active else None
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
        progress = _Progress()
        if checkpoint is not None:
            progress = _Progress(int(checkpoint["epoch"]), int(checkpoint["step"]),
                                 float(checkpoint["best_metric"]))
        self._record = self._open_record(progress)
        c = self.config
        yield RunStarted(str(self._record.path), str(s.device), len(s.train_idx), len(s.val_idx),
                         c.train.epochs, self._estimated_steps(s), progress.epoch,
                         s.plan.fast_path)
        feed = yield from self._build_feed(s)
        if feed is None:
            yield Stopped(str(self._record.path))
            return
        if s.plan.head.fitted_once:
            # fitted once: a resumed run whose head is fitted has nothing left to do
            yield from (self._fit_sklearn(s, feed, progress) if progress.epoch == 0 else
                        iter([Finished(str(self._record.path), progress.best)]))
            return
        opt = self._build_optimisation(s, feed)
        if checkpoint is not None:
            self._restore(s, opt, checkpoint)
        yield from self._train_epochs(s, feed, opt, progress)

    def _prepare(self) -> _Setup:
        c = self.config
        index = setup.load_index(c, self.index)
        plan = self.plan if self.plan is not None else plan_run(c, index)
        self.plan, self.config = plan, plan.config
        if plan.processes > 1:  # under torchrun: join the others, check they read the same data
            self._world = distributed.init_process_group()
            distributed.check_same_dataset(index)
        generator = setup.seed_everything(c.train.seed, c.train.deterministic)
        train_idx = index.indices(index.training_split())
        val_idx = index.indices("val") if index.training_split() == "train" else []
        counts = index.class_counts(index.training_split())
        device = torch.device(plan.device)
        configure_threads(device)
        model = plan.build_model()
        cuda = device.type == "cuda"
        channels_last = cuda and c.train.channels_last and not plan.fast_path
        model.to(device, memory_format=torch.channels_last if channels_last else
                 torch.preserve_format)
        return _Setup(plan, index, train_idx, val_idx, [counts[n] for n in index.class_names],
                      device, model, generator, cuda and c.train.amp, channels_last)

    def _read_checkpoint(self, s: _Setup) -> dict[str, Any] | None:
        if not self.resuming:
            return None
        assert self.run_dir is not None
        state = load_checkpoint(resumable_checkpoint(self.run_dir), map_location=s.device)
        if list(state.get("class_names", [])) != s.class_names:
            raise UserError(f"cannot resume {self.run_dir}: its classes differ from the dataset's")
        return state

    def _open_record(self, progress: _Progress) -> RunDir | distributed.FollowerRecord:
        if self._world.active:  # rank 0 alone writes the run directory
            record = self._open_main_record(progress) if self._world.is_main else None
            path = distributed.share_run_path(record.path if record else None)
            return record or distributed.FollowerRecord(path)
        return self._open_main_record(progress)

    def _open_main_record(self, progress: _Progress) -> RunDir:
        if self.resuming:
            assert self.run_dir is not None
            return RunDir.open(self.run_dir, step=progress.step, epoch=progress.epoch,
                               config=self.config)
        if self.run_dir is not None:
            return RunDir.create_at(self.run_dir, self.config)
        return RunDir.create(self.config)

    def _estimated_steps(self, s: _Setup) -> int:
        # each process reads its share of the epoch, a share of the batch at a time
        share = math.ceil(len(s.train_idx) / s.plan.processes)
        steps = math.ceil(share / s.plan.process_batch_size)
        limit = self.config.train.limit_train_batches
        return min(steps, limit) if limit else steps

    # -- data ----------------------------------------------------------------------------------

    def _build_feed(self, s: _Setup) -> Generator[Event, None, _Feed | None]:
        """The loaders (None: stopped while features were being computed)."""
        if s.plan.fast_path:
            return (yield from self._feature_feed(s))
        c, plan = self.config, s.plan
        workers = choose_num_workers(c.data.num_workers)
        pin = s.device.type == "cuda"
        labels = [s.index.labels[i] for i in s.train_idx]
        train_set = ImageDataset(s.index, s.train_idx, plan.transform(train=True))
        if self._world.active:
            sampler = distributed.train_sampler(train_set, labels, c.data.sampling, self._world,
                                                distributed.shared_seed(c.train.seed))
        else:
            sampler = build_sampler(labels, c.data.sampling, s.generator)
        train_loader = setup.make_loader(
            train_set, plan.process_batch_size, shuffle=True, sampler=sampler,
            workers=workers, pin_memory=pin, generator=s.generator)
        val_loader = None
        if s.val_idx:
            val_set = ImageDataset(s.index, s.val_idx, plan.transform())
            val_loader = setup.make_loader(
                val_set, plan.process_batch_size, workers=workers, pin_memory=pin,
                sampler=distributed.ShardSampler(len(val_set), self._world.size,
                                                 self._world.rank)
                if self._world.active else None)
        forward = distributed.wrap_model(s.model, s.device) if self._world.active else s.model
        return _Feed(forward, s.model, train_loader, val_loader, self._estimated_steps(s))

    def _feature_feed(self, s: _Setup) -> Generator[Event, None, _Feed | None]:
        c, plan = self.config, s.plan
        transform = plan.transform()
        workers = choose_num_workers(c.data.num_workers)
        sets = {}
        for split, idx in (("train", s.train_idx), ("val", s.val_idx)):
            if not idx:
                continue
            loader = setup.make_loader(ImageDataset(s.index, idx, transform), plan.batch_size,
                                       workers=workers, pin_memory=s.device.type == "cuda")
            key = fx.feature_key(s.index, idx, plan, transform)
            sets[split] = yield from self._pausable(fx.iter_features(
                s.model, loader, key, split=split, stage=plan.feature_stage, device=s.device,
                stop=self._stop))
            if sets[split] is None:
                return None
        train = sets["train"]
        self._extra_state["feature_stage"] = plan.feature_stage
        train_loader = fx.feature_loader(
            train, plan.batch_size, shuffle=True, generator=s.generator,
            sampler=build_sampler(train.labels.tolist(), c.data.sampling, s.generator))
        val_loader = fx.feature_loader(sets["val"], plan.batch_size) if "val" in sets else None
        return _Feed(s.model.forward_head, s.model.head, train_loader, val_loader,
                     self._estimated_steps(s), train)

    def _pausable(self, events: Generator[FeaturesProgress, None, Any]
                  ) -> Generator[Event, None, Any]:
        """Relay a feature pass's progress, honouring pause between its batches."""
        done = 0
        while True:
            try:
                event = next(events)
            except StopIteration as end:
                return end.value
            yield event
            done = event.done
            yield from self._honour_pause(done)
            if self._stop.is_set():
                events.close()
                return None

    def _prepare_batch(self, s: _Setup, x: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if s.channels_last else torch.preserve_format
        return x.to(s.device, non_blocking=True, memory_format=fmt)

    # -- optimisation --------------------------------------------------------------------------

    def _build_optimisation(self, s: _Setup, feed: _Feed) -> _Optimisation:
        c = self.config
        loss_weights = class_weights(s.train_counts, c.data.loss_weighting, c.data.beta)
        criterion = build_criterion(c.train, s.train_counts, loss_weights).to(s.device)
        optimizer = setup.build_optimizer(c, s.model.param_groups(c.train.lr, c.model.lr_decay))
        total = c.train.epochs * feed.steps_per_epoch
        scheduler = build_scheduler(optimizer, total,
                                    round(c.train.warmup_epochs * feed.steps_per_epoch))
        return _Optimisation(criterion, optimizer, scheduler,
                             torch.amp.GradScaler(s.device.type, enabled=s.amp))

    def _restore(self, s: _Setup, opt: _Optimisation, state: dict[str, Any]) -> None:
        s.model.load_state_dict(state["model"])
        opt.optimizer.load_state_dict(state["optimizer"])
        opt.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            opt.scaler.load_state_dict(state["scaler"])
        # last: building the model and loaders drew random numbers; the next epoch must draw
        # what it would have drawn in an uninterrupted run (same order, same augmentation)
        restore_rng(state.get("rng"), s.generator)

    def _train_epochs(self, s: _Setup, feed: _Feed, opt: _Optimisation,
                      p: _Progress) -> Generator[Event, None, None]:
        run_dir = str(self._record.path)  # type: ignore[union-attr]
        saved: CheckpointSaved | None = None
        for epoch in range(p.epoch + 1, self.config.train.epochs + 1):
            yield EpochStarted(epoch)
            if hasattr(opt.criterion, "set_epoch"):  # LDAM-DRW re-weights late in the run
                opt.criterion.set_epoch(epoch, self.config.train.epochs)
            distributed.set_epoch(feed.train_loader, epoch)
            completed = yield from self._train_one_epoch(s, feed, opt, p, epoch)
            metrics = self._evaluate(s, feed) if completed else None
            if not completed or (feed.val_loader is not None and metrics is None):
                yield Stopped(run_dir)
                return
            if metrics is not None:
                yield EvalDone(epoch, metrics)
            p.epoch = epoch
            saved = self._save(s, p, metrics, opt)
            yield saved
        if self.config.train.crt_epochs and p.epoch and not self._world.active:
            saved = (yield from self._retrain_classifier(s, feed, p)) or saved
        self._store_predictions(s, s.model, best=saved is not None and saved.best)
        yield Finished(run_dir, p.best)

    def _retrain_classifier(self, s: _Setup, feed: _Feed,
                            p: _Progress) -> Generator[Event, None, CheckpointSaved | None]:
        """cRT: the classifier re-trained class-balanced on the trained backbone's features."""
        features = feed.train_features
        if features is None:  # the backbone was fine-tuned: its features change, never cached
            loader = setup.make_loader(ImageDataset(s.index, s.train_idx, s.plan.transform()),
                                       s.plan.batch_size)
            features = yield from self._pausable(fx.iter_features(
                s.model, loader, None, split="train", stage=s.model.num_stages - 1,
                device=s.device, stop=self._stop))
        if features is None or not retrain_classifier(
                s.model, features, len(s.class_names), self.config.train, s.device, s.generator,
                self._stop):
            return None
        metrics = self._evaluate(s, feed, forward=s.model.forward_head if s.plan.fast_path
                                 else s.model)
        if metrics is not None:
            yield EvalDone(p.epoch, metrics)
        saved = self._save(s, p, metrics)
        yield saved
        return saved

    def _store_predictions(self, s: _Setup, forward: Callable[[torch.Tensor], torch.Tensor],
                           best: bool) -> None:
        """Per-image predictions of the val and test splits, kept in the run directory."""
        if not self._world.is_main:
            return
        s.model.eval()
        splits = {"val": s.val_idx, "test": s.index.indices("test")}
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            record_predictions(self._record.path, forward, s.index, splits,  # type: ignore[union-attr]
                               s.plan.transform(), device=s.device, class_names=s.class_names,
                               train_counts=s.train_counts,
                               checkpoints=("last", "best") if best else ("last",),
                               batch_size=s.plan.batch_size, stop=self._stop)

    def _train_one_epoch(self, s: _Setup, feed: _Feed, opt: _Optimisation, p: _Progress,
                         epoch: int) -> Generator[Event, None, bool]:
        self._set_train_mode(s, feed)
        total = self.config.train.epochs * feed.steps_per_epoch
        names = [g.get("name", f"group{i}") for i, g in enumerate(opt.optimizer.param_groups)]
        done, tick = 0, time.perf_counter()
        for images, labels, skipped in feed.train_loader:
            p.skipped += skipped
            yield from self._honour_pause(p.step)
            if self._stopping():
                return False
            if len(labels) == 0:  # every image of the batch failed to load
                continue
            loss = self._step(s, feed, opt, images, labels)
            if self._world.active:  # the step's loss, equal on every process
                loss = distributed.average(loss, s.device)
            self._check_divergence(s, p, loss)
            p.step, done = p.step + 1, done + 1
            now = time.perf_counter()
            rate, tick = len(labels) * self._world.size / max(now - tick, 1e-9), now
            lrs = {n: g["lr"] for n, g in zip(names, opt.optimizer.param_groups, strict=True)}
            yield BatchDone(epoch, p.step, total, loss, lrs, rate, setup.gpu_memory_mb(s.device),
                            p.skipped)
            if done >= feed.steps_per_epoch or self._stopping():
                break
        if self._world.active:  # every process ends the epoch as rank 0 does
            yield from self._honour_pause(p.step)
        return not self._stopping()

    def _stopping(self) -> bool:
        """Whether to stop now: the flag itself, or, with several processes, rank 0's flag as
        last exchanged (a stop asked meanwhile waits for the next exchange, so that every
        process stops at the same batch)."""
        return self._synced_stop if self._world.active else self._stop.is_set()

    def _check_divergence(self, s: _Setup, p: _Progress, loss: float) -> None:
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

    def _set_train_mode(self, s: _Setup, feed: _Feed) -> None:
        if s.plan.fast_path:
            s.model.eval()  # the frozen backbone is not run at all; only the head trains
        feed.trainable.train()

    def _step(self, s: _Setup, feed: _Feed, opt: _Optimisation, images: torch.Tensor,
              labels: torch.Tensor) -> float:
        images = self._prepare_batch(s, images)
        labels = labels.to(s.device, non_blocking=True)
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            loss = opt.criterion(feed.forward(images), labels)
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        opt.scheduler.step()
        return float(loss.item())

    def _honour_pause(self, step: int) -> Generator[Event, None, None]:
        if self._world.active:
            yield from self._follow_main(step)
            return
        if self._running.is_set():
            return
        yield Paused(step)
        self._running.wait()
        if not self._stop.is_set():
            yield Resumed(step)

    def _follow_main(self, step: int) -> Generator[Event, None, None]:
        """Every process pauses and stops with rank 0, at the same batch (rank 0 waits in short
        slices while paused, so the others' wait for it never reaches the timeout)."""
        paused = False
        while True:
            stop, pause = distributed.main_flags(self._stop.is_set(),
                                                 not self._running.is_set(), self.plan_device)
            self._synced_stop = stop
            if stop:
                self._stop.set()
            if stop or not pause:
                break
            if not paused:
                paused = True
                yield Paused(step)
            if self._world.is_main:
                self._running.wait(timeout=1.0)
        if paused and not stop:
            yield Resumed(step)

    @property
    def plan_device(self) -> torch.device:
        """This process's device, as planned."""
        return torch.device(self.plan.device if self.plan is not None else "cpu")

    def _evaluate(self, s: _Setup, feed: _Feed,
                  forward: Callable[[torch.Tensor], torch.Tensor] | None = None
                  ) -> EvalMetrics | None:
        if feed.val_loader is None:
            return None
        s.model.eval()
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            # several processes each evaluate a share; a stop waits for the next batch's check
            spread = self._world.active
            if spread:
                distributed.sync_buffers(s.model)
            # the plain model, not DDP's wrapper: shares may differ by a batch, and DDP's
            # forward would wait for the others to exchange buffers
            forward = forward or (s.model if spread else feed.forward)
            return evaluate(forward, feed.val_loader, s.device, s.class_names,
                            s.train_counts, stop=None if spread else self._stop,
                            prepare=lambda x: self._prepare_batch(s, x),
                            reduce=(lambda v: distributed.sum_counts(v, s.device)) if spread
                            else None)

    def _save(self, s: _Setup, p: _Progress, metrics: EvalMetrics | None,
              opt: _Optimisation | None = None) -> CheckpointSaved:
        score = metrics.balanced_acc if metrics is not None else p.best
        is_best = metrics is None or score > p.best
        p.best = max(p.best, score)
        weights = {
            "model": s.model.state_dict(),
            "epoch": p.epoch, "step": p.step, "best_metric": p.best,
            "class_names": s.class_names, "backbone": self.config.model.backbone,
            **self._extra_state,
        }
        # only last.pt resumes: the optimizer state (as big as the model again) lives there alone
        resumable = {
            **weights,
            "optimizer": opt.optimizer.state_dict() if opt else {},
            "scheduler": opt.scheduler.state_dict() if opt else {},
            "scaler": opt.scaler.state_dict() if opt else {},
            "rng": rng_state(s.generator),
        }
        record = self._record
        assert record is not None
        # best.pt first: a kill between the two writes must never leave last.pt recording a
        # best score whose weights were not saved
        if is_best and getattr(record, "writes", True):  # rank 0 alone writes
            save_checkpoint(weights, record.best_checkpoint)
        if getattr(record, "writes", True):
            save_checkpoint(resumable, record.last_checkpoint)
        return CheckpointSaved(str(record.best_checkpoint if is_best else record.last_checkpoint),
                               is_best)

    def _fit_sklearn(self, s: _Setup, feed: _Feed, p: _Progress) -> Generator[Event, None, None]:
        c = self.config
        yield EpochStarted(1)
        loss_weights = class_weights(s.train_counts, c.data.loss_weighting, c.data.beta)
        layer = fx.fit_sklearn_head(s.plan.head, feed.train_features,  # type: ignore[arg-type]
                                    len(s.class_names), loss_weights, c.train.seed)
        layer.to(s.device)
        self._extra_state["probe_head"] = dict(layer.state_dict())
        metrics = self._evaluate(s, feed, forward=layer)
        if metrics is not None:
            yield EvalDone(1, metrics)
        p.epoch = 1
        yield self._save(s, p, metrics)
        self._store_predictions(s, PooledStageClassifier(s.model, s.plan.feature_stage, layer),
                                best=True)
        yield Finished(str(self._record.path), p.best)  # type: ignore[union-attr]
