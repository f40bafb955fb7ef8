"""`TailView`: per-class accuracy against training count (log scale), and a tau slider.

The slope of the points is the long tail at a glance: classes with few training images sit low.
The slider applies post-hoc logit adjustment (logits - tau * log prior, Menon et al. 2021) to the
stored validation logits and redraws the points and the many / medium / few accuracy at once;
no image is classified again.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from workbench.data.stats import SHOT_BANDS
from workbench.results.logit_adjust import TAU_RANGE, adjusted_metrics, best_tau
from workbench.train.metrics import EvalMetrics
from workbench.train.predictions import Predictions
from workbench_ui.plots import BAND_COLORS

STEPS_PER_UNIT = 100  # the slider moves tau in steps of 0.01


class TailView(QWidget):
    """Accuracy per class vs its training images; the tau slider re-balances the predictions."""

    tau_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: Predictions | None = None
        self.plain: EvalMetrics | None = None
        self.adjusted: EvalMetrics | None = None
        self.plot = pg.PlotWidget(title="Per-class accuracy vs training images "
                                  "(○ as trained, ● with τ)")
        self.plot.setBackground("w")
        self.plot.setLabel("bottom", "training images (log scale)")
        self.plot.setLabel("left", "accuracy")
        self.plot.setYRange(0.0, 1.05)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.before = pg.ScatterPlotItem(size=9, pen=pg.mkPen("#999"), brush=None, symbol="o")
        self.after = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#333", width=0.5))
        self.plot.addItem(self.before)
        self.plot.addItem(self.after)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(TAU_RANGE[0] * STEPS_PER_UNIT), int(TAU_RANGE[1] * STEPS_PER_UNIT))
        self.slider.setToolTip("Post-hoc logit adjustment: logits - tau * log(class prior). "
                               "0 is the model as trained; 1 corrects fully for the training "
                               "imbalance (Menon et al. 2021)")
        self.slider.valueChanged.connect(self._redraw)
        self.tau_label = QLabel()
        self.best_button = QPushButton("Best τ")
        self.best_button.setToolTip("The tau with the highest balanced accuracy on these images")
        self.best_button.clicked.connect(self.choose_best_tau)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self._build_layout()
        self.set_enabled(False)

    def _build_layout(self) -> None:
        row = QHBoxLayout()
        row.addWidget(QLabel("Logit adjustment τ"))
        row.addWidget(self.slider, 1)
        row.addWidget(self.tau_label)
        row.addWidget(self.best_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addLayout(row)
        layout.addWidget(self.summary)

    def set_enabled(self, enabled: bool) -> None:
        """The slider works only with predictions to adjust."""
        self.slider.setEnabled(enabled)
        self.best_button.setEnabled(enabled)

    @property
    def tau(self) -> float:
        """The slider's tau."""
        return self.slider.value() / STEPS_PER_UNIT

    def set_tau(self, tau: float) -> None:
        """Move the slider (redraws)."""
        self.slider.setValue(round(tau * STEPS_PER_UNIT))

    def set_predictions(self, preds: Predictions | None, plain: EvalMetrics | None) -> None:
        """Show an evaluation (None: clear); the slider goes back to 0."""
        self.predictions, self.plain = preds, plain
        self.set_enabled(preds is not None)
        self.slider.blockSignals(True)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self._redraw()

    def choose_best_tau(self) -> None:
        """Move the slider to the tau with the best balanced accuracy."""
        if self.predictions is not None:
            self.set_tau(best_tau(self.predictions)[0])

    def _redraw(self) -> None:
        self.tau_label.setText(f"{self.tau:.2f}")
        if self.predictions is None or self.plain is None:
            self.before.clear()
            self.after.clear()
            self.summary.setText("")
            return
        p = self.predictions
        self.adjusted = adjusted_metrics(p, self.tau) if self.tau else self.plain
        x = np.log10(np.maximum(np.asarray(p.train_counts, dtype=float), 1.0))
        self.plot.getAxis("bottom").setTicks([_log_ticks(x)])
        self.plot.setXRange(float(x.min()) - 0.1, float(x.max()) + 0.1, padding=0)
        names = p.class_names
        self._points(self.before, x, self.plain, names, coloured=False)
        self._points(self.after, x, self.adjusted, names, coloured=True)
        self.before.setVisible(self.tau != 0)
        self.summary.setText(self._summary_text())
        self.tau_changed.emit(self.tau)

    def _points(self, item: pg.ScatterPlotItem, x: np.ndarray, metrics: EvalMetrics,
                names: list[str], coloured: bool) -> None:
        acc = [metrics.per_class_acc.get(n) for n in names]
        keep = [i for i, a in enumerate(acc) if a is not None]
        brushes = [pg.mkBrush(BAND_COLORS.get(metrics.bands.get(names[i], ""), "#7f7f7f"))
                   for i in keep] if coloured else None
        item.setData(x=x[keep], y=[acc[i] for i in keep], brush=brushes,
                     data=[names[i] for i in keep],
                     tip=lambda x, y, data: f"{data}: {100 * y:.1f} % ({10 ** x:.0f} images)")

    def _summary_text(self) -> str:
        assert self.plain is not None and self.adjusted is not None
        parts = [f"balanced accuracy {_pct(self.adjusted.balanced_acc)}"
                 + _delta(self.adjusted.balanced_acc, self.plain.balanced_acc)]
        for band in SHOT_BANDS:
            new, old = self.adjusted.shot_acc.get(band), self.plain.shot_acc.get(band)
            parts.append(f'<span style="color:{BAND_COLORS[band]}">&#9632;</span> {band} '
                         f"{_pct(new)}{_delta(new, old)}")
        return " &nbsp;·&nbsp; ".join(parts)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _delta(new: float | None, old: float | None) -> str:
    if new is None or old is None or abs(new - old) < 5e-4:
        return ""
    return f" ({100 * (new - old):+.1f})"


def _log_ticks(x: np.ndarray) -> list[tuple[float, str]]:
    """Ticks 1, 2, 5, 10, 20, 50... (plain numbers) over the log10 counts `x`."""
    low, high = int(np.floor(x.min())), int(np.ceil(x.max()))
    values = [m * 10**e for e in range(low, high + 1) for m in (1, 2, 5)]
    return [(float(np.log10(v)), f"{v:,}") for v in values
            if x.min() - 0.15 <= np.log10(v) <= x.max() + 0.15]
