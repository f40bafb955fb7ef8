"""The backbone picker: a sortable, filterable table of torchvision's classification models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QShowEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("name", "family", "params", "top-1", "GFLOPS", "weights")
_WIDTHS = (136, 0, 58, 50, 58, 70)  # family: hidden (the name says it), filterable
_HEADER_TIPS = ("torchvision model name", "architecture family", "parameters (millions)",
                "ImageNet-1K top-1 accuracy (%) of the default weights", "GFLOPS per image",
                "ImageNet weights in the torch hub cache, or to download")
_SORT_ROLE = Qt.ItemDataRole.UserRole + 1
CACHED_TEXT, DOWNLOAD_TEXT, NO_WEIGHTS_TEXT = "✓ on disk", "download", "none"


def _item(text: str, sort_value: Any, tooltip: str = "") -> QStandardItem:
    item = QStandardItem(text)
    item.setData(sort_value, _SORT_ROLE)
    item.setEditable(False)
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _row_items(info: Any, on_disk: bool) -> list[QStandardItem]:
    params = info.params or 0
    acc1 = info.acc1 if info.acc1 is not None else -1.0
    gflops = info.gflops if info.gflops is not None else -1.0
    if not info.weights_name:
        weights = _item(NO_WEIGHTS_TEXT, 0, "no ImageNet weights: random init only")
    elif on_disk:
        weights = _item(CACHED_TEXT, 2, "ImageNet weights are in the torch hub cache")
    else:
        size = f" ({info.file_size_mb:.0f} MB)" if info.file_size_mb else ""
        weights = _item(DOWNLOAD_TEXT, 1, f"{info.weights_name} must be downloaded{size}")
    return [
        _item(info.name, info.name.lower(), f"{info.name}: {info.family} family"),
        _item(info.family, info.family),
        _item(f"{params / 1e6:.1f} M", float(params)),
        _item(f"{acc1:.1f}" if acc1 >= 0 else "–", float(acc1)),
        _item(f"{gflops:.2f}" if gflops >= 0 else "–", float(gflops)),
        weights,
    ]


class BackboneView(QWidget):
    """A filter box over a table of backbones; emits `backbone_selected(name)` on a pick."""

    backbone_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = QStandardItemModel(0, len(COLUMNS), self)
        self._model.setHorizontalHeaderLabels(list(COLUMNS))
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self._model)
        self._proxy.setSortRole(_SORT_ROLE)
        self._proxy.setFilterKeyColumn(-1)  # match the filter text in any column
        self._proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter backbones (name, family, …)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._filter)
        self._filtering = False
        self._chosen = ""  # the backbone in use: a filter never changes it, a pick does
        self.table = self._make_table()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.table)

    def _make_table(self) -> QTableView:
        table = QTableView(self)
        table.setModel(self._proxy)
        table.setSortingEnabled(True)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(22)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, tip in enumerate(_HEADER_TIPS):
            self._model.horizontalHeaderItem(column).setToolTip(tip)
        table.setColumnHidden(COLUMNS.index("family"), True)
        self._fit_columns(table)
        table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        return table

    def _fit_columns(self, table: QTableView) -> None:
        # the stylesheet may enlarge the font: scale the widths chosen for a 7 px character
        scale = max(table.fontMetrics().averageCharWidth() / 7.0, 1.0)
        header = table.horizontalHeader().fontMetrics()
        for column, width in enumerate(_WIDTHS):
            if table.isColumnHidden(column):
                continue
            title = header.horizontalAdvance(COLUMNS[column]) + 20  # the title must stay legible
            table.setColumnWidth(column, max(int(width * scale), title))

    def set_backbones(self, backbones: Sequence[Any], on_disk: set[str] | None = None) -> None:
        """Fill the table from `BackboneInfo`s (the registry's list).

        `on_disk` names the backbones with some ImageNet weights in the hub cache (not only the
        default entry); by default each info's own `weights_cached` is used.
        """
        self._model.removeRows(0, self._model.rowCount())
        for info in backbones:
            cached = info.weights_cached if on_disk is None else info.name in on_disk
            self._model.appendRow(_row_items(info, cached))
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def set_cached(self, name: str, cached: bool) -> None:
        """Mark a backbone's weights as on disk (after a download) or not."""
        row = self._source_row(name)
        if row is not None and self._model.item(row, 5).text() != NO_WEIGHTS_TEXT:
            self._model.setItem(row, 5, _item(CACHED_TEXT if cached else DOWNLOAD_TEXT,
                                              2 if cached else 1))

    def select(self, name: str) -> None:
        """Select a backbone by name without emitting `backbone_selected`."""
        row = self._source_row(name)
        if row is None:
            return
        self._chosen = name
        index = self._proxy.mapFromSource(self._model.index(row, 0))
        blocked = self.blockSignals(True)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        self.blockSignals(blocked)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        """Fit the columns to the final font and bring the selected backbone into view."""
        super().showEvent(event)
        self._fit_columns(self.table)
        current = self.table.currentIndex()
        if current.isValid():
            self.table.scrollTo(current, QAbstractItemView.ScrollHint.PositionAtCenter)

    def row_count(self) -> int:
        """How many backbones pass the filter."""
        return self._proxy.rowCount()

    def cell_text(self, name: str, column: str) -> str:
        """The displayed text of one backbone's column (e.g. "weights")."""
        row = self._source_row(name)
        return "" if row is None else self._model.item(row, COLUMNS.index(column)).text()

    def _source_row(self, name: str) -> int | None:
        matches = self._model.findItems(name, Qt.MatchFlag.MatchExactly, 0)
        return matches[0].row() if matches else None

    def _filter(self, text: str) -> None:
        """Filter the rows; the backbone in use stays selected while it is listed, and a row
        that only moves under the selection because of the filter is never picked."""
        self._filtering = True
        try:
            self._proxy.setFilterFixedString(text)
            if self._chosen and self._proxy.mapFromSource(self._index_of(self._chosen)).isValid():
                self.select(self._chosen)
            else:
                self.table.selectionModel().clear()
        finally:
            self._filtering = False

    def _index_of(self, name: str) -> QModelIndex:
        row = self._source_row(name)
        return QModelIndex() if row is None else self._model.index(row, 0)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and not self._filtering:
            name = self._proxy.index(current.row(), 0).data()
            self._chosen = name
            self.backbone_selected.emit(name)
