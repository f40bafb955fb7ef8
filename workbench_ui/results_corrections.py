"""`CorrectionsBar`: the label corrections of the shown run, and opening the dataset with them.

Marks made in the Results tab's galleries go to `corrections.csv` in the run folder (never into
the dataset's folders). "Open the dataset with them" sets `data.corrections` and reopens the
run's dataset, whose listing then carries the fixes; the Dataset tab says how many.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from workbench.data.corrections import (
    CORRECTIONS_NAME,
    Correction,
    add_correction,
    read_corrections,
    remove_correction,
)
from workbench.errors import UserError
from workbench_ui.state import AppState


class CorrectionsBar(QWidget):
    """How many corrections the run has, and a button to apply them to its dataset."""

    changed = Signal(dict)  # path -> short text of its correction

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.file: Path | None = None
        self.items: list[Correction] = []
        self.label = QLabel()
        self.apply_button = QPushButton("Open the dataset with these corrections")
        self.apply_button.setToolTip("Reopen the run's dataset with the corrections applied "
                                     "(relabelled and excluded images); the files stay put")
        self.apply_button.clicked.connect(self.open_dataset_with_corrections)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.apply_button)
        self._refresh()

    def set_run(self, run_dir: str) -> None:
        """Show the corrections of another run."""
        self.file = Path(run_dir) / CORRECTIONS_NAME
        try:
            self.items = read_corrections(self.file)
        except UserError as exc:
            self.items = []
            self.label.setText(str(exc))
            return
        self._refresh()

    def record(self, path: str, action: str, label: str = "") -> None:
        """Mark one image ("relabel" to `label`, "exclude") or forget its mark ("clear")."""
        if self.file is None:
            return
        try:
            if action == "clear":
                self.items = remove_correction(self.file, path)
            else:
                self.items = add_correction(self.file, Correction(path, action, label))
        except (UserError, OSError) as exc:
            self.label.setText(f"cannot write the corrections: {exc}")
            return
        self._refresh()

    def marks(self) -> dict[str, str]:
        """Path -> "relabel → cat" / "exclude", for the galleries."""
        return {c.path: (f"→ {c.label}" if c.action == "relabel" else "excluded")
                for c in self.items}

    def open_dataset_with_corrections(self) -> None:
        """Set `data.corrections` to this file and reopen the run's dataset."""
        if self.file is None or not self.items:
            return
        from workbench.config import load_config
        from workbench.train.runpaths import RunPaths

        try:  # the corrections file lies in the run folder
            data_path = load_config(RunPaths(self.file.parent).config).data.path
            # the path too: opening "another" dataset would reset the corrections (they belong
            # to one dataset), and this one is the run's
            self.state.update_config(data={"path": data_path, "corrections": str(self.file)})
        except UserError as exc:
            self.label.setText(str(exc))
            return
        self.state.open_requested.emit(data_path)

    def _refresh(self) -> None:
        relabel = sum(c.action == "relabel" for c in self.items)
        exclude = len(self.items) - relabel
        if self.file is None:
            self.label.setText("Right-click an image to mark it mislabelled or to exclude it.")
        elif not self.items:
            self.label.setText("No label corrections yet: right-click an image in a gallery to "
                               "mark it mislabelled or to exclude it.")
        else:
            self.label.setText(f"{len(self.items)} correction(s) in {self.file} "
                               f"({relabel} relabelled, {exclude} excluded)")
        self.apply_button.setEnabled(bool(self.items))
        self.changed.emit(self.marks())
