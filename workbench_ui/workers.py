"""`GeneratorWorker`: run a core generator in a QThread and forward its events as signals.

The core's long operations (scans, checks, downloads, training) are generators of typed events.
A worker iterates one in its own QThread and emits each event as a signal; Qt queues it to the
receivers' (GUI) thread, so widgets are only ever touched from the GUI thread.

Usage::

    worker = GeneratorWorker(iter_checks, index, throttle_s=0.1,
                             droppable=lambda e: not e.problems)
    worker.event.connect(on_progress)
    worker.failed.connect(show_error)
    worker.finished.connect(on_done)
    worker.start()
    ...
    worker.stop(); worker.join(2.0)

Stopping is cooperative: `stop()` sets a `threading.Event` that is passed to the generator as
`stop=` when its function takes such a parameter, and the worker also closes the generator at
the next event boundary, so a generator without a `stop` parameter ends after its next yield.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from workbench.errors import Cancelled, UserError

log = logging.getLogger(__name__)

# Workers whose thread may still run: holding a reference keeps Python from deleting a running
# QThread (which aborts the process), and lets the main window join them all on close.
_LIVE: set[GeneratorWorker] = set()


class GeneratorWorker(QObject):
    """Iterates a generator in a QThread; each yielded event becomes an `event` signal.

    Args:
        source: a function returning an iterable of events (called in the worker thread with
            `*args, **kwargs`, plus `stop=<threading.Event>` if it accepts `stop`), or an
            iterable / generator already made.
        throttle_s: with `droppable`, the least time between two emitted droppable events; a
            fast generator then cannot flood the event loop. The last event is always emitted.
        droppable: says which events may be skipped under throttling (e.g. progress events
            that carry nothing else); by default every event is droppable when throttling.

    Signals:
        event(object): one yielded event.
        failed(str): a readable message; `UserError` text as is, other exceptions summarised
            (their traceback goes to the log).
        finished(): always emitted last, after success, failure or stop.
    """

    event = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(
        self,
        source: Callable[..., Iterable[Any]] | Iterable[Any],
        *args: Any,
        throttle_s: float = 0.0,
        droppable: Callable[[Any], bool] | None = None,
        parent: QObject | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(parent)
        self._source, self._args, self._kwargs = source, args, kwargs
        self._throttle_s = throttle_s
        self._droppable = droppable or (lambda _event: True)
        self._stop = threading.Event()
        self._thread = _WorkerThread(self)
        # queued to this object's (GUI) thread: forget the worker once its thread is over
        self._thread.finished.connect(self._forget)
        self.stopped = False  # True when the run ended because stop() was called
        self.error: str | None = None  # the `failed` message, if any

    # -- control (GUI thread) --------------------------------------------------------------
    def start(self) -> None:
        """Start iterating in the worker thread."""
        if self._thread.isRunning():
            return
        _LIVE.add(self)
        self._thread.start()

    def stop(self) -> None:
        """Ask the generator to stop; returns at once (see `join`)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True when it has (or never started)."""
        if timeout is None:
            done = self._thread.wait()
        else:
            done = self._thread.wait(max(0, int(timeout * 1000)))
        if done:
            _LIVE.discard(self)
        return done

    def shutdown(self, timeout: float | None = 5.0) -> bool:
        """Stop and join: what every panel does with its workers on close."""
        self.stop()
        return self.join(timeout)

    def is_running(self) -> bool:
        """True while the worker thread runs."""
        return self._thread.isRunning()

    @property
    def stop_requested(self) -> bool:
        """True once `stop()` was called."""
        return self._stop.is_set()

    @Slot()
    def _forget(self) -> None:
        self._thread.wait()  # the thread is past its last line; this returns at once
        _LIVE.discard(self)

    # -- the worker thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._iterate(self._make_iterator())
        except Cancelled:
            self.stopped = True
        except UserError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a bug: tell the user briefly, keep the traceback in the log
            log.exception("worker failed")
            self._fail(f"Unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.finished.emit()

    def _make_iterator(self) -> Iterator[Any]:
        source = self._source
        if not callable(source):
            return iter(source)
        kwargs = dict(self._kwargs)
        if _accepts_stop(source):
            kwargs["stop"] = self._stop
        return iter(source(*self._args, **kwargs))

    def _iterate(self, events: Iterator[Any]) -> None:
        last_emit, pending = 0.0, None
        try:
            for item in events:
                if self._stop.is_set():
                    self.stopped = True
                    break
                now = time.monotonic()
                recent = now - last_emit < self._throttle_s
                if self._throttle_s and recent and self._droppable(item):
                    pending = item  # keep only the newest skipped event
                    continue
                self.event.emit(item)
                last_emit, pending = now, None
            else:
                self.stopped = self._stop.is_set()
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # runs the generator's cleanup (finally blocks) in this thread
        if pending is not None and not self.stopped:
            self.event.emit(pending)

    def _fail(self, message: str) -> None:
        self.error = message
        self.failed.emit(message)


class _WorkerThread(QThread):
    def __init__(self, worker: GeneratorWorker) -> None:
        super().__init__()
        self._worker = worker
        self.setObjectName(f"GeneratorWorker-{id(worker):x}")

    def run(self) -> None:  # noqa: D102 - QThread entry point
        self._worker._run()


def _accepts_stop(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return "stop" in params


def live_workers() -> list[GeneratorWorker]:
    """Workers started and not yet joined (their thread may have ended by itself)."""
    return [w for w in list(_LIVE) if not w.join(0)]


def stop_all(timeout: float = 5.0) -> bool:
    """Stop every live worker and wait for them; True when all threads ended."""
    workers = list(_LIVE)
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + timeout
    ok = True
    for worker in workers:
        ok = worker.join(max(0.0, deadline - time.monotonic())) and ok
    return ok
