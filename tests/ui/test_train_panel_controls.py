"""Train panel controls against a scripted trainer: button states, pause, stop, failures, options.

A scripted trainer yields the engine's real event types on a timetable, so these tests pin the
panel's behaviour exactly; tests/ui/test_train_panel_engine.py runs the real engine.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.train.events import (
    BatchDone,
    EpochStarted,
    EvalDone,
    Failed,
    Finished,
    Paused,
    Resumed,
    RunStarted,
    Stopped,
)
from workbench.train.metrics import compute_metrics
from workbench_ui.state import AppState
from workbench_ui.train_panel import RunState, TrainPanel

CLASSES = ["cat", "dog", "owl"]


class ScriptedTrainer:
    """Yields a plausible run: `epochs` x `steps` batches `delay` s apart, honouring the flags."""

    def __init__(self, epochs: int = 2, steps: int = 5, delay: float = 0.01,
                 fail_at: int | None = None, message: str = "") -> None:
        self.epochs, self.steps, self.delay = epochs, steps, delay
        self.fail_at, self.message = fail_at, message
        self._stop, self._pause = threading.Event(), threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def run(self):
        yield RunStarted("/tmp/run-x", "cpu", 60, 30, self.epochs, self.steps)
        step = 0
        for epoch in range(1, self.epochs + 1):
            yield EpochStarted(epoch)
            for _ in range(self.steps):
                step += 1
                if step == self.fail_at:
                    yield Failed(self.message)
                    return
                if self._pause.is_set():
                    yield Paused(step)
                    while self._pause.is_set() and not self._stop.is_set():
                        time.sleep(0.005)
                    yield Resumed(step)
                if self._stop.is_set():
                    yield Stopped("/tmp/run-x")
                    return
                time.sleep(self.delay)
                yield BatchDone(epoch, step, self.epochs * self.steps, 1.0 / step,
                                {"head": 0.01, "stage4": 0.004}, 500.0, skipped_images=1)
            yield EvalDone(epoch, _metrics(epoch))
        yield Finished("/tmp/run-x", 0.9)


def _metrics(epoch: int):
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, epoch % 3, 2, 0])
    return compute_metrics(y_true, y_pred, 0.5, CLASSES, [150, 50, 5])


def _state(tmp_path: Path) -> AppState:
    index = DatasetIndex(root=tmp_path, source="folder", class_names=CLASSES,
                         paths=[str(tmp_path / f"{i}.png") for i in range(9)],
                         labels=[0, 0, 0, 0, 0, 1, 1, 2, 2], splits=["train"] * 9)
    state = AppState(RunConfig())
    state.set_dataset(index)
    return state


def _panel(qtbot, tmp_path: Path, **script) -> TrainPanel:
    panel = TrainPanel(_state(tmp_path), trainer_factory=lambda c, i: ScriptedTrainer(**script))
    qtbot.addWidget(panel)
    return panel


def test_buttons_follow_the_run(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, delay=0.005)
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert not panel.pause_button.isEnabled()
    with qtbot.waitSignal(panel.run_finished, timeout=5000) as finished:
        panel.start()
        assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
        assert not panel.options.epochs.isEnabled()  # options are fixed while training
    assert finished.args == ["/tmp/run-x"]
    assert panel.run_state is RunState.IDLE and not panel.busy()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.options.epochs.isEnabled()
    assert panel.run_dir_label.text() == "/tmp/run-x" and panel.open_folder_button.isEnabled()
    assert "Finished" in panel.progress.status.text()
    assert panel.progress.bar.value() == panel.progress.bar.maximum()


def test_charts_fill_from_events(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, delay=0.03)
    with qtbot.waitSignal(panel.run_finished, timeout=5000):
        panel.start()
    charts = panel.charts
    assert charts.loss.curve_names() == ["train", "val"]
    assert len(charts.loss.series("val")) == 2
    assert set(charts.lr.curve_names()) == {"head", "stage4"}
    assert charts.accuracy.curve_names() == ["top-1", "balanced"]
    assert charts.confusion.matrix.shape == (3, 3)
    assert len(charts.class_acc.heights) == 3
    assert "many 100.0%" in charts.shot_label.text()
    # the scripted run reports one unreadable image: the user is told it was skipped
    assert "skipped 1 time(s)" in panel.notice.text()


def test_pause_then_resume(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, steps=200, delay=0.01)
    panel.start()
    qtbot.waitUntil(lambda: panel.run_state is RunState.RUNNING, timeout=3000)
    panel.pause_button.click()
    qtbot.waitUntil(lambda: panel.run_state is RunState.PAUSED, timeout=3000)
    assert panel.pause_button.text() == "Resume" and panel.pause_button.isEnabled()
    value = panel.progress.bar.value()
    qtbot.wait(200)
    assert panel.progress.bar.value() == value  # nothing trains while paused
    panel.pause_button.click()
    assert panel.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: panel.progress.bar.value() > value + 2, timeout=3000)
    with qtbot.waitSignal(panel.run_finished, timeout=3000):
        panel.stop()


def test_stop_ends_the_run_promptly(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, steps=10_000, delay=0.01)
    panel.start()
    qtbot.waitUntil(lambda: panel.run_state is RunState.RUNNING, timeout=3000)
    started = time.monotonic()
    with qtbot.waitSignal(panel.run_finished, timeout=5000):
        panel.stop_button.click()
        assert not panel.stop_button.isEnabled()
    # the scripted run has 100 s of steps left: a bound far from that, loose for shared machines
    assert time.monotonic() - started < 5.0
    # the scripted run never finishes an epoch: the line says the stop kept nothing
    assert panel.progress.status.text() == "Stopped before epoch 1 ended: nothing kept"
    assert not panel.busy()


@pytest.mark.parametrize("message, expected", [
    ("CUDA out of memory. Tried to allocate 2 GiB", "try a smaller batch size"),
    ("data.path: no such folder", "data.path: no such folder"),
])
def test_failure_is_shown_and_panel_returns_to_idle(qtbot, tmp_path, message, expected):
    panel = _panel(qtbot, tmp_path, fail_at=3, message=message)
    with qtbot.waitSignal(panel.run_finished, timeout=5000):
        panel.start()
    assert expected in panel.notice.text() and panel.notice.kind == "error"
    assert panel.run_state is RunState.IDLE and panel.start_button.isEnabled()


def test_exception_while_building_the_trainer_is_shown(qtbot, tmp_path):
    def broken(config, index):
        raise RuntimeError("weights file is damaged")

    panel = TrainPanel(_state(tmp_path), trainer_factory=broken)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.run_finished, timeout=5000):
        panel.start()
    assert "weights file is damaged" in panel.notice.text()
    assert panel.start_button.isEnabled()


def test_shutdown_mid_run_leaves_no_thread(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, steps=10_000, delay=0.01)
    panel.start()
    qtbot.waitUntil(lambda: panel.run_state is RunState.RUNNING, timeout=3000)
    assert panel.busy()
    started = time.monotonic()
    assert panel.shutdown()
    assert time.monotonic() - started < 5.0  # not the 100 s of steps left
    assert not panel.busy()


def test_shutdown_while_paused(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, steps=10_000, delay=0.01)
    panel.start()
    qtbot.waitUntil(lambda: panel.run_state is RunState.RUNNING, timeout=3000)
    panel.pause_button.click()
    qtbot.waitUntil(lambda: panel.run_state is RunState.PAUSED, timeout=3000)
    assert panel.shutdown() and not panel.busy()


def test_options_edit_the_config(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path)
    state = panel._state
    panel.options.epochs.setValue(7)
    panel.options.optimizer.setCurrentIndex(panel.options.optimizer.findData("adamw"))
    panel.options.augment.setCurrentIndex(panel.options.augment.findData("strong"))
    assert state.config.train.epochs == 7 and state.config.train.optimizer == "adamw"
    assert state.config.data.augment == "strong"
    state.update_config(train={"batch_size": 12})  # edited elsewhere: the form follows
    assert panel.options.batch_size.value() == 12


def test_imbalance_controls(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path)
    view = panel.imbalance
    assert "Imbalance ratio 2.5" in view.summary.text()
    assert not view.beta.isEnabled()
    view.loss_weighting.setCurrentIndex(view.loss_weighting.findData("effective_number"))
    assert view.beta.isEnabled()
    view.beta.setValue(0.99)
    view.sampling.setCurrentIndex(view.sampling.findData("sqrt"))
    data = panel._state.config.data
    assert (data.loss_weighting, data.beta, data.sampling) == ("effective_number", 0.99, "sqrt")


def test_start_without_dataset_says_so(qtbot):
    panel = TrainPanel(AppState(RunConfig()))
    qtbot.addWidget(panel)
    panel.start()
    assert "Open a dataset first" in panel.notice.text() and not panel.busy()


def test_closing_the_main_window_mid_training_stops_and_joins(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from workbench_ui import train_run
    from workbench_ui.main_window import MainWindow
    from workbench_ui.workers import live_workers

    monkeypatch.setattr(train_run, "_engine_trainer",
                        lambda config, index: ScriptedTrainer(steps=10_000, delay=0.01))
    asked = []

    def answer_yes(*args, **kwargs):
        asked.append(args)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer_yes)
    window = MainWindow(_state(tmp_path))
    qtbot.addWidget(window)
    panel = next(p for p in window.panels if isinstance(p, TrainPanel))
    panel.start()
    qtbot.waitUntil(lambda: panel.run_state is RunState.RUNNING, timeout=3000)
    started = time.monotonic()
    window.close()
    assert asked, "closing during training must ask first"
    assert time.monotonic() - started < 5.0  # not the 100 s of steps left
    assert not panel.busy() and not live_workers()


def test_feature_extraction_moves_the_progress_bar(qtbot):
    from workbench.train.events import FeaturesProgress
    from workbench_ui.train_progress import ProgressView

    view = ProgressView()
    qtbot.addWidget(view)
    view.show_event(RunStarted("/tmp/run-x", "cpu", 60, 30, 2, 4, fast_path=True))
    view.show_event(FeaturesProgress("train", 30, 60))
    assert (view.bar.value(), view.bar.maximum()) == (30, 60)
    assert "features (train)" in view.bar.format() and "computing" in view.status.text()
    view.show_event(BatchDone(1, 1, 8, 0.5, {"head": 0.1}, 100.0))
    assert (view.bar.value(), view.bar.maximum(), view.bar.format()) == (1, 8, "%p%")
