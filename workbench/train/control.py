"""Pause, resume and stop a headless run from another process, through a small control file.

The GUI starts a run over several GPUs as a torchrun subprocess; it cannot call the trainer's
`pause()` or `stop()` there, so it writes one word into a file named by WORKBENCH_CONTROL
("pause", "run" or "stop"), and rank 0 follows it between batches (the other ranks follow rank 0).
`RunControl` holds a run's own stop and pause flags (what the GUI's Stop and Pause set, and what
the control file drives). No torch import here: the CLI's parser reaches this module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Protocol

from workbench.train.callbacks import Callback

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


class RunControl(Callback):
    """A run's stop and pause flags (two `threading.Event`s), honoured between batches.

    As a callback it checks them before each epoch and after every batch; the feature pass
    checks them between its batches through `pausable`. Under torchrun every process follows
    rank 0's flags at the same batch (`follow_main`).
    """

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.world: Any = None  # devices.World of the run, set once the run is planned
        self.device: Any = None  # this process's torch.device, for the exchanges with rank 0
        self._synced_stop = False  # rank 0's stop, as last exchanged with the other processes

    def stop(self) -> None:
        """Ask the run to end after the current batch (also wakes a paused run)."""
        self.stop_event.set()
        self._running.set()

    def pause(self) -> None:
        """Block the run between batches until `resume()` or `stop()`."""
        self._running.clear()

    def resume(self) -> None:
        """Continue a paused run."""
        self._running.set()

    @property
    def spread(self) -> bool:
        """True when the run trains in several processes."""
        return self.world is not None and self.world.active

    def stopping(self) -> bool:
        """Whether to stop now: the flag itself, or, with several processes, rank 0's flag as
        last exchanged (a stop asked meanwhile waits for the next exchange, so that every
        process stops at the same batch)."""
        return self._synced_stop if self.spread else self.stop_event.is_set()

    def on_epoch_start(self, loop: Any, epoch: int) -> Iterator[Any]:
        """Honour a pause (and exchange the flags with rank 0) before the epoch's first batch."""
        return self.honour_pause(loop.progress.step)

    def after_step(self, loop: Any) -> Iterator[Any]:
        """Honour a pause (and exchange the flags with rank 0) after every batch."""
        return self.honour_pause(loop.progress.step)

    def honour_pause(self, step: int) -> Iterator[Any]:
        """Block while paused, yielding `Paused` then `Resumed` (unless stopped meanwhile)."""
        from workbench.train.events import Paused, Resumed

        if self.spread:
            yield from self.follow_main(step)
            return
        if self._running.is_set():
            return
        yield Paused(step)
        self._running.wait()
        if not self.stop_event.is_set():
            yield Resumed(step)

    def follow_main(self, step: int) -> Iterator[Any]:
        """Every process pauses and stops with rank 0, at the same batch (rank 0 waits in short
        slices while paused, so the others' wait for it never reaches the timeout)."""
        from workbench.train import distributed
        from workbench.train.events import Paused, Resumed

        paused = False
        while True:
            stop, pause = distributed.main_flags(self.stop_event.is_set(),
                                                 not self._running.is_set(), self.device)
            self._synced_stop = stop
            if stop:
                self.stop_event.set()
            if stop or not pause:
                break
            if not paused:
                paused = True
                yield Paused(step)
            if self.world.is_main:
                self._running.wait(timeout=1.0)
        if paused and not stop:
            yield Resumed(step)

    def pausable(self, events: Generator[Any, None, Any]) -> Generator[Any, None, Any]:
        """Relay a feature pass's progress events, honouring pause between its batches; returns
        the pass's result (None when stopped)."""
        while True:
            try:
                event = next(events)
            except StopIteration as end:
                return end.value
            yield event
            yield from self.honour_pause(event.done)
            if self.stop_event.is_set():
                events.close()
                return None
