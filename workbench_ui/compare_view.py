"""`CompareView`: two runs side by side: their metrics, and per-class accuracy deltas."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.results.evaluate import Evaluation
from workbench_ui.plots import _class_ticks

UP, DOWN = "#2ca02c", "#d62728"


def metric_rows(ev: Evaluation) -> dict[str, float | None]:
    """The compared numbers of one evaluation (fractions; ECE lower is better)."""
    m = ev.metrics
    return {"balanced accuracy": m.balanced_acc, "top-1": m.top1,
            "many-shot": m.shot_acc.get("many"), "medium-shot": m.shot_acc.get("medium"),
            "few-shot": m.shot_acc.get("few"), "calibration error (ECE)": ev.calibration.ece,
            "loss": m.loss}


class CompareView(QWidget):
    """This run (A) against another one (B), chosen with the button."""

    choose_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.first: Evaluation | None = None
        self.second: Evaluation | None = None
        self.choose_button = QPushButton("Compare with another run…")
        self.choose_button.clicked.connect(self.choose_requested)
        self.title = QLabel("Evaluate a run, then pick a second one to compare.")
        self.title.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["A: this run", "B: other run", "B − A"])
        self.deltas = pg.PlotWidget(title="Per-class accuracy, B − A (points)")
        self.deltas.setBackground("w")
        self.deltas.setMouseEnabled(x=False, y=False)
        self.deltas.showGrid(y=True, alpha=0.3)
        self.bars: pg.BarGraphItem | None = None
        top = QHBoxLayout()
        top.addWidget(self.choose_button)
        top.addWidget(self.title, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        row = QHBoxLayout()
        row.addWidget(self.table, 2)
        row.addWidget(self.deltas, 3)
        layout.addLayout(row, 1)

    def set_first(self, ev: Evaluation | None) -> None:
        """This run's evaluation (clears the comparison when it changes)."""
        self.first = ev
        self._redraw()

    def set_second(self, ev: Evaluation | None) -> None:
        """The other run's evaluation."""
        self.second = ev
        self._redraw()

    def delta_of(self, class_name: str) -> float | None:
        """B's accuracy minus A's for one class, as drawn (None when either lacks it)."""
        if self.first is None or self.second is None:
            return None
        a = self.first.metrics.per_class_acc.get(class_name)
        b = self.second.metrics.per_class_acc.get(class_name)
        return None if a is None or b is None else b - a

    def _redraw(self) -> None:
        a, b = self.first, self.second
        self.table.setRowCount(0)
        if self.bars is not None:
            self.deltas.removeItem(self.bars)
            self.bars = None
        if a is None or b is None:
            return
        self.title.setText(f"A: {a.run_dir.name} ({a.predictions.checkpoint})   "
                           f"B: {b.run_dir.name} ({b.predictions.checkpoint}), "
                           f"{a.predictions.split} split")
        for name, va in metric_rows(a).items():
            vb = metric_rows(b)[name]
            self._add_row(name, va, vb, lower_is_better=name.startswith(("calib", "loss")))
        names = a.class_names
        d = [self.delta_of(n) for n in names]
        heights = np.array([100 * v if v is not None else 0.0 for v in d])
        self.bars = pg.BarGraphItem(x=np.arange(len(names)), height=heights, width=0.8,
                                    brushes=[pg.mkBrush(UP if h >= 0 else DOWN)
                                             for h in heights])
        self.deltas.addItem(self.bars)
        self.deltas.getAxis("bottom").setTicks([_class_ticks(names)])

    def _add_row(self, name: str, va: float | None, vb: float | None,
                 lower_is_better: bool) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setVerticalHeaderItem(row, QTableWidgetItem(name))
        scale = 1.0 if name == "loss" else 100.0
        for col, value in enumerate((va, vb)):
            text = ("–" if value is None else f"{value:.3f}" if name == "loss" else
                    f"{100 * value:.1f} %")
            self.table.setItem(row, col, QTableWidgetItem(text))
        if va is None or vb is None:
            self.table.setItem(row, 2, QTableWidgetItem("–"))
            return
        delta = vb - va
        item = QTableWidgetItem(f"{scale * delta:+.2f}" if name == "loss" else
                                f"{scale * delta:+.1f}")
        better = delta < 0 if lower_is_better else delta > 0
        if abs(delta) > 1e-9:
            item.setForeground(pg.mkColor(UP if better else DOWN))
        self.table.setItem(row, 2, item)
