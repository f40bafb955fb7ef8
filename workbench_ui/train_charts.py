"""The live charts of a run: curves per batch and per epoch, class bars, confusion matrix.

The view only renders engine events: the x axis of every curve is the epoch (fractional for a
batch, `step / steps_per_epoch`), so batch and epoch curves line up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from workbench.data.stats import SHOT_BANDS
from workbench.train.events import BatchDone, EvalDone, RunStarted
from workbench_ui.plots import BAND_COLORS, ClassAccuracyView, ConfusionView, CurvePlot


def format_shot_accuracy(shot_acc: dict[str, float | None]) -> str:
    """Rich text "■ many 91.0% · ■ medium 74.5% · ■ few –"; the squares are the bars' legend."""
    parts = []
    for band in SHOT_BANDS:
        value = shot_acc.get(band)
        shown = "–" if value is None else f"{100 * value:.1f}%"
        parts.append(f'<span style="color:{BAND_COLORS[band]}">&#9632;</span> {band} {shown}')
    return "Shot-band accuracy (val):&nbsp; " + " &nbsp;·&nbsp; ".join(parts)


class TrainChartsView(QWidget):
    """Loss, accuracy, learning rate, throughput, per-class accuracy and the confusion matrix."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss = CurvePlot("Loss", "cross-entropy")
        self.accuracy = CurvePlot("Accuracy (val)", "fraction")
        self.accuracy.setYRange(0.0, 1.0)
        # empty, a log plot would span 1..10: show where learning rates live instead
        self.lr = CurvePlot("Learning rate per group", "lr", log_y=True, empty_y=(-4.0, -1.0))
        self.throughput = CurvePlot("Throughput", "images / s", legend=False)
        self.class_acc = ClassAccuracyView()
        self.confusion = ConfusionView()
        self.shot_label = QLabel(format_shot_accuracy({}))
        self.shot_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.shot_label.setTextFormat(Qt.TextFormat.RichText)
        self.shot_label.setToolTip("Mean per-class accuracy of the classes with more than 100 "
                                   "(many), 20-100 (medium) and under 20 (few) training images")
        self._steps_per_epoch = 1
        self._build_layout()

    def _build_layout(self) -> None:
        curves = QWidget()
        grid = QGridLayout(curves)
        grid.setContentsMargins(0, 0, 0, 0)
        for position, plot in enumerate((self.loss, self.accuracy, self.lr, self.throughput)):
            plot.setMinimumHeight(150)
            grid.addWidget(plot, position // 2, position % 2)
        classes = QWidget()
        column = QVBoxLayout(classes)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.class_acc, 1)
        column.addWidget(self.shot_label)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(classes)
        bottom.addWidget(self.confusion)
        bottom.setSizes([520, 480])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(curves)
        split.addWidget(bottom)
        split.setSizes([500, 350])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def plots(self) -> list[CurvePlot]:
        """The four curve plots."""
        return [self.loss, self.accuracy, self.lr, self.throughput]

    def show_event(self, event: Any) -> None:
        """Render one engine event (events that carry nothing to plot are ignored)."""
        if isinstance(event, RunStarted):
            self._start(event)
        elif isinstance(event, BatchDone):
            self._add_batch(event)
        elif isinstance(event, EvalDone):
            self._add_eval(event)

    def _start(self, event: RunStarted) -> None:
        self._steps_per_epoch = max(1, event.steps_per_epoch)
        if event.start_epoch == 0:
            self.clear(event.epochs)

    def clear(self, epochs: int = 1) -> None:
        """Empty every chart: curves (spanning `epochs` until points come), class bars,
        shot-band line and confusion matrix."""
        for plot in self.plots():
            plot.clear_curves(epochs)
        self.class_acc.clear_bars()
        self.confusion.clear_matrix()
        self.shot_label.setText(format_shot_accuracy({}))

    def _add_batch(self, event: BatchDone) -> None:
        x = event.step / self._steps_per_epoch
        self.loss.add_point("train", x, event.loss)
        for group, lr in event.lrs.items():
            self.lr.add_point(group, x, lr)
        self.throughput.add_point("images/s", x, event.images_per_s)

    def _add_eval(self, event: EvalDone) -> None:
        metrics = event.metrics
        self.loss.add_point("val", event.epoch, metrics.loss, symbol="o")
        self.accuracy.add_point("top-1", event.epoch, metrics.top1, symbol="o")
        self.accuracy.add_point("balanced", event.epoch, metrics.balanced_acc, symbol="o")
        names = list(metrics.per_class_acc)
        accuracy = [float("nan") if v is None else v for v in metrics.per_class_acc.values()]
        bands = [metrics.bands.get(name, "") for name in names]
        self.class_acc.set_accuracy(names, accuracy, bands)
        self.shot_label.setText(format_shot_accuracy(metrics.shot_acc))
        self.confusion.set_matrix(metrics.confusion, names)

    def replay(self, events: Iterable[Any]) -> None:
        """Draw a recorded run's curves (a resumed run then continues them)."""
        for event in events:
            self.show_event(event)
        self.flush()

    def flush(self) -> None:
        """Redraw pending points now (the throttle timer would do it within a few hundred ms)."""
        for plot in self.plots():
            plot.flush()
