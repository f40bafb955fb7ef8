"""`PerClassView`: the per-class metrics of an evaluation as a sortable table."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem, QWidget

from workbench.results.evaluate import Evaluation
from workbench_ui.plots import BAND_COLORS

COLUMNS = ("class", "training images", "band", "precision", "recall", "F1", "val images")


class _Item(QTableWidgetItem):
    """A cell that sorts by its number (None last), not by its text."""

    def __init__(self, text: str, key: float | str) -> None:
        super().__init__(text)
        self.key = key
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        other_key = getattr(other, "key", "")
        if isinstance(self.key, str) or isinstance(other_key, str):
            return str(self.key) < str(other_key)
        return self.key < other_key


class PerClassView(QTableWidget):
    """One row per class: training count, shot band, precision, recall, F1, support."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        # the dataset's class order to begin with, and the header's arrow saying so (Qt's
        # default indicator is column 0 descending: rows 9..0 under an arrow nobody set)
        self.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)

    def set_evaluation(self, ev: Evaluation | None) -> None:
        """Show an evaluation's classes (None: empty)."""
        self.setSortingEnabled(False)  # filling a sorted table would shuffle rows meanwhile
        self.setRowCount(0)
        if ev is not None:
            self.setRowCount(len(ev.class_names))
            for row, name in enumerate(ev.class_names):
                self._fill(row, ev, name)
        self.setSortingEnabled(True)
        self.resizeColumnsToContents()

    def _fill(self, row: int, ev: Evaluation, name: str) -> None:
        c = ev.class_names.index(name)
        band = ev.metrics.bands.get(name, "")
        cells = [_Item(name, c), _number(ev.predictions.train_counts[c]), _Item(band, band),
                 _pct(ev.precision[c]), _pct(ev.recall[c]), _pct(ev.f1[c]),
                 _number(ev.support[c])]
        cells[2].setForeground(QColor(BAND_COLORS.get(band, "#7f7f7f")))
        for col, item in enumerate(cells):
            self.setItem(row, col, item)


def _pct(value: float | None) -> _Item:
    return _Item("–", -1.0) if value is None else _Item(f"{100 * value:.1f} %", value)


def _number(value: int) -> _Item:
    return _Item(f"{value:,}", float(value))
