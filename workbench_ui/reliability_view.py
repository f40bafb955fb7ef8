"""`ReliabilityView`: the reliability diagram of an evaluation, with its calibration error."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from workbench.results.calibration import Reliability


class ReliabilityView(pg.PlotWidget):
    """Accuracy per confidence bin (bars) against the diagonal of perfect calibration."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, title="Reliability diagram")
        self.setBackground("w")
        self.setLabel("bottom", "confidence (top probability)")
        self.setLabel("left", "accuracy")
        self.setXRange(0.0, 1.0)
        self.setYRange(0.0, 1.0)
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=True, y=True, alpha=0.3)
        self.setToolTip("Bars below the diagonal: the model is over-confident in that range")
        diagonal = pg.mkPen("#888", style=Qt.PenStyle.DashLine)
        self.addItem(pg.PlotCurveItem([0, 1], [0, 1], pen=diagonal))
        self.bars: pg.BarGraphItem | None = None
        self.ece: float | None = None

    def set_reliability(self, rel: Reliability | None) -> None:
        """Show one bar per non-empty bin (None: clear)."""
        if self.bars is not None:
            self.removeItem(self.bars)
            self.bars = None
        self.ece = None if rel is None else rel.ece
        if rel is None:
            self.setTitle("Reliability diagram")
            return
        edges = np.asarray(rel.edges)
        full = [i for i, n in enumerate(rel.count) if n]
        self.bars = pg.BarGraphItem(
            x0=edges[full], x1=edges[[i + 1 for i in full]],
            height=[rel.accuracy[i] for i in full], brush=pg.mkBrush("#1f77b4aa"),
            pen=pg.mkPen("#1f4e79"))
        self.addItem(self.bars)
        self.setTitle(f"Reliability diagram: expected calibration error {100 * rel.ece:.1f} %")
