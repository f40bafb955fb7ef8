"""The Train tab's LR finder: the range test on the current plan, its curve, one-click apply.

`train.lr_find.iter_lr_find` runs in a worker thread (cancellable with Stop); the curve grows
as the steps come in (loss against learning rate, log x), the suggestion is marked with a
vertical line, and "Use this LR" writes it into `train.lr` through the app state.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench_ui.state import AppState
from workbench_ui.workers import GeneratorWorker

STEPS = 100  # as train.lr_find.STEPS (not imported: it would load torch at the window's start)


class LrFinderView(QGroupBox):
    """Find a learning rate (Smith 2017): run, watch the curve, use the suggestion."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Learning-rate finder", parent)
        self._state = state
        self.worker: GeneratorWorker | None = None
        self.result: Any = None  # train.lr_find.LrFindResult
        self.steps = STEPS  # batches of the range test
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self.run_button = QPushButton("Find learning rate")
        self.run_button.setToolTip("A short range test on the planned run (100 batches, learning "
                                   "rate 1e-7 to 10); the weights are left as they were")
        self.stop_button = QPushButton("Stop")
        self.use_button = QPushButton("Use this LR")
        self.use_button.setToolTip("Set the learning rate (Training options) to the suggestion")
        self.status = QLabel("Suggests a learning rate for the options as they are now.")
        self.status.setWordWrap(True)
        self.plot = self._make_plot()
        self.run_button.clicked.connect(self.find)
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self.use_suggestion)
        state.running_changed.connect(self._set_idle_buttons)
        self._build_layout()
        self._set_idle_buttons()

    def _make_plot(self) -> pg.PlotWidget:
        plot = pg.PlotWidget()
        plot.setBackground("w")
        plot.showGrid(x=True, y=True, alpha=0.3)
        plot.setLogMode(x=True, y=False)
        plot.setLabel("bottom", "learning rate (head)")
        plot.setLabel("left", "loss (smoothed)")
        plot.setMinimumHeight(180)
        self.curve = plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", width=1.5,
                                                             style=pg.QtCore.Qt.PenStyle.DashLine))
        self.marker.setVisible(False)
        plot.addItem(self.marker)
        return plot

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.run_button, self.stop_button, self.use_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.addLayout(buttons)
        column.addWidget(self.status)
        column.addWidget(self.plot, 1)

    def busy(self) -> bool:
        """True while a range test runs."""
        return self.worker is not None and self.worker.is_running()

    def find(self) -> bool:
        """Start the range test in a worker; False (and a line saying why) when it cannot."""
        if self.busy() or self._state.running:
            return False
        blocker = self._state.plan_blocker()
        if blocker:
            self.status.setText(blocker)
            return False
        plan, index = self._state.plan, self._state.index
        from workbench.train.lr_find import iter_lr_find

        self.result, self._lrs, self._losses = None, [], []
        self.curve.setData([], [])
        self.marker.setVisible(False)
        self.worker = GeneratorWorker(iter_lr_find, plan.config, index, plan=plan,
                                      steps=self.steps, parent=self, throttle_s=0.2,
                                      droppable=_is_progress)
        self.worker.event.connect(self._on_event)
        self.worker.failed.connect(self.status.setText)
        self.worker.finished.connect(self._on_finished)
        self.status.setText("Building the model and data…")
        self.worker.start()
        self._set_idle_buttons()
        return True

    def stop(self) -> None:
        """Cancel the range test (the weights are restored by the core)."""
        if self.worker is not None:
            self.worker.stop()
            self.status.setText("Stopped.")

    def use_suggestion(self) -> None:
        """Write the suggested learning rate into the config."""
        if self.result is not None:
            self._state.update_config(train={"lr": float(f"{self.result.suggested:.3g}")})
            self.status.setText(f"Learning rate set to {self.result.suggested:.3g}.")

    def _on_event(self, event: Any) -> None:
        from workbench.train.lr_find import LrFindResult

        if isinstance(event, LrFindResult):
            self.show_result(event)
            return
        self._lrs.append(event.lr)
        self._losses.append(event.loss)
        self.curve.setData(self._lrs, self._losses)
        self.status.setText(f"Step {event.step} of {event.total}: learning rate "
                            f"{event.lr:.1e}, loss {event.loss:.3f}")

    def show_result(self, result: Any) -> None:
        """Draw the whole curve and mark the suggestion."""
        self.result = result
        self.curve.setData(list(result.lrs), list(result.losses))
        self.marker.setValue(math.log10(result.suggested))  # log-x plot: the axis is log10
        self.marker.setVisible(True)
        steepest = f"{result.steepest:.2g}" if result.steepest is not None else "n/a"
        ended = " (stopped early: the loss took off)" if result.stopped_early else ""
        self.status.setText(f"Suggested learning rate: {result.suggested:.2g} ({result.rule}; "
                            f"lowest loss at {result.minimum:.2g}, steepest descent at "
                            f"{steepest}){ended}")
        self._set_idle_buttons()

    def _on_finished(self) -> None:
        if self.worker is not None:
            self.worker.join(1.0)  # past its last event: returns at once
        self._set_idle_buttons()

    def _set_idle_buttons(self, *_args: Any) -> None:
        busy = self.busy()
        self.run_button.setEnabled(not busy and not self._state.running)
        self.stop_button.setEnabled(busy)
        self.use_button.setEnabled(not busy and self.result is not None)

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop and join the worker; True when no thread is left running."""
        return self.worker is None or self.worker.shutdown(timeout)


def _is_progress(event: Any) -> bool:
    from workbench.train.lr_find import LrFindProgress

    return isinstance(event, LrFindProgress)
