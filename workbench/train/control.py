"""Pause, resume and stop a headless run from another process, through a small control file.

The GUI starts a run over several GPUs as a torchrun subprocess; it cannot call the trainer's
`pause()` or `stop()` there, so it writes one word into a file named by WORKBENCH_CONTROL
("pause", "run" or "stop"), and rank 0 follows it between batches (the other ranks follow rank 0).
No torch import here: the CLI's parser reaches this module.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

CONTROL_ENV = "WORKBENCH_CONTROL"
PAUSE, RUN, STOP = "pause", "run", "stop"
POLL_S = 0.25


class Controllable(Protocol):
    """What a control file drives (`engine.Trainer`)."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...


def write_control(path: str | Path, word: str) -> None:
    """Ask the run following `path` to pause, run or stop (atomically: temp file, rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(word, encoding="utf-8")
    os.replace(tmp, path)


def read_control(path: Path) -> str:
    """The word in the control file ("run" when it is missing or unreadable)."""
    try:
        return path.read_text(encoding="utf-8").strip() or RUN
    except OSError:
        return RUN


def follow_control(trainer: Controllable, path: str | Path | None = None) -> threading.Event:
    """Follow the control file (`path`, else WORKBENCH_CONTROL) in a daemon thread until the
    returned event is set; nothing happens when no file is named."""
    done = threading.Event()
    named = path or os.environ.get(CONTROL_ENV)
    if not named:
        return done
    thread = threading.Thread(target=_follow, args=(trainer, Path(named), done),
                              name="run-control", daemon=True)
    thread.start()
    return done


def _follow(trainer: Controllable, path: Path, done: threading.Event) -> None:
    last = RUN
    while not done.wait(POLL_S):
        word = read_control(path)
        if word == last:
            continue
        last = word
        if word == STOP:
            trainer.stop()
        elif word == PAUSE:
            trainer.pause()
        else:
            trainer.resume()
