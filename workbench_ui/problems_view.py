"""`ProblemsView`: the problems found in a dataset, with counts per kind and a file preview.

Problems arrive in batches while the checks run; the table grows without being rebuilt. Clicking
a row previews the file (decoded in a worker) or says why it cannot be shown, and offers to open
its folder in the system file manager.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QUrl,
)
from PySide6.QtGui import QDesktopServices, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.data.index import Problem, count_problems
from workbench.errors import UserError
from workbench_ui.thumbnails_view import pil_to_qimage
from workbench_ui.workers import GeneratorWorker

PREVIEW_SIZE = 220
COLUMNS = ("Kind", "Path", "Detail")
_ModelIndex = QModelIndex | QPersistentModelIndex


class _ElideEnd(QStyledItemDelegate):
    """Cut a sentence at its end ("not a recognized image…"), not in its middle."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:  # noqa: N802
        """Qt's options, eliding on the right."""
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


class ProblemsModel(QAbstractTableModel):
    """A growing table of `Problem`s: kind, path, detail."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.problems: list[Problem] = []
        self.root = ""  # the dataset's folder: paths under it are shown relative to it

    def shown_path(self, path: str) -> str:
        """`path` relative to `root` when it lies under it (the detail column gets the room)."""
        if self.root:
            with contextlib.suppress(ValueError):
                relative = os.path.relpath(path, self.root)
                if not relative.startswith(".."):
                    return relative
        return path

    def add(self, problems: Sequence[Problem]) -> None:
        """Append problems at the end."""
        if not problems:
            return
        start = len(self.problems)
        self.beginInsertRows(QModelIndex(), start, start + len(problems) - 1)
        self.problems.extend(problems)
        self.endInsertRows()

    def clear(self) -> None:
        """Remove every row."""
        self.beginResetModel()
        self.problems = []
        self.endResetModel()

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Number of problems."""
        return 0 if parent.isValid() else len(self.problems)

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Kind, path, detail."""
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The text of one cell; the full path as the path's tooltip."""
        if not index.isValid():
            return None
        problem = self.problems[index.row()]
        values = (problem.kind.replace("_", " "), self.shown_path(problem.path), problem.detail)
        if role == Qt.ItemDataRole.DisplayRole:
            return values[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return problem.path if index.column() == 1 else (problem.detail or problem.path)
        return None

    def headerData(  # noqa: N802 - Qt override
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None


def decode_preview(path: str) -> Iterator[tuple[str, QImage | None, str]]:
    """One event: (path, preview image, "") or (path, None, why it cannot be shown)."""
    from workbench.data.images import ImageError, load_thumbnail

    if Path(path).is_dir():
        yield path, None, "a folder (open it to look inside)"
        return
    if not Path(path).is_file():  # a missing file, or a CSV row ("manifest.csv:12")
        yield path, None, "no such file"
        return
    try:
        yield path, pil_to_qimage(load_thumbnail(path, PREVIEW_SIZE)), ""
    except ImageError as exc:
        yield path, None, exc.reason  # the name is shown above the reason already
    except (UserError, OSError) as exc:
        yield path, None, str(exc)


class ProblemsView(QWidget):
    """Counts per kind, the table of problems, and a preview of the selected file."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ProblemsModel(self)
        self._unlisted: dict[str, int] = {}  # per kind, problems found but not listed
        self.proxy = QSortFilterProxyModel(self)  # the kind filter and column sorting
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(0)
        self._workers: list[GeneratorWorker] = []
        self._shown_path = ""
        self.path_dialog: QDialog | None = None  # shown where no file manager opens a folder
        self._shown_detail = ""
        self._build()

    def _build(self) -> None:
        self.counts_label = QLabel("No problems found.")
        self.counts_label.setObjectName("sectionTitle")
        self.counts_label.setWordWrap(True)
        self.kind_filter = QComboBox()
        self.kind_filter.addItem("All kinds", "")
        self.kind_filter.currentIndexChanged.connect(self._apply_filter)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # arrival order until clicked
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep the file name visible
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setItemDelegateForColumn(2, _ElideEnd(self.table))  # the detail column
        self.table.setColumnWidth(1, 200)  # paths are relative to the dataset: room for why
        self.table.selectionModel().currentRowChanged.connect(self._on_row)
        self.preview = QLabel("Select a problem to see the file.")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setWordWrap(True)
        self.preview.setMinimumWidth(PREVIEW_SIZE)
        self.preview.setObjectName("preview")
        self.show_button = QPushButton("Show in folder")
        self.show_button.setEnabled(False)
        self.show_button.clicked.connect(self.show_in_folder)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.preview, 1)
        side_layout.addWidget(self.show_button)
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.counts_label, 1)
        top.addWidget(self.kind_filter)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

    # -- public API --------------------------------------------------------------------------
    def set_problems(self, problems: Sequence[Problem],
                     unlisted: Mapping[str, int] | None = None, root: str = "") -> None:
        """Show exactly these problems; `unlisted` counts, per kind, those left off the list;
        paths under `root` (the dataset's folder) are shown relative to it."""
        self._unlisted = dict(unlisted or {})
        self.model.clear()
        self.model.root = root
        self.kind_filter.setCurrentIndex(0)
        while self.kind_filter.count() > 1:
            self.kind_filter.removeItem(1)
        self._reset_preview()
        self.add_problems(problems)
        self._update_counts()

    def set_unlisted(self, unlisted: Mapping[str, int]) -> None:
        """Update the per-kind counts of problems left off the list."""
        self._unlisted = dict(unlisted)
        self._update_counts()

    def add_problems(self, problems: Sequence[Problem]) -> None:
        """Append problems found since the last call."""
        self.model.add(problems)
        self._update_counts()

    def counts(self) -> dict[str, int]:
        """Problems per kind (listed or not), most frequent first."""
        return count_problems(self.model.problems, self._unlisted)

    def select_row(self, row: int) -> None:
        """Select the problem at `row` of `model.problems`, as a click would."""
        shown = self.proxy.mapFromSource(self.model.index(row, 0))
        if shown.isValid():
            self.table.selectRow(shown.row())

    def shown_path(self) -> str:
        """The file whose preview (or reason) is shown."""
        return self._shown_path

    def show_in_folder(self) -> None:
        """Open the selected file's folder in the system file manager; where none is registered
        (openUrl says False), show the path with a Copy button instead of nothing happening."""
        if self._shown_path:
            path = Path(self._shown_path)
            folder = path if path.is_dir() else path.parent
            if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
                from workbench_ui.runs_dialog import PathDialog

                self.path_dialog = PathDialog(
                    "Folder", "No file manager could open the folder. Its path:", str(folder),
                    self)
                self.path_dialog.open()

    def shutdown(self) -> None:
        """Wait for any preview still decoding."""
        for worker in self._workers:
            worker.shutdown(5.0)
        self._workers.clear()

    # -- internals ---------------------------------------------------------------------------
    def set_kind_filter(self, kind: str) -> None:
        """Show only problems of one kind ("" for all)."""
        found = self.kind_filter.findData(kind)
        self.kind_filter.setCurrentIndex(max(found, 0))

    def visible_rows(self) -> int:
        """Problems shown under the current filter."""
        return self.proxy.rowCount()

    def _apply_filter(self) -> None:
        kind = self.kind_filter.currentData() or ""
        label = kind.replace("_", " ")
        self.proxy.setFilterFixedString(label)

    def _update_kinds(self, counts: dict[str, int]) -> None:
        for kind, n in counts.items():
            text = f"{kind.replace('_', ' ')} ({n})"
            found = self.kind_filter.findData(kind)
            if found < 0:
                self.kind_filter.addItem(text, kind)
            else:
                self.kind_filter.setItemText(found, text)

    def _update_counts(self) -> None:
        counts = self.counts()
        self._update_kinds(counts)
        if not counts:
            self.counts_label.setText("No problems found.")
            return
        parts = [f"{kind.replace('_', ' ')}: {n}" for kind, n in counts.items()]
        total = sum(counts.values())
        unlisted = sum(self._unlisted.values())
        more = f" ({unlisted} not listed)" if unlisted else ""
        self.counts_label.setText(f"{total} problem(s){more} · " + " · ".join(parts))

    def _reset_preview(self) -> None:
        self._shown_path = ""
        self.preview.setPixmap(QPixmap())
        self.preview.setText("Select a problem to see the file.")
        self.show_button.setEnabled(False)

    def _on_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        problem = self.model.problems[self.proxy.mapToSource(current).row()]
        path = problem.path
        self._shown_path = path
        self._shown_detail = f"{problem.kind.replace('_', ' ')}: {problem.detail}" \
            if problem.detail else ""
        self.preview.setText(f"Loading {Path(path).name}…")
        self.show_button.setEnabled(Path(path).exists())
        worker = GeneratorWorker(decode_preview, path, parent=self)
        worker.event.connect(self._on_preview)
        worker.finished.connect(lambda: self._forget(worker))
        self._workers.append(worker)
        worker.start()

    def _forget(self, worker: GeneratorWorker) -> None:
        worker.join(1.0)
        if worker in self._workers:
            self._workers.remove(worker)

    def _on_preview(self, event: tuple[str, QImage | None, str]) -> None:
        path, image, reason = event
        if path != self._shown_path:
            return  # the user has moved on to another row
        if image is None:
            # the problem's own detail says more than "no such file" for a CSV row or a class
            detail = self._shown_detail or f"cannot be shown: {reason}"
            self.preview.setPixmap(QPixmap())
            self.preview.setText(f"{Path(path).name}\n{detail}")
        else:
            self.preview.setPixmap(QPixmap.fromImage(image))
        self.preview.setToolTip(path)
