"""Dialogs about run folders: manage (list and delete) old runs, and show a folder's path.

The list and the deletion are the core's (`workbench.train.runs.list_runs`, `delete_run`,
which refuses a folder that is not a run); these dialogs only show them and ask before deleting.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.errors import UserError
from workbench.train.runs import RunInfo, delete_run, list_runs

COLUMNS = ("Run folder", "Started", "Backbone", "Epochs", "Best bal. acc", "Ended", "Size")


def format_size(size_bytes: int) -> str:
    """Bytes the way a file manager says them: 870 B, 12.3 kB, 89.4 MB, 1.2 GB."""
    size = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


class _SortItem(QTableWidgetItem):
    """A cell shown as text and sorted by a number (sizes, dates, accuracies)."""

    def __init__(self, text: str, key: float) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.key < getattr(other, "key", 0.0)


def _row_items(run: RunInfo) -> list[QTableWidgetItem]:
    best = run.best_balanced_acc
    return [
        QTableWidgetItem(run.path.name),
        _SortItem(time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started)), run.started),
        QTableWidgetItem(run.backbone),
        _SortItem(f"{run.epochs_done} / {run.epochs}", run.epochs_done),
        _SortItem("–" if best is None else f"{100 * best:.1f}%", -1.0 if best is None else best),
        QTableWidgetItem(run.outcome.lower() or "not ended"),
        _SortItem(format_size(run.size_bytes), run.size_bytes),
    ]


class RunsDialog(QDialog):
    """The run folders under one folder, with their results and sizes; deletes selected ones.

    `current` is the run training or shown now: it is listed but cannot be deleted. A double-click
    on a run emits `run_opened(path)` (the main window shows its results).
    """

    run_opened = Signal(str)

    def __init__(self, runs_dir: str | Path, current: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Manage runs")
        self.runs_dir = Path(runs_dir)
        self.current = Path(current).resolve() if current else None
        self.runs: list[RunInfo] = []
        self.summary = QLabel()
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = self._make_table()
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected run folders, checkpoints included")
        self.delete_button.clicked.connect(self.delete_selected)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        buttons = QHBoxLayout()
        for widget in (self.delete_button, refresh):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.resize(860, 420)
        self.refresh()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.itemSelectionChanged.connect(self._update_delete_button)
        table.cellDoubleClicked.connect(self._open_row)
        table.setToolTip("Double-click a run to show its results")
        # newest first, and the header's arrow says so (sortItems alone leaves the arrow on
        # whatever column it was); a refresh keeps the order the user then clicks
        table.horizontalHeader().setSortIndicator(COLUMNS.index("Started"),
                                                  Qt.SortOrder.DescendingOrder)
        return table

    def refresh(self) -> None:
        """List the runs folder again."""
        self.runs = list_runs(self.runs_dir)
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(len(self.runs))
        for row, run in enumerate(self.runs):
            for column, item in enumerate(_row_items(run)):
                item.setData(Qt.ItemDataRole.UserRole, str(run.path))
                if self._is_current(run.path):
                    item.setToolTip("The run training now: it cannot be deleted")
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                table.setItem(row, column, item)
            if self._is_current(run.path):
                table.item(row, 0).setText(f"{run.path.name} (training now)")
        table.setSortingEnabled(True)  # sorts by the header's indicator
        table.resizeColumnsToContents()
        total = format_size(sum(run.size_bytes for run in self.runs))
        self.summary.setText(f"{len(self.runs)} run(s) in {self.runs_dir}, {total} in all."
                             if self.runs else f"No runs in {self.runs_dir}.")
        self._update_delete_button()

    def set_current(self, current: str) -> None:
        """Protect another run (one that started while the dialog is open)."""
        self.current = Path(current).resolve() if current else None
        self.refresh()

    def _is_current(self, path: Path) -> bool:
        return self.current is not None and path.resolve() == self.current

    def selected_paths(self) -> list[Path]:
        """The run folders selected in the table (the current run never is)."""
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        paths = [Path(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)) for row in rows]
        return [path for path in paths if not self._is_current(path)]

    def select_run(self, path: str | Path) -> None:
        """Add one run to the selection (as a click would)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == str(path):
                self.table.selectRow(row)

    def _open_row(self, row: int, _column: int) -> None:
        """A double-click opens the run: its results are shown and the dialog closes."""
        item = self.table.item(row, 0)
        if item is not None:
            self.run_opened.emit(str(item.data(Qt.ItemDataRole.UserRole)))
            self.accept()

    def _update_delete_button(self) -> None:
        self.delete_button.setEnabled(bool(self.selected_paths()))

    def delete_selected(self) -> list[Path]:
        """Ask, then delete the selected runs; returns the folders deleted."""
        paths = self.selected_paths()
        if not paths or not self._confirm(paths):
            return []
        deleted = []
        for path in paths:
            try:
                delete_run(path)
                deleted.append(path)
            except UserError as exc:
                QMessageBox.warning(self, "Not deleted", str(exc))
                break
        self.refresh()
        return deleted

    def _confirm(self, paths: list[Path]) -> bool:
        sizes = {run.path: run.size_bytes for run in self.runs}
        freed = format_size(sum(sizes.get(path, 0) for path in paths))
        names = "\n".join(f"  {path.name}" for path in paths[:10])
        more = f"\n  … and {len(paths) - 10} more" if len(paths) > 10 else ""
        answer = QMessageBox.question(
            self, "Delete runs",
            f"Delete {len(paths)} run folder(s), with their checkpoints and logs ({freed})?\n\n"
            f"{names}{more}\n\nThis cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes


class PathDialog(QDialog):
    """A folder's path, selectable, with a Copy button: where no file manager can open it."""

    def __init__(self, title: str, message: str, path: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        text = QLabel(message)
        text.setWordWrap(True)
        self.path_edit = QLineEdit(path)
        self.path_edit.setReadOnly(True)
        self.path_edit.setMinimumWidth(min(900, self.fontMetrics().horizontalAdvance(path) + 60))
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the path to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(row)
        layout.addWidget(close)

    def copy(self) -> None:
        """Put the path on the clipboard."""
        QGuiApplication.clipboard().setText(self.path_edit.text())
        self.copy_button.setText("Copied")
