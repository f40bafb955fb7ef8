"""`CsvColumnsDialog`: which columns of a CSV hold the image path and the label, asked when the
CSV's header is not one the workbench recognises (or names columns it does not have).

The choice is stored as `data.path_column` / `data.label_column`, the same settings a saved
config and `workbench train --set` use.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from workbench.data.manifest import (
    LABEL_COLUMNS,
    PATH_COLUMNS,
    ColumnNames,
    accepted_headers,
    normalise_column,
)


class CsvColumnsDialog(QDialog):
    """Two drop-downs over the CSV's header cells; `names()` is the choice."""

    def __init__(self, csv_path: Path, header: list[str], current: ColumnNames,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose the CSV's columns")
        cells = [cell.strip() for cell in header if cell.strip()]
        intro = QLabel(
            f"The header of <b>{csv_path.name}</b> ({', '.join(cells) or 'empty'}) does not say "
            f"which column holds the image path and which the label.<br><br>Recognised without "
            f"asking: {accepted_headers()}.")
        intro.setWordWrap(True)
        self.path_box = self._box(cells, current.path, PATH_COLUMNS, 0)
        self.label_box = self._box(cells, current.label, LABEL_COLUMNS, 1)
        form = QFormLayout()
        form.addRow("Image path column", self.path_box)
        form.addRow("Label column", self.label_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Open with these columns")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.path_box.currentIndexChanged.connect(self._check)
        self.label_box.currentIndexChanged.connect(self._check)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)
        self._check()

    @staticmethod
    def _box(cells: list[str], named: str, accepted: tuple[str, ...], fallback: int) -> QComboBox:
        """A drop-down of the header cells, preselecting the named, then a recognised, cell."""
        box = QComboBox()
        box.addItems(cells)
        normalised = [normalise_column(c) for c in cells]
        wanted = [normalise_column(named)] if named else []
        wanted += list(accepted)
        pick = next((normalised.index(w) for w in wanted if w in normalised),
                    min(fallback, len(cells) - 1))
        box.setCurrentIndex(pick)
        return box

    def _check(self) -> None:
        """The same column cannot be both (and a one-column CSV cannot be opened)."""
        same = self.path_box.currentIndex() == self.label_box.currentIndex()
        self.ok_button.setEnabled(self.path_box.count() > 1 and not same)
        self.ok_button.setToolTip("Choose two different columns" if same else "")

    def names(self) -> ColumnNames:
        """The chosen path and label columns."""
        return ColumnNames(self.path_box.currentText(), self.label_box.currentText())
