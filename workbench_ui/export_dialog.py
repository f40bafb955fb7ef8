"""`ExportDialog` (File ▸ Export model…): write a finished run's model as ONNX, TorchScript or a
torchvision state dict, with its model card, in a worker (an ONNX export takes seconds). When it
is written the dialog names the file, its model card and what a client must do to its images
(the torchvision format is the one whose client normalizes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench_ui.workers import GeneratorWorker

FORMATS = {"onnx": "ONNX (onnxruntime, any language)",
           "torchscript": "TorchScript (torch.jit.load, Python or C++)",
           "torchvision": "torchvision state dict (get_model + load_state_dict)"}


def export_run(run_dir: str, which: str, fmt: str, out: str | None) -> Iterator[Any]:
    """The worker's job: step names, then the export's record (`export.export_record`: the
    written `path`, its `card`, the `preprocessing`...)."""
    from workbench.deploy.export import export_model, export_record
    from workbench.train.trained import load_trained

    yield "Loading the run…"
    trained = load_trained(run_dir, which)
    yield f"Exporting as {fmt}…"
    yield export_record(trained, fmt, export_model(trained, fmt, out or None))


def written_words(record: dict[str, Any]) -> str:
    """What the dialog says once a model is written: the files, and the input its client
    prepares (normalized or not)."""
    prep = record["preprocessing"]
    size = record["input_size"]
    normalize = ("not normalized (the model normalizes)" if prep["normalization_inside_model"]
                 else "then normalized with mean / std (the model does not normalize)")
    return (f"Written: {record['path']}\nModel card: {record['card']}\n"
            f"Input: RGB, shorter side to {prep['resize']} px, center crop {size} px, "
            f"floats in [0, 1], {normalize}. The card shows how.")


class ExportDialog(QDialog):
    """Choose a run, a format and (optionally) a file; export; show the written path."""

    def __init__(self, run_dir: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export model")
        self.worker: GeneratorWorker | None = None
        self.written: Path | None = None
        self.card: Path | None = None
        self.run_edit = QLineEdit(run_dir or "")
        self.run_edit.setPlaceholderText("a run folder (holds config.toml and checkpoints/)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_run)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_edit, 1)
        run_row.addWidget(browse)
        self.format_combo = QComboBox()
        for key, text in FORMATS.items():
            self.format_combo.addItem(text, key)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.addItems(["best", "last"])
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("default: RUN/export/")
        form = QFormLayout()
        form.addRow("Run", run_row)
        form.addRow("Format", self.format_combo)
        form.addRow("Checkpoint", self.checkpoint_combo)
        form.addRow("Write to", self.out_edit)
        self.status = QLabel("A model card (MODEL_CARD-<file>.md) is written beside the model.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # paths and "<file>" stay literal
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # no percentage: torch's exporters report none
        self.busy.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start_export)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.busy)
        layout.addWidget(self.buttons)
        self.resize(620, self.sizeHint().height())

    def _choose_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder",
                                                  self.run_edit.text() or str(Path.home()))
        if folder:
            self.run_edit.setText(folder)

    def start_export(self) -> None:
        """Export in a worker; the dialog shows the steps, then the path or the error."""
        if self.worker is not None and self.worker.is_running():
            return
        run_dir = self.run_edit.text().strip()
        if not run_dir:
            self._say("Choose a run folder first.", error=True)
            return
        self.written = self.card = None
        self.export_button.setEnabled(False)
        self.worker = GeneratorWorker(export_run, run_dir, self.checkpoint_combo.currentText(),
                                      self.format_combo.currentData(),
                                      self.out_edit.text().strip() or None, parent=self)
        self.worker.event.connect(self._on_event)
        self.worker.failed.connect(lambda message: self._say(message, error=True))
        self.worker.finished.connect(self._on_finished)
        self.busy.show()
        self.worker.start()

    def _on_finished(self) -> None:
        self.busy.hide()
        self.export_button.setEnabled(True)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, dict):
            self.written = Path(event["path"])
            self.card = Path(event["card"])
            self._say(written_words(event))
        else:
            self._say(str(event))

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "")

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Join the export's thread (an export cannot be interrupted half-way)."""
        return self.worker is None or self.worker.shutdown(timeout)
