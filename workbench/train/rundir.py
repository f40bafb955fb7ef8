"""The run directory, the unit of record: config, event log, TensorBoard files, checkpoints.

The folder's layout is `train.runpaths.RunPaths`; this module writes and reads it.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.config import RunConfig, load_config, save_config
from workbench.errors import UserError
from workbench.train import epoch_table
from workbench.train.checkpoints import mount_point
from workbench.train.epoch_table import EpochTable, csv_text
from workbench.train.events import (
    BatchDone,
    CheckpointSaved,
    EpochStarted,
    EvalDone,
    Event,
    event_from_dict,
)
from workbench.train.runpaths import CONFIG_NAME, RunPaths

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_ACQUIRE = -1  # RunDir(lock=...) default: take the folder's lock now


class RunDir:
    """An open run directory: appends events to `metrics.jsonl` and TensorBoard as they come.

    While open, the folder is locked (`.lock`, an exclusive `flock`): a second process that
    tries to write the same run is refused with one line instead of interleaving its records.
    The lock goes with the process, so a killed run never leaves its folder locked.
    """

    writes = True  # the process that holds it writes the run (see distributed.FollowerRecord)

    def __init__(self, path: Path, purge_step: int | None = None,
                 lock: int | None = _ACQUIRE, table: EpochTable | None = None) -> None:
        self.path = path
        self.paths = RunPaths(path)
        self._lock = _lock_run(path) if lock == _ACQUIRE else lock
        self._log = open(self.paths.metrics, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self._purge_step = purge_step
        self._writer: Any = None
        self._step = purge_step or 0  # the last training step: TensorBoard's one x axis
        self._table = table or EpochTable()

    @classmethod
    def create(cls, config: RunConfig) -> RunDir:
        """Make a new timestamped run folder under `train.out_dir` (or the default runs folder).

        The name is claimed by `mkdir` itself (no check-then-create), so two runs started in the
        same second, in two processes, get two folders.
        """
        return cls._start(claim_run_folder(config), config)

    @classmethod
    def create_at(cls, path: str | Path, config: RunConfig) -> RunDir:
        """Start a new run in exactly `path` (which must be missing or empty)."""
        path = Path(path).expanduser()
        if path.exists() and any(path.iterdir()):
            raise UserError(f"run folder {path} is not empty: resume it or pick another")
        path.mkdir(parents=True, exist_ok=True)
        return cls._start(path, config)

    @classmethod
    def _start(cls, path: Path, config: RunConfig) -> RunDir:
        run = cls(path)  # locked before anything is written
        run.paths.checkpoints.mkdir(exist_ok=True)
        run.paths.metrics_csv.write_text(csv_text([], header=True), encoding="utf-8")
        save_config(config, run.paths.config)
        return run

    @classmethod
    def open(cls, path: str | Path, step: int = 0, epoch: int = 0,
             config: RunConfig | None = None) -> RunDir:
        """Reopen an existing run to resume it after `step` / `epoch`; later records are dropped.

        `config` (the one the run continues with, e.g. with more epochs) replaces config.toml,
        so the folder keeps describing what produced it.
        """
        paths = RunPaths.of(path)
        path = paths.root
        if not paths.config.is_file():
            raise UserError(f"{path} is not a run folder (no {CONFIG_NAME})")
        lock = _lock_run(path)  # before the log is touched: another writer may hold it
        try:
            _truncate_log(paths.metrics, step, epoch)
            table = epoch_table.rewrite(paths.metrics_csv, read_events(path))
            paths.checkpoints.mkdir(exist_ok=True)
            if config is not None:
                save_config(config, paths.config)
        except BaseException:
            _unlock(lock)
            raise
        return cls(path, purge_step=step, lock=lock, table=table)

    @property
    def last_checkpoint(self) -> Path:
        """Where the latest epoch's checkpoint lives."""
        return self.paths.last

    @property
    def best_checkpoint(self) -> Path:
        """Where the best epoch's checkpoint lives (by validation balanced accuracy)."""
        return self.paths.best

    def record(self, event: Event) -> None:
        """Append the event to metrics.jsonl (flushed) and its scalars to TensorBoard.

        Values that are not numbers (NaN, infinity) are written as null, with a note saying
        why: most JSON readers reject NaN.
        """
        record = event.to_dict()
        line = json_line(record)
        try:
            self._log.write(line + "\n")
            self._log.flush()
            row = self._table.add(record)
            if row is not None:
                with open(self.paths.metrics_csv, "a", encoding="utf-8") as table:
                    table.write(csv_text([row], header=False))
        except OSError as exc:
            raise UserError(_write_failure(self.paths.metrics, exc)) from None
        if isinstance(event, BatchDone | EvalDone):
            self._write_scalars(event)

    def _write_scalars(self, event: BatchDone | EvalDone) -> None:
        # one x axis for every curve: the training step (validation at its epoch's last step)
        writer = self._tensorboard()
        if isinstance(event, BatchDone):
            self._step = event.step
            writer.add_scalar("train/loss", event.loss, event.step)
            for group, lr in event.lrs.items():
                writer.add_scalar(f"lr/{group}", lr, event.step)
            writer.add_scalar("perf/images_per_s", event.images_per_s, event.step)
            if event.gpu_mem_mb:
                writer.add_scalar("perf/gpu_mem_mb", event.gpu_mem_mb, event.step)
            return
        m = event.metrics
        for key, value in (("loss", m.loss), ("top1", m.top1), ("balanced_acc", m.balanced_acc)):
            writer.add_scalar(f"val/{key}", value, self._step)
        writer.add_scalar("val/epoch", event.epoch, self._step)
        for band, value in m.shot_acc.items():
            if value is not None:
                writer.add_scalar(f"val/{band}_shot_acc", value, self._step)

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
            try:
                self._log.close()
            except OSError:  # a full disk: the records written so far are on it
                log.warning("closing %s failed", self.paths.metrics, exc_info=True)
        _unlock(self._lock)
        self._lock = None


def claim_run_folder(config: RunConfig) -> Path:
    """Create a new, empty timestamped run folder under `train.out_dir` (or the default runs
    folder) and return it; UserError when it cannot be made."""
    parent = Path(config.train.out_dir or paths.default_runs_dir()).expanduser()
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model.backbone}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return _claim_folder(parent, name)
    except OSError as exc:
        raise UserError(f"cannot create the run folder in {parent}: "
                        f"{exc.strerror or exc}") from None


def _claim_folder(parent: Path, name: str) -> Path:
    """Create `parent/name` (or `name-2`, `name-3`, ...), whichever `mkdir` wins first."""
    for n in range(1, 10_000):
        path = parent / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise UserError(f"cannot create the run folder in {parent}: 10,000 runs named {name}")


def _lock_run(path: Path) -> int | None:
    """An exclusive lock on the run folder (None where `fcntl` is missing, e.g. Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot open the run folder {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(f"{path} is being written by another workbench process; wait for it "
                        "to finish or stop it first") from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing releases the flock


def json_line(record: dict[str, Any]) -> str:
    """One JSON line; NaN and infinities become null (with a `note`), never invalid JSON."""
    try:
        return json.dumps(record, allow_nan=False)
    except ValueError:
        pass
    clean = _finite(record)
    note = ("no validation image could be loaded: loss and accuracy are undefined"
            if record.get("event") == "EvalDone"
            and not (record.get("metrics") or {}).get("num_images") else
            "values that were not numbers (NaN or infinity) are written as null")
    return json.dumps({**clean, "note": note}, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _write_failure(file: Path, exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on {mount_point(file)}: cannot write {file}"
    return f"cannot write {file}: {exc.strerror or exc}"


def last_checkpoint(run_dir: str | Path) -> Path:
    """`checkpoints/last.pt` of a run folder (whether or not it exists)."""
    return RunPaths(Path(run_dir)).last


def resumable_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint a resume continues from; UserError when no epoch finished."""
    path = last_checkpoint(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} has no checkpoint to resume from (no epoch finished)")
    return path


def read_events(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every recorded event of a run, oldest first (a torn last line is ignored)."""
    file = RunPaths(Path(run_dir)).metrics
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
    paths = RunPaths.of(run_dir)
    path = paths.root
    if not paths.config.is_file():
        raise UserError(f"{path} is not a run folder (no {CONFIG_NAME})")
    resumable_checkpoint(path)
    config = load_config(paths.config)
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
