"""The run directory, the unit of record: config, event log, TensorBoard files, checkpoints.

Layout::

    <runs>/<YYYYmmdd-HHMMSS>-<backbone>/
        config.toml          the RunConfig that produced the run
        metrics.jsonl        one JSON object per engine event, flushed as it happens
        events.out.tfevents.*  TensorBoard scalars (loss, LR per group, throughput, val metrics)
        checkpoints/last.pt, best.pt
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.config import RunConfig, load_config, save_config
from workbench.errors import UserError
from workbench.train.events import (
    BatchDone,
    CheckpointSaved,
    EpochStarted,
    EvalDone,
    Event,
    event_from_dict,
)

log = logging.getLogger(__name__)

CONFIG_NAME = "config.toml"
METRICS_NAME = "metrics.jsonl"


class RunDir:
    """An open run directory: appends events to `metrics.jsonl` and TensorBoard as they come."""

    def __init__(self, path: Path, purge_step: int | None = None) -> None:
        self.path = path
        self._log = open(path / METRICS_NAME, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self._purge_step = purge_step
        self._writer: Any = None

    @classmethod
    def create(cls, config: RunConfig) -> RunDir:
        """Make a new timestamped run folder under `train.out_dir` (or the default runs folder)."""
        parent = Path(config.train.out_dir or paths.default_runs_dir()).expanduser()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{stamp}-{config.model.backbone}"
        path, n = parent / name, 1
        while path.exists():  # two runs started in the same second
            n += 1
            path = parent / f"{name}-{n}"
        try:
            (path / "checkpoints").mkdir(parents=True)
        except OSError as exc:
            raise UserError(f"cannot create the run folder {path}: {exc.strerror}") from None
        save_config(config, path / CONFIG_NAME)
        return cls(path)

    @classmethod
    def create_at(cls, path: str | Path, config: RunConfig) -> RunDir:
        """Start a new run in exactly `path` (which must be missing or empty)."""
        path = Path(path).expanduser()
        if path.exists() and any(path.iterdir()):
            raise UserError(f"run folder {path} is not empty: resume it or pick another")
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        save_config(config, path / CONFIG_NAME)
        return cls(path)

    @classmethod
    def open(cls, path: str | Path, step: int = 0, epoch: int = 0,
             config: RunConfig | None = None) -> RunDir:
        """Reopen an existing run to resume it after `step` / `epoch`; later records are dropped.

        `config` (the one the run continues with, e.g. with more epochs) replaces config.toml,
        so the folder keeps describing what produced it.
        """
        path = Path(path).expanduser()
        if not (path / CONFIG_NAME).is_file():
            raise UserError(f"{path} is not a run folder (no {CONFIG_NAME})")
        _truncate_log(path / METRICS_NAME, step, epoch)
        (path / "checkpoints").mkdir(exist_ok=True)
        if config is not None:
            save_config(config, path / CONFIG_NAME)
        return cls(path, purge_step=step)

    @property
    def last_checkpoint(self) -> Path:
        """Where the latest epoch's checkpoint lives."""
        return last_checkpoint(self.path)

    @property
    def best_checkpoint(self) -> Path:
        """Where the best epoch's checkpoint lives (by validation balanced accuracy)."""
        return self.path / "checkpoints" / "best.pt"

    def record(self, event: Event) -> None:
        """Append the event to metrics.jsonl (flushed) and its scalars to TensorBoard."""
        self._log.write(json.dumps(event.to_dict()) + "\n")
        self._log.flush()
        if isinstance(event, BatchDone | EvalDone):
            self._write_scalars(event)

    def _write_scalars(self, event: BatchDone | EvalDone) -> None:
        writer = self._tensorboard()
        if isinstance(event, BatchDone):
            writer.add_scalar("train/loss", event.loss, event.step)
            for group, lr in event.lrs.items():
                writer.add_scalar(f"lr/{group}", lr, event.step)
            writer.add_scalar("perf/images_per_s", event.images_per_s, event.step)
            if event.gpu_mem_mb:
                writer.add_scalar("perf/gpu_mem_mb", event.gpu_mem_mb, event.step)
            return
        m = event.metrics
        for key, value in (("loss", m.loss), ("top1", m.top1), ("balanced_acc", m.balanced_acc)):
            writer.add_scalar(f"val/{key}", value, event.epoch)
        for band, value in m.shot_acc.items():
            if value is not None:
                writer.add_scalar(f"val/{band}_shot_acc", value, event.epoch)

    def _tensorboard(self) -> Any:
        if self._writer is None:
            # imported late: tensorboard takes a moment to import and only runs need it
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.path), purge_step=self._purge_step or None)
        return self._writer

    def close(self) -> None:
        """Flush and close the event log and TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self._log.closed:
            self._log.close()


def last_checkpoint(run_dir: str | Path) -> Path:
    """`checkpoints/last.pt` of a run folder (whether or not it exists)."""
    return Path(run_dir) / "checkpoints" / "last.pt"


def resumable_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint a resume continues from; UserError when no epoch finished."""
    path = last_checkpoint(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} has no checkpoint to resume from (no epoch finished)")
    return path


def read_events(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every recorded event of a run, oldest first (a torn last line is ignored)."""
    file = Path(run_dir) / METRICS_NAME
    if not file.is_file():
        return []
    events = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("ignoring a torn line in %s", file)
    return events


@dataclass(frozen=True)
class RunSummary:
    """What resuming a run starts from: its config, epochs done and the events recorded up to
    its last checkpoint (the curves a resumed run continues)."""

    path: Path
    config: RunConfig
    epochs_done: int
    history: list[Event]


def inspect_run(run_dir: str | Path) -> RunSummary:
    """Read a run folder for resuming; UserError when it is not one or has no checkpoint."""
    path = Path(run_dir).expanduser()
    if not (path / CONFIG_NAME).is_file():
        raise UserError(f"{path} is not a run folder (no {CONFIG_NAME})")
    resumable_checkpoint(path)
    config = load_config(path / CONFIG_NAME)
    events = [e for e in map(event_from_dict, read_events(path)) if e is not None]
    saved = [i for i, e in enumerate(events) if isinstance(e, CheckpointSaved)]
    history = events[: saved[-1] + 1] if saved else []
    epochs = [e.epoch for e in history if isinstance(e, EpochStarted)]
    return RunSummary(path, config, max(epochs, default=0), history)


def _truncate_log(file: Path, step: int, epoch: int) -> None:
    # A resumed run restarts from its last checkpoint: batches and epochs recorded after it are
    # replaced by the re-run ones, so the curves continue without duplicates.
    kept = [e for e in read_events(file.parent) if _before(e, step, epoch)]
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")
    os.replace(tmp, file)


def _before(event: dict[str, Any], step: int, epoch: int) -> bool:
    if "step" in event and event["event"] == "BatchDone":
        return event["step"] <= step
    if "epoch" in event:
        return event["epoch"] <= epoch
    return True
