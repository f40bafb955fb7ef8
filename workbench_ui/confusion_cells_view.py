"""`ConfusionCellsView`: the confusion matrix of an evaluation, whose cells can be clicked.

The Train tab's `ConfusionView` draws the matrix; this one adds the counts on the cells and a
`cell_clicked(true, predicted)` signal, so the Results tab can show the images behind a cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from workbench_ui.plots import ConfusionView

MAX_LABELLED = 20  # beyond this many classes the cell counts would not fit


class ConfusionCellsView(ConfusionView):
    """The confusion matrix, rows normalised to recall; click a cell to pick its images."""

    cell_clicked = Signal(int, int)  # true class, predicted class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_item.setTitle("Confusion matrix (click a cell)")
        self.setToolTip("Rows are true classes, columns predicted ones; each row is normalised "
                        "(the diagonal is per-class recall). Click a cell to see its images.")
        self.counts = np.zeros((0, 0), dtype=int)
        self._labels: list[pg.TextItem] = []
        self.selected: tuple[int, int] | None = None
        self._outline = pg.PlotCurveItem(pen=pg.mkPen("#e377c2", width=3))
        self.plot_item.addItem(self._outline)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_counts(self, confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> None:
        """Show the matrix of counts `confusion[true][predicted]`, each cell labelled."""
        self.counts = np.asarray(confusion, dtype=int)
        self.set_matrix(confusion, class_names)
        self.select(None)
        for item in self._labels:
            self.plot_item.removeItem(item)
        self._labels = []
        if len(class_names) > MAX_LABELLED:
            return
        for (t, p), n in np.ndenumerate(self.counts):
            if n:
                colour = "#000" if self.matrix[t, p] > 0.6 else "#fff"
                item = pg.TextItem(str(n), color=colour, anchor=(0.5, 0.5))
                item.setPos(p + 0.5, t + 0.5)
                self.plot_item.addItem(item)
                self._labels.append(item)

    def select(self, cell: tuple[int, int] | None) -> None:
        """Outline one (true, predicted) cell, or none."""
        self.selected = cell
        if cell is None:
            self._outline.setData([], [])
            return
        t, p = cell
        self._outline.setData([p, p + 1, p + 1, p, p], [t, t, t + 1, t + 1, t])

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The (true, predicted) cell under data coordinates, or None outside the matrix."""
        n = len(self.counts)
        col, row = int(np.floor(x)), int(np.floor(y))
        if 0 <= row < n and 0 <= col < n:
            return row, col
        return None

    def _clicked(self, event: object) -> None:
        pos = event.scenePos()  # type: ignore[attr-defined]
        if not self.plot_item.sceneBoundingRect().contains(pos):
            return
        point = self.plot_item.vb.mapSceneToView(pos)
        cell = self.cell_at(point.x(), point.y())
        if cell is not None:
            self.cell_clicked.emit(*cell)
