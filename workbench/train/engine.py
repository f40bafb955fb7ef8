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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.data.torch_dataset import ImageDataset
from workbench.errors import UserError
from workbench.train import features as fx
from workbench.train import setup
from workbench.train.checkpoints import load_checkpoint, save_checkpoint
from workbench.train.events import (
    BatchDone,
    CheckpointSaved,
    EpochStarted,
    EvalDone,
    Event,
    Failed,
    Finished,
    Paused,
    Resumed,
    RunStarted,
    Stopped,
)
from workbench.train.losses import build_loss, class_weights
from workbench.train.metrics import EvalMetrics, evaluate
from workbench.train.rundir import RunDir, resumable_checkpoint
from workbench.train.samplers import build_sampler
from workbench.train.schedule import build_scheduler

log = logging.getLogger(__name__)


@dataclass
class _Session:
    """Everything one run needs, assembled by `Trainer._prepare`."""

    index: DatasetIndex
    class_names: list[str]
    train_idx: list[int]
    val_idx: list[int]
    train_counts: list[int]
    device: torch.device
    model: Any
    weights: Any
    generator: torch.Generator | None
    fast_path: bool
    amp: bool = False
    channels_last: bool = False
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    trainable: torch.nn.Module | None = None
    train_loader: Any = None
    val_loader: Any = None
    steps_per_epoch: int = 0
    criterion: Any = None
    optimizer: Any = None
    scheduler: Any = None
    scaler: Any = None
    train_features: fx.FeatureSet | None = None  # the fast path's cached training features
    extra_state: dict[str, Any] = field(default_factory=dict)  # saved in every checkpoint


@dataclass
class _Progress:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps completed
    best: float = -1.0  # best validation balanced accuracy so far
    skipped: int = 0  # images that failed to load


class Trainer:
    """Trains `config` on `index` (or on `config.data.path`), recording into a run directory.

    `run_dir` names the folder to write (a new timestamped one under the runs folder when None);
    with `resume=True` it must be an existing run, continued from its `checkpoints/last.pt`.
    """

    def __init__(self, config: RunConfig, index: DatasetIndex | None = None,
                 run_dir: str | Path | None = None, resume: bool = False) -> None:
        self.config = config.validate()
        self.index = index
        self.run_dir = Path(run_dir) if run_dir else None
        self.resuming = resume
        if resume and self.run_dir is None:
            raise UserError("resuming needs the run folder to continue")
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._record: RunDir | None = None

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
        try:
            for event in self._events():
                self._write(event)
                yield event
        except UserError as exc:
            yield self._failed(str(exc), user_error=True)
        except torch.OutOfMemoryError:
            log.exception("out of memory")
            torch.cuda.empty_cache()
            yield self._failed(f"CUDA out of memory at batch size {self.config.train.batch_size}: "
                               "try a smaller batch size")
        except Exception as exc:
            log.exception("training failed")  # the traceback goes to the log, the line to the user
            yield self._failed(f"training failed: {type(exc).__name__}: {exc}")
        finally:
            if self._record is not None:
                self._record.close()

    def _write(self, event: Event) -> None:
        if self._record is not None:
            self._record.record(event)

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
                         c.train.epochs, self._estimated_steps(s), progress.epoch, s.fast_path)
        ready = yield from self._build_loaders(s)
        if not ready:
            yield Stopped(str(self._record.path))
            return
        if c.model.head in fx.SKLEARN_HEADS:
            # fitted once: a resumed run whose head is fitted has nothing left to do
            yield from (self._fit_sklearn(s, progress) if progress.epoch == 0 else
                        iter([Finished(str(self._record.path), progress.best)]))
            return
        self._build_optimisation(s)
        if checkpoint is not None:
            self._restore(s, checkpoint)
        yield from self._train_epochs(s, progress)

    def _prepare(self) -> _Session:
        c = self.config
        generator = setup.seed_everything(c.train.seed, c.train.deterministic)
        index = setup.load_index(c, self.index)
        train_idx = index.indices(index.training_split())
        val_idx = index.indices("val") if index.training_split() == "train" else []
        if not train_idx:
            raise UserError("the dataset has no training images")
        counts = index.class_counts(index.training_split())
        device = setup.choose_device(c.train.device)
        setup.configure_threads(device)
        model, weights = setup.build_transfer_model(c, index.num_classes)
        s = _Session(index, list(index.class_names), train_idx, val_idx,
                     [counts[n] for n in index.class_names], device, model, weights, generator,
                     fx.uses_fast_path(c, model.num_stages))
        s.amp = device.type == "cuda" and c.train.amp
        s.channels_last = device.type == "cuda" and c.train.channels_last and not s.fast_path
        model.to(device, memory_format=torch.channels_last if s.channels_last else
                 torch.preserve_format)
        return s

    def _read_checkpoint(self, s: _Session) -> dict[str, Any] | None:
        if not self.resuming:
            return None
        assert self.run_dir is not None
        state = load_checkpoint(resumable_checkpoint(self.run_dir), map_location=s.device)
        if list(state.get("class_names", [])) != s.class_names:
            raise UserError(f"cannot resume {self.run_dir}: its classes differ from the dataset's")
        return state

    def _open_record(self, progress: _Progress) -> RunDir:
        if self.resuming:
            assert self.run_dir is not None
            return RunDir.open(self.run_dir, step=progress.step, epoch=progress.epoch,
                               config=self.config)
        if self.run_dir is not None:
            return RunDir.create_at(self.run_dir, self.config)
        return RunDir.create(self.config)

    def _estimated_steps(self, s: _Session) -> int:
        steps = math.ceil(len(s.train_idx) / self.config.train.batch_size)
        limit = self.config.train.limit_train_batches
        return min(steps, limit) if limit else steps

    # -- data ----------------------------------------------------------------------------------

    def _build_loaders(self, s: _Session) -> Generator[Event, None, bool]:
        c = self.config
        val_tf = setup.build_transform(c, s.weights, train=False)
        if s.fast_path:
            return (yield from self._feature_loaders(s, val_tf))
        train_tf = setup.build_transform(c, s.weights, train=True)
        workers = setup.choose_num_workers(c.data.num_workers)
        pin = s.device.type == "cuda"
        labels = [s.index.labels[i] for i in s.train_idx]
        s.train_loader = setup.make_loader(
            ImageDataset(s.index, s.train_idx, train_tf), c.train.batch_size, shuffle=True,
            sampler=build_sampler(labels, c.data.sampling, s.generator), workers=workers,
            pin_memory=pin, generator=s.generator)
        if s.val_idx:
            s.val_loader = setup.make_loader(ImageDataset(s.index, s.val_idx, val_tf),
                                             c.train.batch_size, workers=workers, pin_memory=pin)
        s.forward, s.trainable = s.model, s.model
        s.steps_per_epoch = self._estimated_steps(s)
        return True

    def _feature_loaders(self, s: _Session, transform: Any) -> Generator[Event, None, bool]:
        c = self.config
        stage = fx.feature_stage(c, s.model.num_stages)
        workers = setup.choose_num_workers(c.data.num_workers)
        sets = {}
        for split, idx in (("train", s.train_idx), ("val", s.val_idx)):
            if not idx:
                continue
            loader = setup.make_loader(ImageDataset(s.index, idx, transform), c.train.batch_size,
                                       workers=workers, pin_memory=s.device.type == "cuda")
            key = fx.feature_key(s.index, idx, c, transform, stage)
            sets[split] = yield from fx.iter_features(s.model, loader, key, split=split,
                                                      stage=stage, device=s.device,
                                                      stop=self._stop)
            if sets[split] is None:
                return False
        train = s.train_features = sets["train"]
        s.extra_state["feature_stage"] = stage
        s.train_loader = fx.feature_loader(
            train, c.train.batch_size, shuffle=True, generator=s.generator,
            sampler=build_sampler(train.labels.tolist(), c.data.sampling, s.generator))
        if "val" in sets:
            s.val_loader = fx.feature_loader(sets["val"], c.train.batch_size)
        s.forward, s.trainable = s.model.forward_head, s.model.head
        s.steps_per_epoch = self._estimated_steps(s)
        return True

    def _prepare_batch(self, s: _Session, x: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if s.channels_last else torch.preserve_format
        return x.to(s.device, non_blocking=True, memory_format=fmt)

    # -- optimisation --------------------------------------------------------------------------

    def _build_optimisation(self, s: _Session) -> None:
        c = self.config
        weights = class_weights(s.train_counts, c.data.loss_weighting, c.data.beta)
        s.criterion = build_loss(weights, c.train.label_smoothing).to(s.device)
        groups = s.model.param_groups(c.train.lr, c.model.lr_decay)
        s.optimizer = setup.build_optimizer(c, groups)
        total = c.train.epochs * s.steps_per_epoch
        s.scheduler = build_scheduler(s.optimizer, total,
                                      round(c.train.warmup_epochs * s.steps_per_epoch))
        s.scaler = torch.amp.GradScaler(s.device.type, enabled=s.amp)

    def _restore(self, s: _Session, state: dict[str, Any]) -> None:
        s.model.load_state_dict(state["model"])
        s.optimizer.load_state_dict(state["optimizer"])
        s.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            s.scaler.load_state_dict(state["scaler"])

    def _train_epochs(self, s: _Session, p: _Progress) -> Generator[Event, None, None]:
        run_dir = str(self._record.path)  # type: ignore[union-attr]
        for epoch in range(p.epoch + 1, self.config.train.epochs + 1):
            yield EpochStarted(epoch)
            completed = yield from self._train_one_epoch(s, p, epoch)
            metrics = self._evaluate(s) if completed else None
            if not completed or (s.val_loader is not None and metrics is None):
                yield Stopped(run_dir)
                return
            if metrics is not None:
                yield EvalDone(epoch, metrics)
            p.epoch = epoch
            yield self._save(s, p, metrics)
        yield Finished(run_dir, p.best)

    def _train_one_epoch(self, s: _Session, p: _Progress, epoch: int
                         ) -> Generator[Event, None, bool]:
        self._set_train_mode(s)
        total = self.config.train.epochs * s.steps_per_epoch
        names = [g.get("name", f"group{i}") for i, g in enumerate(s.optimizer.param_groups)]
        done, tick = 0, time.perf_counter()
        for images, labels, skipped in s.train_loader:
            p.skipped += skipped
            yield from self._honour_pause(p.step)
            if self._stop.is_set():
                return False
            if len(labels) == 0:  # every image of the batch failed to load
                continue
            loss = self._step(s, images, labels)
            p.step, done = p.step + 1, done + 1
            now = time.perf_counter()
            rate, tick = len(labels) / max(now - tick, 1e-9), now
            lrs = {n: g["lr"] for n, g in zip(names, s.optimizer.param_groups, strict=True)}
            yield BatchDone(epoch, p.step, total, loss, lrs, rate, setup.gpu_memory_mb(s.device),
                            p.skipped)
            if done >= s.steps_per_epoch or self._stop.is_set():
                break
        return not self._stop.is_set()

    def _set_train_mode(self, s: _Session) -> None:
        if s.fast_path:
            s.model.eval()  # the frozen backbone is not run at all; only the head trains
        s.trainable.train()  # type: ignore[union-attr]

    def _step(self, s: _Session, images: torch.Tensor, labels: torch.Tensor) -> float:
        images = self._prepare_batch(s, images)
        labels = labels.to(s.device, non_blocking=True)
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            loss = s.criterion(s.forward(images), labels)  # type: ignore[misc]
        s.optimizer.zero_grad(set_to_none=True)
        s.scaler.scale(loss).backward()
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.scheduler.step()
        return float(loss.item())

    def _honour_pause(self, step: int) -> Generator[Event, None, None]:
        if self._running.is_set():
            return
        yield Paused(step)
        self._running.wait()
        if not self._stop.is_set():
            yield Resumed(step)

    def _evaluate(self, s: _Session) -> EvalMetrics | None:
        if s.val_loader is None:
            return None
        s.model.eval()
        with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
            return evaluate(s.forward, s.val_loader, s.device, s.class_names,  # type: ignore[arg-type]
                            s.train_counts, stop=self._stop,
                            prepare=lambda x: self._prepare_batch(s, x))

    def _save(self, s: _Session, p: _Progress, metrics: EvalMetrics | None) -> CheckpointSaved:
        score = metrics.balanced_acc if metrics is not None else p.best
        is_best = metrics is None or score > p.best
        p.best = max(p.best, score)
        state = {
            "model": s.model.state_dict(),
            "optimizer": s.optimizer.state_dict() if s.optimizer else {},
            "scheduler": s.scheduler.state_dict() if s.scheduler else {},
            "scaler": s.scaler.state_dict() if s.scaler else {},
            "epoch": p.epoch, "step": p.step, "best_metric": p.best,
            "class_names": s.class_names, "backbone": self.config.model.backbone,
            **s.extra_state,
        }
        record = self._record
        assert record is not None
        save_checkpoint(state, record.last_checkpoint)
        if is_best:
            save_checkpoint(state, record.best_checkpoint)
        return CheckpointSaved(str(record.best_checkpoint if is_best else record.last_checkpoint),
                               is_best)

    def _fit_sklearn(self, s: _Session, p: _Progress) -> Generator[Event, None, None]:
        c = self.config
        yield EpochStarted(1)
        weights = class_weights(s.train_counts, c.data.loss_weighting, c.data.beta)
        layer = fx.fit_sklearn_head(c.model.head, s.train_features,
                                    len(s.class_names), weights, c.train.seed)
        layer.to(s.device)
        s.forward = layer
        s.extra_state["probe_head"] = dict(layer.state_dict())
        metrics = self._evaluate(s)
        if metrics is not None:
            yield EvalDone(1, metrics)
        p.epoch = 1
        yield self._save(s, p, metrics)
        yield Finished(str(self._record.path), p.best)  # type: ignore[union-attr]
