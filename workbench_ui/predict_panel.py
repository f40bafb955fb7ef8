"""The Predict tab: classify dropped or chosen images with a finished run, with heatmaps.

The panel picks a run (the runs folder's runs, newest first, or any folder), and for the images
dropped on the window or chosen with the buttons shows a card each: the crop the model saw with
its Grad-CAM heatmap, and the top-k classes as bars. The model is loaded and the images are
classified and explained in `GeneratorWorker`s (`workbench.deploy.explain.iter_explained`), so
the window stays live; the cards shown are bounded (the newest `MAX_CARDS`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.deploy.explain import Explained, iter_explained
from workbench.deploy.predict import DEFAULT_TOP_K, PredictBatch
from workbench.train.runpaths import CHECKPOINTS
from workbench_ui.prediction_view import IMAGE_SIDE, PredictionView
from workbench_ui.state import AppState
from workbench_ui.workers import GeneratorWorker

MAX_CARDS = 60  # older cards are dropped: the panel never grows without bound
CARD_PITCH = IMAGE_SIDE + 72  # a card's width and the grid's spacing: columns follow the width
MAX_TOP_K = 10
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"
HINT = "Drop images or a folder on the window, or use Add images… / Add folder…"


def load_model(run_dir: str, which: str) -> Iterator[Any]:
    """The worker's job when a run is chosen: rebuild its classifier (seconds).

    captum is imported here too, while the tab says "Loading…": it pulls in matplotlib, whose
    C extensions load with the GIL held (about half a second on 2 cores), a pause better taken
    now than when the first heatmap arrives.
    """
    import captum.attr  # noqa: F401

    from workbench.train.trained import load_trained

    yield load_trained(run_dir, which)


class PredictPanel(QWidget):
    """Pick a run, drop images, see each one's top-k classes and heatmap."""

    model_loaded = Signal(object)  # the TrainedModel
    finished = Signal()  # a batch of dropped images is fully shown (or failed)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.trained: Any = None
        self.cards: list[PredictionView] = []
        self.skipped: list[Any] = []
        self._pending: list[str] = []
        self.columns = 4
        self._runs_stamp: tuple = ()
        self._loader: GeneratorWorker | None = None
        self._worker: GeneratorWorker | None = None
        self._build()
        self.refresh_runs()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(36)
        self.run_combo.setToolTip("The finished run whose model classifies the images")
        self.run_combo.activated.connect(lambda _i: self._on_run_changed())
        self.browse_button = QPushButton("Choose run…")
        self.browse_button.clicked.connect(self.choose_run)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.addItems(list(CHECKPOINTS))
        self.checkpoint_combo.activated.connect(lambda _i: self._on_run_changed())
        self.top_k_spin = QSpinBox()
        self.top_k_spin.setRange(1, MAX_TOP_K)
        self.top_k_spin.setValue(DEFAULT_TOP_K)
        self.top_k_spin.setPrefix("top ")
        self.heatmap_check = QCheckBox("Heatmaps")
        self.heatmap_check.setChecked(True)
        self.heatmap_check.setToolTip("Grad-CAM: where the model looked for its top class")
        self.heatmap_check.toggled.connect(self._show_heatmaps)
        self.add_images_button = QPushButton("Add images…")
        self.add_images_button.clicked.connect(self.choose_images)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.notice = QLabel(HINT)
        self.notice.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        layout = QVBoxLayout(self)
        layout.addLayout(self._row(QLabel("Run:"), self.run_combo, self.browse_button,
                                   self.checkpoint_combo, self.top_k_spin, self.heatmap_check))
        layout.addLayout(self._row(self.add_images_button, self.add_folder_button,
                                   self.clear_button, self.notice, self.progress))
        layout.addWidget(scroll, 1)

    @staticmethod
    def _row(*widgets: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        for widget in widgets:
            row.addWidget(widget, 1 if isinstance(widget, QLabel) and widget.wordWrap() else 0)
        if not any(isinstance(w, QLabel) and w.wordWrap() for w in widgets):
            row.addStretch(1)
        return row

    # -- runs --------------------------------------------------------------------------------
    def _runs_folders(self) -> set[Path]:
        from workbench.paths import default_runs_dir

        folders = {default_runs_dir()}
        if self.state.config.train.out_dir:
            folders.add(Path(self.state.config.train.out_dir).expanduser())
        return folders

    def refresh_runs(self, only_if_changed: bool = False) -> None:
        """List the finished runs of the runs folders (the default and the config's); with
        `only_if_changed`, only when a best checkpoint appeared or changed since."""
        from workbench.train.runpaths import RunPaths
        from workbench.train.runs import list_runs

        folders = self._runs_folders()
        best_pattern = str(RunPaths(Path("*")).best)  # */checkpoints/best.pt
        stamp = tuple(sorted((str(best), best.stat().st_mtime) for f in folders
                             for best in f.glob(best_pattern)))
        if only_if_changed and stamp == self._runs_stamp:
            return
        self._runs_stamp = stamp
        current = self.run_dir
        runs = sorted((r for f in folders for r in list_runs(f)
                       if RunPaths(r.path).best.is_file()),
                      key=lambda r: r.started, reverse=True)
        self.run_combo.clear()
        for run in runs:
            acc = "" if run.best_balanced_acc is None else f", {run.best_balanced_acc:.1%}"
            self.run_combo.addItem(f"{run.path.name} ({run.backbone}{acc})", str(run.path))
        if current:
            self.set_run(current, load=False)

    @property
    def run_dir(self) -> str | None:
        """The chosen run folder, None when there is none."""
        data = self.run_combo.currentData()
        return str(data) if data else None

    def set_run(self, path: str | Path, load: bool = True) -> None:
        """Choose a run folder (added to the list if it is not there)."""
        path = str(Path(path).expanduser())
        index = self.run_combo.findData(path)
        if index < 0:
            self.run_combo.insertItem(0, Path(path).name, path)
            index = 0
        self.run_combo.setCurrentIndex(index)
        if load:
            self._on_run_changed()

    def choose_run(self) -> None:
        """Ask for a run folder."""
        start = self.run_dir or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a run folder", start)
        if folder:
            self.set_run(folder)

    def _on_run_changed(self) -> None:
        loaded = self.trained
        if (loaded is not None and str(loaded.run_dir) == self.run_dir
                and loaded.checkpoint.stem == self.checkpoint_combo.currentText()):
            return
        self._stop_worker()
        self.trained = None
        self._load()

    def _load(self) -> None:
        if self.run_dir is None:
            self._say("No finished run yet: train one on the Train tab, or choose a run "
                      "folder.", error=True)
            return
        if self._loader is not None and self._loader.is_running():
            self._loader.stop()  # its model is ignored: see _on_loaded
        self._say(f"Loading {Path(self.run_dir).name}…")
        self._loader = GeneratorWorker(load_model, self.run_dir,
                                       self.checkpoint_combo.currentText(), parent=self)
        loader = self._loader
        loader.event.connect(lambda trained: self._on_loaded(loader, trained))
        loader.failed.connect(lambda message: self._on_failed(message))
        loader.start()

    def _on_loaded(self, loader: GeneratorWorker, trained: Any) -> None:
        if loader is not self._loader:
            return  # a run chosen meanwhile replaced this one
        self.trained = trained
        self._say(f"{trained.plan.backbone}, {len(trained.class_names)} classes, "
                  f"{trained.plan.input_size} px. {HINT}")
        self.model_loaded.emit(trained)
        self._pump()

    # -- images ------------------------------------------------------------------------------
    def drop_paths(self, paths: Sequence[str]) -> None:
        """Classify files and folders dropped on the window (the main window calls this)."""
        self.add_paths(paths)

    def add_paths(self, paths: Sequence[str]) -> None:
        """Queue images or folders; they are classified as soon as the model is ready."""
        self._pending.extend(str(p) for p in paths)
        if self.trained is None:
            if self._loader is None or not self._loader.is_running():
                self._load()
            return
        self._pump()

    def choose_images(self) -> None:
        """Ask for image files."""
        files, _ = QFileDialog.getOpenFileNames(self, "Images to classify", str(Path.home()),
                                                IMAGE_FILTER)
        if files:
            self.add_paths(files)

    def choose_folder(self) -> None:
        """Ask for a folder of images (searched recursively)."""
        folder = QFileDialog.getExistingDirectory(self, "Folder of images", str(Path.home()))
        if folder:
            self.add_paths([folder])

    def _pump(self) -> None:
        if not self._pending or self.trained is None or self.working():
            return
        paths, self._pending = self._pending, []
        self.skipped = []
        self._worker = GeneratorWorker(iter_explained, self.trained, paths,
                                       top_k=self.top_k_spin.value(), parent=self)
        self._worker.event.connect(self._on_event)
        self._worker.failed.connect(self._on_failed)
        self._worker.finished.connect(self._on_finished)
        self.progress.setRange(0, 0)
        self.progress.show()
        self._worker.start()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, PredictBatch):
            self.progress.setRange(0, max(1, event.total))
            self.progress.setValue(event.done)
            self.skipped.extend(event.skipped)
            self._say(f"Classifying {event.done} of {event.total} images…"
                      + self._skipped_words())
        elif isinstance(event, Explained):
            self._add_card(PredictionView(event.prediction, event.explanation,
                                          self.heatmap_check.isChecked()))

    def _on_finished(self) -> None:
        self.progress.hide()
        worker = self._worker
        if worker is not None and worker.error is None:
            shown = len(self.cards)
            self._say(f"{shown} image(s) shown" + self._skipped_words()
                      + ("" if shown else f". {HINT}"), error=bool(self.skipped) and not shown)
        self.finished.emit()
        self._pump()

    def _on_failed(self, message: str) -> None:
        self.progress.hide()
        self._say(message, error=True)

    def _skipped_words(self) -> str:
        if not self.skipped:
            return ""
        first = self.skipped[0]
        more = f" and {len(self.skipped) - 1} more" if len(self.skipped) > 1 else ""
        return f"; skipped {Path(first.path).name} ({first.reason}){more}"

    # -- cards -------------------------------------------------------------------------------
    def _add_card(self, card: PredictionView) -> None:
        self.cards.append(card)
        if len(self.cards) > MAX_CARDS:
            old = self.cards.pop(0)
            self.grid.removeWidget(old)
            old.deleteLater()
        self._relayout()

    def _relayout(self) -> None:
        for i, card in enumerate(self.cards):
            self.grid.addWidget(card, i // self.columns, i % self.columns)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """As many columns of cards as the width takes."""
        super().resizeEvent(event)
        columns = max(1, (self.width() - 40) // CARD_PITCH)  # less margins and scroll bar
        if columns != self.columns:
            self.columns = columns
            self._relayout()

    def _show_heatmaps(self, visible: bool) -> None:
        for card in self.cards:
            card.set_heatmap_visible(visible)

    def clear(self) -> None:
        """Remove every card (a running classification goes on adding new ones)."""
        for card in self.cards:
            self.grid.removeWidget(card)
            card.deleteLater()
        self.cards = []
        self._say(HINT)

    def _say(self, text: str, error: bool = False) -> None:
        self.notice.setText(text)
        self.notice.setStyleSheet("color: #b00020;" if error else "")

    # -- lifecycle ---------------------------------------------------------------------------
    def working(self) -> bool:
        """True while images are being classified."""
        return self._worker is not None and self._worker.is_running()

    def busy(self) -> bool:
        """Nothing here is lost by quitting (the main window asks only about busy panels)."""
        return False

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop loading and classifying; join both threads."""
        ended = True
        for worker in (self._worker, self._loader):
            if worker is not None:
                ended = worker.shutdown(timeout) and ended
        return ended

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Newly finished runs appear when the tab is shown."""
        super().showEvent(event)
        self.refresh_runs(only_if_changed=True)
