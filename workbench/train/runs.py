"""Old runs as the "Manage runs" list and the Predict and Results tabs see them: listed,
summarised (cheaply: no checkpoint is loaded) and deleted.

No torch import: the run lists fill before torch is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import UserError
from workbench.train.runpaths import CONFIG_NAME, METRICS_NAME, RunPaths

TERMINAL_EVENTS = ("Finished", "Stopped", "Failed")


@dataclass(frozen=True)
class RunInfo:
    """One run folder as the "Manage runs" list shows it."""

    path: Path
    started: float  # epoch seconds: the first recorded event, else the folder's time
    backbone: str
    epochs_done: int
    epochs: int  # the configured total
    best_balanced_acc: float | None  # None before the first evaluation
    outcome: str  # "Finished", "Stopped", "Failed", or "" (running, or killed)
    size_bytes: int


def is_run_dir(path: str | Path) -> bool:
    """True for a real folder (not a link) holding `config.toml` and `metrics.jsonl`."""
    return RunPaths(Path(path)).is_run()


def list_runs(parent: str | Path) -> list[RunInfo]:
    """The run folders directly under `parent`, newest first ([] when it does not exist)."""
    parent = Path(parent).expanduser()
    if not parent.is_dir():
        return []
    runs = [run_info(child) for child in parent.iterdir() if is_run_dir(child)]
    return sorted(runs, key=lambda run: run.started, reverse=True)


def run_info(path: str | Path) -> RunInfo:
    """Read what `list_runs` shows of one run folder (cheaply: no checkpoint is loaded)."""
    paths = RunPaths(Path(path))
    path = paths.root
    config = _raw_config(paths.config)
    started, epochs_done, best, outcome = _scan_metrics(paths.metrics)
    model, train = config.get("model", {}), config.get("train", {})
    return RunInfo(
        path=path, started=started or path.stat().st_mtime,
        backbone=str(model.get("backbone", "?")), epochs_done=epochs_done,
        epochs=int(train.get("epochs", 0)), best_balanced_acc=best, outcome=outcome,
        size_bytes=folder_size(path),
    )


def delete_run(path: str | Path) -> None:
    """Delete a run folder and everything in it; UserError for a folder that is not a run, or
    for a run being written (by this process or another: its lock is held)."""
    path = Path(path).expanduser()
    if not is_run_dir(path):
        raise UserError(f"{path} is not a run folder (it needs {CONFIG_NAME} and "
                        f"{METRICS_NAME}): not deleting it")
    from workbench.train.rundir import _lock_run, _unlock

    lock = _lock_run(path)
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise UserError(f"cannot delete {path}: {exc.strerror or exc}") from None
    finally:
        _unlock(lock)


def folder_size(path: Path) -> int:
    """Bytes taken by the files under `path` (links are not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file removed meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _raw_config(file: Path) -> dict[str, Any]:
    # the TOML as written, not validated: a run made by an older version still gets listed
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _scan_metrics(file: Path) -> tuple[float, int, float | None, str]:
    """First event time, epochs evaluated, best balanced accuracy and how the run ended.

    Batch lines make up nearly all of a long run's log; they are skipped unparsed.
    """
    started, epochs, best, outcome = 0.0, 0, None, ""
    with open(file, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines):
            if '"BatchDone"' in line and number:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            started = started or float(event.get("time", 0.0))
            kind = event.get("event")
            if kind == "EvalDone":
                epochs = max(epochs, int(event.get("epoch", 0)))
                value = (event.get("metrics") or {}).get("balanced_acc")
                if value is not None and (best is None or value > best):
                    best = float(value)
            elif kind in TERMINAL_EVENTS:
                outcome = kind
            elif kind == "RunStarted":
                outcome = ""  # a resumed run: only its latest ending counts
    return started, epochs, best, outcome
