"""Weights choice: ImageNet weights (from the hub cache or downloaded), random init, or a file.

Downloads and the strict check of an imported file run in `GeneratorWorker`s; a failure (offline,
a file for another architecture, a corrupt file) reaches the user as one readable line in a
message box. The core (`workbench.models.weights`) does the work; this view only forwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.errors import UserError
from workbench.models.transfer import build_model
from workbench.models.weights import (
    WeightsEntry,
    default_weights,
    imagenet_weights,
    iter_fetch,
    resolve_weights,
)
from workbench_ui.workers import GeneratorWorker

IMPORT_ITEM = "__import__"
WEIGHT_FILES = "PyTorch state dicts (*.pth *.pt *.bin);;All files (*)"


def check_weights_file(backbone: str, path: str) -> Iterator[str]:
    """Build the architecture from the file (loaded strictly); yields `path` when it fits."""
    build_model(backbone, weights=path, num_classes=None)
    yield path


def download_weights(backbone: str, spec: str = "DEFAULT", stop: Any = None) -> Iterator[Any]:
    """Resolve the backbone's ImageNet weights `spec` and download them (progress events)."""
    weights = resolve_weights(backbone, spec)
    if weights is None:
        raise UserError(f"{backbone} has no ImageNet weights {spec!r} to download")
    yield from iter_fetch(weights, stop=stop)


class WeightsView(QWidget):
    """A weights combo with download / cancel and import; emits `weights_chosen(spec)`."""

    weights_chosen = Signal(str)
    downloaded = Signal(str)  # the backbone whose weights are now on disk

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._backbone: Any = None
        self._entries: list[WeightsEntry] = []
        self._spec = "DEFAULT"
        self._worker: GeneratorWorker | None = None
        self.combo = QComboBox(self)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.download_button = QPushButton("Download", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.progress = QProgressBar(self)
        self._lay_out()
        self.combo.activated.connect(self._on_activated)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel)
        self._set_busy(False)

    def _lay_out(self) -> None:
        # a long weights name must not widen the Model tab past a 1024 px window
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(16)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(self.download_button)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addLayout(busy)
        layout.addWidget(self.status)

    # -- showing ------------------------------------------------------------------------------
    def show_weights(self, backbone: Any, spec: str) -> None:
        """Show the choices for a `BackboneInfo` with `spec` (config.model.weights) selected."""
        self._backbone, self._entries = backbone, imagenet_weights(backbone.name)
        default = default_weights(backbone.name).name if self._entries else ""
        self._spec = default if spec == "DEFAULT" and default else spec
        blocked = self.combo.blockSignals(True)
        self.combo.clear()
        for entry in self._entries:
            mark = "✓ on disk" if entry.cached else f"{entry.size_mb:.0f} MB to download"
            self.combo.addItem(f"{entry.name} · {entry.acc1:.1f} % · {mark}", entry.name)
            self.combo.setItemData(self.combo.count() - 1,
                                   f"ImageNet weights {entry.name}: top-1 {entry.acc1:.1f} %, "
                                   f"{entry.size_mb:.0f} MB, {mark}",
                                   Qt.ItemDataRole.ToolTipRole)
        self.combo.addItem("Random init (train from scratch)", "random")
        if self.combo.findData(self._spec) < 0:
            self.combo.addItem(f"File: {Path(self._spec).name}", self._spec)
        self.combo.addItem("Import weights file…", IMPORT_ITEM)
        self.combo.setCurrentIndex(max(self.combo.findData(self._spec), 0))
        self.combo.blockSignals(blocked)
        self._show_status()

    def _entry(self, name: str) -> WeightsEntry | None:
        return next((e for e in self._entries if e.name == name), None)

    def _show_status(self) -> None:
        spec = self.combo.currentData()
        entry = self._entry(spec)
        self.download_button.setVisible(entry is not None and not entry.cached)
        if spec == "random":
            text = "Random initialization: every weight is learned from your images."
        elif entry is None:
            text = f"Weights from {spec}"
        elif entry.cached:
            text = f"✓ {entry.name} is on disk (torch hub cache)."
        else:
            on_disk = [e.name for e in self._entries if e.cached]
            other = f" ({on_disk[0]} is on disk)" if on_disk else ""
            text = (f"{entry.name} is not on disk{other}: download it ({entry.size_mb:.0f} MB) "
                    "or import a weights file.")
        self.status.setText(text)

    def is_busy(self) -> bool:
        """True while a download or a file check runs."""
        return self._worker is not None

    # -- user actions -------------------------------------------------------------------------
    def _on_activated(self, _index: int) -> None:
        spec = self.combo.currentData()
        if spec == IMPORT_ITEM:
            self._restore_choice()
            self.import_file()
            return
        self._spec = spec
        self._show_status()
        self.weights_chosen.emit(spec)

    def _restore_choice(self) -> None:
        index = self.combo.findData(self._spec)
        self.combo.setCurrentIndex(max(index, 0))

    def import_file(self) -> None:
        """Ask for a state-dict file and check it against the architecture in a worker."""
        if self._backbone is None or self.is_busy():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import weights file", "", WEIGHT_FILES)
        if not path:
            return
        self.status.setText(f"Checking {Path(path).name} against {self._backbone.name}…")
        worker = self._start(check_weights_file, self._backbone.name, path)
        worker.event.connect(self._on_file_ok)
        worker.failed.connect(lambda msg: self._show_error("Cannot use this weights file", msg))

    def start_download(self) -> None:
        """Download the ImageNet weights in a worker, with progress and cancel."""
        if self._backbone is None or self.is_busy():
            return
        spec = self.combo.currentData()
        self.status.setText(f"Downloading {spec}…")
        worker = self._start(download_weights, self._backbone.name, spec, throttle_s=0.1)
        worker.event.connect(self._on_progress)
        worker.failed.connect(lambda msg: self._show_error("Download failed", msg))

    def cancel(self) -> None:
        """Stop the running download or check (nothing half-written is left by the core)."""
        if self._worker is not None:
            self._worker.stop()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop and join the worker (on close)."""
        if self._worker is not None:
            self._worker.shutdown(timeout)

    # -- worker plumbing ----------------------------------------------------------------------
    def _start(self, source: Any, *args: Any, throttle_s: float = 0.0) -> GeneratorWorker:
        worker = GeneratorWorker(source, *args, throttle_s=throttle_s, parent=self)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._set_busy(True)
        worker.start()
        return worker

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.combo.setEnabled(not busy)
        self.download_button.setEnabled(not busy)
        self.progress.setRange(0, 0)  # busy indicator until sizes are known

    def _on_progress(self, event: Any) -> None:
        done, total = getattr(event, "done", 0), getattr(event, "total", 0)
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{done / 2**20:.1f} / {total / 2**20:.1f} MB")

    def _on_file_ok(self, path: str) -> None:
        self._spec = path
        self.show_weights(self._backbone, path)
        self.weights_chosen.emit(path)

    def _on_finished(self) -> None:
        worker, self._worker = self._worker, None
        self._set_busy(False)
        if worker is None:
            return
        worker.join(1.0)
        if worker.stopped:
            self.status.setText("Cancelled: nothing was written.")
        elif worker.error is None and self._entry(self._spec) is not None:
            self.downloaded.emit(self._backbone.name)

    def _show_error(self, title: str, message: str) -> None:
        self.status.setText(message)
        QMessageBox.warning(self, title, message)
