"""`TrainingRun`: one run of the engine in a `GeneratorWorker`, with pause / resume / stop.

The `Trainer` is built inside the worker thread (building a model and its data can take seconds,
and its errors must arrive as messages, not freeze the window). Requests made before it exists
are remembered and applied as soon as it does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject

from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.train.events import BatchDone
from workbench_ui.workers import GeneratorWorker

# At most this often a BatchDone is forwarded to the GUI; faster batches are skipped for display
# only (the run directory records every one), so a tiny model cannot flood the event loop.
BATCH_EVENT_INTERVAL_S = 0.02

# Builds the object whose run() yields engine events and which has stop() / pause() / resume().
# Called as factory(config, index), or factory(config, index, resume_dir=PATH) to continue a run.
TrainerFactory = Callable[..., Any]


def _engine_trainer(config: RunConfig, index: DatasetIndex | None,
                    resume_dir: str | None = None) -> Any:
    """The engine in this process, or, for a plan over several GPUs, a torchrun subprocess
    followed through its metrics.jsonl (same events, same pause and stop)."""
    from workbench.plan import plan_run

    if config.train.gpus > 1 and plan_run(config, index, fix=True).processes > 1:
        from workbench.train.launch import TorchrunJob

        return TorchrunJob(config, index, resume_dir=resume_dir)
    from workbench.train.engine import Trainer  # torch-heavy; imported when a run starts

    return Trainer(config, index, run_dir=resume_dir, resume=resume_dir is not None)


class TrainingRun(QObject):
    """Runs `Trainer(config, index).run()` in a worker (or continues the run in `resume_dir`);
    `worker` carries its signals."""

    def __init__(self, config: RunConfig, index: DatasetIndex | None,
                 parent: QObject | None = None, *,
                 trainer_factory: TrainerFactory | None = None,
                 resume_dir: str | None = None) -> None:
        super().__init__(parent)
        self._config, self._index = config, index
        self._resume_dir = resume_dir  # an existing run folder to continue from its last epoch
        self._factory = trainer_factory or _engine_trainer
        self._lock = threading.Lock()
        self._trainer: Any = None
        self._stop_requested = False
        self.worker = GeneratorWorker(
            self._events, throttle_s=BATCH_EVENT_INTERVAL_S,
            droppable=lambda event: isinstance(event, BatchDone), parent=self,
        )

    def _events(self) -> Iterator[Any]:
        extra = {"resume_dir": self._resume_dir} if self._resume_dir else {}
        trainer = self._factory(self._config, self._index, **extra)
        with self._lock:
            self._trainer = trainer
            if self._stop_requested:
                trainer.stop()
        yield from trainer.run()

    def start(self) -> None:
        """Start training in the worker thread."""
        self.worker.start()

    def pause(self) -> None:
        """Ask the engine to pause after the current batch."""
        with self._lock:
            if self._trainer is not None:
                self._trainer.pause()

    def resume(self) -> None:
        """Let a paused engine continue."""
        with self._lock:
            if self._trainer is not None:
                self._trainer.resume()

    def stop(self) -> None:
        """Ask the engine to stop after the current batch (it then yields `Stopped`)."""
        with self._lock:
            self._stop_requested = True
            if self._trainer is not None:
                self._trainer.stop()

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop the engine and the worker and wait; True when the thread has ended."""
        self.stop()
        return self.worker.shutdown(timeout)

    def is_running(self) -> bool:
        """True while the worker thread runs."""
        return self.worker.is_running()
