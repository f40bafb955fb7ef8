"""`MainWindow`: menus, toolbar, one tab per panel, drag and drop, and an orderly close.

The window owns no logic of its own: it forwards "open this" to the Dataset panel, loads and
saves the run configuration through `workbench.config`, remembers recent datasets and its
geometry in QSettings, and on close stops every panel's workers and joins every thread.

The other tabs (`HEAVY_TABS`: Model, Train, Results, Predict) need torch and torchvision, which take
seconds to import on a small machine. With `defer_panels` (what the application uses) the window
shows at once with the Dataset tab working and a "Loading…" page in each of the others; a worker
imports torch, and the panels replace their pages as soon as it is done (`panels_ready`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QStyle,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from workbench.config import load_config, save_config
from workbench.errors import UserError
from workbench_ui import workers
from workbench_ui.dataset_panel import DatasetPanel
from workbench_ui.state import AppState
from workbench_ui.workers import GeneratorWorker

MAX_RECENT = 8
RECENT_KEY = "recent/datasets"
DEMO = "demo"
# The slow imports behind the HEAVY_TABS, done in a worker before their panels are built
# on the GUI thread (which then imports only the panels' own modules: a fraction of a second).
SLOW_IMPORTS = ("torch", "torchvision", "workbench.models.transfer", "workbench.train.rundir")
HEAVY_TABS = ("Model", "Train", "Results", "Predict")


class MainWindow(QMainWindow):
    """The workbench window: the Dataset tab and the `HEAVY_TABS` over one `AppState`.

    `defer_panels`: build the heavy tabs after torch is imported in a worker (the window shows
    at once); otherwise build them here, before the constructor returns.
    """

    panels_ready = Signal()  # every heavy tab is built (deferred mode)

    def __init__(self, state: AppState, parent: QWidget | None = None, *,
                 defer_panels: bool = False) -> None:
        super().__init__(parent)
        self.state = state
        self.settings = QSettings()
        self._closed = False
        self._loader: GeneratorWorker | None = None
        self.panels_loaded = False
        self.setWindowTitle("Transfer Workbench")
        self.setAcceptDrops(True)
        self.dataset_panel = DatasetPanel(state, self)
        self.dataset_panel.opened.connect(self._remember)
        state.open_requested.connect(lambda source: self.open_dataset(source, show=False))
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.dataset_panel, "Dataset")
        self.panels: list[QWidget] = [self.dataset_panel]
        if defer_panels:
            self._load_panels_later()
        else:
            self._build_heavy_panels()
        self.setCentralWidget(self.tabs)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._restore_geometry()

    # -- construction ------------------------------------------------------------------------
    def _load_panels_later(self) -> None:
        """Show "Loading…" pages, import torch in a worker, then build the real tabs."""
        for title in HEAVY_TABS:
            self.tabs.addTab(LoadingView(title), title)
        self._loader = GeneratorWorker(import_modules, SLOW_IMPORTS)
        self._loader.finished.connect(self._on_loader_finished)
        QTimer.singleShot(0, self._loader.start)  # once the event loop runs: after show()

    def _on_loader_finished(self) -> None:
        if self._closed or self._loader is None:
            return
        if self._loader.error is not None:
            for i in range(self.tabs.count()):
                page = self.tabs.widget(i)
                if isinstance(page, LoadingView):
                    page.show_failure(self._loader.error)
            return
        self._build_deferred_panels(HEAVY_TABS)

    def _build_deferred_panels(self, titles: Sequence[str]) -> None:
        """Build one tab per turn of the event loop: short pauses of the GUI, not one long one."""
        if self._closed:
            return
        self._add_heavy_panel(titles[0])
        if len(titles) > 1:
            QTimer.singleShot(0, self, lambda: self._build_deferred_panels(titles[1:]))
        else:
            self.panels_loaded = True
            self.panels_ready.emit()

    def _build_heavy_panels(self) -> None:
        """Build every heavy tab now."""
        for title in HEAVY_TABS:
            self._add_heavy_panel(title)
        self.panels_loaded = True

    def _add_heavy_panel(self, title: str) -> None:
        """Build the panel of a heavy tab (its module imports torch) and show it as a tab."""
        if title == "Model":
            from workbench_ui.model_panel import ModelPanel

            panel: QWidget = ModelPanel(self.state, self)
        elif title == "Train":
            from workbench_ui.train_panel import TrainPanel

            panel = TrainPanel(self.state, self)
        elif title == "Results":
            from workbench_ui.results_panel import ResultsPanel
            from workbench_ui.train_panel import TrainPanel

            panel = ResultsPanel(self.state, self)
            for train in (p for p in self.panels if isinstance(p, TrainPanel)):
                train.run_finished.connect(panel.set_current_run)  # show each finished run
            self.state.run_open_requested.connect(
                lambda run_dir, results=panel: self._show_results(results, run_dir))
        else:
            from workbench_ui.predict_panel import PredictPanel

            panel = PredictPanel(self.state, self)
        self.panels.append(panel)
        self._put_tab(panel, title)

    def _show_results(self, results: QWidget, run_dir: str) -> None:
        """Show a run's results (opened from Manage runs) in the Results tab."""
        results.show_run(run_dir)
        self.tabs.setCurrentWidget(results)

    def _put_tab(self, panel: QWidget, title: str) -> None:
        """Add the tab, or replace the "Loading…" page of the same title (kept selected)."""
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if isinstance(page, LoadingView) and self.tabs.tabText(i) == title:
                selected = self.tabs.currentIndex() == i
                self.tabs.removeTab(i)
                self.tabs.insertTab(i, panel, title)
                if selected:
                    self.tabs.setCurrentIndex(i)
                page.deleteLater()
                return
        self.tabs.addTab(panel, title)

    def _action(self, text: str, slot: Callable[[], Any], shortcut: Any = None,
                icon: QStyle.StandardPixmap | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip or text.rstrip("…"))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.open_folder_action = self._action(
            "Open folder…", self.choose_folder, QKeySequence.StandardKey.Open, sp.SP_DirOpenIcon,
            "Open a folder with one sub-folder of images per class")
        self.open_csv_action = self._action(
            "Open CSV…", self.choose_csv, "Ctrl+Shift+O", sp.SP_FileDialogDetailedView,
            "Open a CSV manifest: path,label[,split]")
        self.open_demo_action = self._action(
            "Open demo dataset", lambda: self.open_dataset(DEMO), None, sp.SP_DesktopIcon,
            "Open the bundled long-tailed digits dataset")
        self.open_config_action = self._action(
            "Open config…", self.choose_config_to_open, None, sp.SP_DialogOpenButton)
        self.save_config_action = self._action(
            "Save config…", self.choose_config_to_save, QKeySequence.StandardKey.Save,
            sp.SP_DialogSaveButton)
        self.export_action = self._action(
            "Export model…", self.choose_export, "Ctrl+E", sp.SP_DialogSaveButton,
            "Export a finished run's model: ONNX, TorchScript or torchvision, with a model card")
        self.quit_action = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([self.open_folder_action, self.open_csv_action,
                              self.open_demo_action])
        self.recent_menu = QMenu("Open recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.open_config_action, self.save_config_action])
        file_menu.addSeparator()
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        self._fill_recent_menu()

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addActions([self.open_folder_action, self.open_csv_action,
                            self.open_demo_action])
        toolbar.addSeparator()
        toolbar.addActions([self.open_config_action, self.save_config_action])
        self.addToolBar(toolbar)

    def _build_status_bar(self) -> None:
        self.dataset_label = QLabel("no dataset")
        self.statusBar().addPermanentWidget(self.dataset_label)
        self.state.message.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.state.dataset_changed.connect(self._on_dataset_changed)
        self._on_dataset_changed(self.state.index)  # a state may arrive with a dataset loaded

    # -- datasets ----------------------------------------------------------------------------
    def open_dataset(self, source: str | Path, show: bool = True) -> None:
        """Open a folder, a CSV manifest or "demo" (in a worker); `show`: go to the Dataset tab."""
        if show:
            self.tabs.setCurrentWidget(self.dataset_panel)
        self.dataset_panel.open_path(source)

    def open_initial(self, path: str | Path | None = None) -> None:
        """What the window opens at start: `path`, else the most recent dataset, else the demo."""
        if path is not None:
            self.open_dataset(path)
            return
        recent = self.recent_datasets()
        self.open_dataset(recent[0] if recent else DEMO)

    def choose_folder(self) -> None:
        """Ask for a dataset folder and open it."""
        folder = QFileDialog.getExistingDirectory(self, "Open dataset folder", self._start_dir())
        if folder:
            self.open_dataset(folder)

    def choose_csv(self) -> None:
        """Ask for a CSV manifest and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open CSV manifest", self._start_dir(), "CSV manifest (*.csv);;All files (*)")
        if path:
            self.open_dataset(path)

    def recent_datasets(self) -> list[str]:
        """Recently opened datasets, newest first; entries that no longer exist are pruned."""
        raw = self.settings.value(RECENT_KEY, [])
        entries = [raw] if isinstance(raw, str) else list(raw or [])
        kept = [e for e in entries if e == DEMO or Path(e).exists()][:MAX_RECENT]
        if kept != entries:
            self.settings.setValue(RECENT_KEY, kept)
        return kept

    def _remember(self, source: str) -> None:
        entry = source if source == DEMO else str(Path(source).expanduser().resolve())
        recent = [entry, *[e for e in self.recent_datasets() if e != entry]][:MAX_RECENT]
        self.settings.setValue(RECENT_KEY, recent)
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_datasets()
        for entry in recent:
            text = "Demo dataset (digits-lt)" if entry == DEMO else entry
            self.recent_menu.addAction(text, lambda e=entry: self.open_dataset(e))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.settings.setValue(RECENT_KEY, [])
        self._fill_recent_menu()

    def _on_dataset_changed(self, index: Any) -> None:
        path = self.state.config.data.path
        name = "no dataset" if index is None else (
            "demo" if path == DEMO else Path(path).name or path)
        self.dataset_label.setText(name)
        self.setWindowTitle(f"{name} — Transfer Workbench" if index is not None
                            else "Transfer Workbench")

    def _start_dir(self) -> str:
        recent = [e for e in self.recent_datasets() if e != DEMO]
        if not recent:
            return str(Path.home())
        return str(Path(recent[0]).parent)

    # -- configuration -----------------------------------------------------------------------
    def choose_config_to_open(self) -> None:
        """Ask for a TOML config and load it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open run config", self._start_dir(), "Run config (*.toml);;All files (*)")
        if path:
            self.open_config(path)

    def choose_config_to_save(self) -> None:
        """Ask where to save the current config as TOML."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save run config", str(Path(self._start_dir()) / "config.toml"),
            "Run config (*.toml)")
        if path:
            self.save_config(path)

    def open_config(self, path: str | Path) -> bool:
        """Load a config file (errors in a dialog); opens its dataset if it names another."""
        try:
            config = load_config(path)
        except UserError as exc:
            QMessageBox.warning(self, "Cannot open config", str(exc))
            return False
        current = self.state.config.data.path
        self.state.set_config(config)
        if config.data.path and (config.data.path != current or self.state.index is None):
            self.open_dataset(config.data.path)
        self.state.message.emit(f"Loaded config {path}")
        return True

    def save_config(self, path: str | Path) -> bool:
        """Write the current config as TOML (errors in a dialog)."""
        try:
            saved = save_config(self.state.config, path)
        except (UserError, OSError) as exc:
            QMessageBox.warning(self, "Cannot save config", f"{path}: {exc}")
            return False
        self.state.message.emit(f"Saved config {saved}")
        return True

    # -- drag and drop -----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        """Accept a dropped folder or CSV file (a QDragEnterEvent is a QDragMoveEvent), or
        any files and folders when the current tab takes drops (Predict: images)."""
        mime = event.mimeData()
        if _dropped_dataset(mime) is not None or self._drop_target(mime) is not None:
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        """Keep accepting while the drag moves over child widgets (the plot, the lists)."""
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        """Give the drop to the current tab when it takes drops, else open the dataset."""
        target = self._drop_target(event.mimeData())
        if target is not None:
            event.acceptProposedAction()
            target.drop_paths(_local_paths(event.mimeData()))
            return
        path = _dropped_dataset(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.open_dataset(path)

    def _drop_target(self, mime: Any) -> Any:
        """The current tab when it takes dropped paths (has `drop_paths`) and some came."""
        page = self.tabs.currentWidget()
        if hasattr(page, "drop_paths") and _local_paths(mime):
            return page
        return None

    # -- export ------------------------------------------------------------------------------
    def choose_export(self) -> None:
        """File ▸ Export model…: the dialog, on the Predict tab's run when there is one."""
        from workbench_ui.export_dialog import ExportDialog

        run = next((p.run_dir for p in self.panels if hasattr(p, "drop_paths")), None)
        self.export_dialog = ExportDialog(run, self)
        self.export_dialog.show()

    # -- closing -----------------------------------------------------------------------------
    def busy_panels(self) -> list[QWidget]:
        """Panels doing work that quitting would throw away (a training run)."""
        return [p for p in self.panels if p.busy()]

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Ask before stopping a training run, then stop and join every worker."""
        busy = [] if self._closed else self.busy_panels()
        if busy:
            answer = QMessageBox.question(
                self, "Quit", self._busy_question(busy),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def _busy_question(self, busy: list[QWidget]) -> str:
        titles = [self.tabs.tabText(self.tabs.indexOf(p)) for p in busy]
        if "Train" in titles:
            return "Training is running. Stop it and quit?"
        return f"Work in the {' and '.join(titles)} tab is still running. Stop it and quit?"

    def shutdown(self) -> None:
        """Stop every panel's work, join every worker thread, remember the geometry."""
        if self._closed:
            return
        self._closed = True
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        # joining can take seconds (a torch import cannot be interrupted): not in a frozen window
        self.hide()
        for panel in self.panels:
            panel.shutdown()
        workers.stop_all(timeout=15.0)  # also waits for the torch import of a deferred start

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        window_state = self.settings.value("window/state")
        if window_state is not None:
            self.restoreState(window_state)


class LoadingView(QWidget):
    """The page a tab shows until its panel is built: what is loading, a busy bar."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(f"Loading the {title} tab…\n(PyTorch and torchvision are being "
                            "imported; the Dataset tab works meanwhile)")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy: no percentage to show
        self.bar.setMaximumWidth(320)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.label)
        layout.addWidget(self.bar, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)

    def show_failure(self, message: str) -> None:
        """Replace the busy bar with why the tab could not be loaded."""
        self.bar.hide()
        self.label.setText(f"This tab could not be loaded:\n{message}")


def import_modules(names: Sequence[str]) -> Iterator[str]:
    """Import each module (in a worker thread), yielding its name once imported."""
    for name in names:
        importlib.import_module(name)
        yield name


def _local_paths(mime: Any) -> list[str]:
    """The local files and folders a drop carries."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]


def _dropped_dataset(mime: Any) -> str | None:
    """The dataset a drop carries: one local folder or .csv file, else None."""
    if not mime.hasUrls():
        return None
    paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    if len(paths) != 1:
        return None
    path = Path(paths[0])
    if path.is_dir() or path.suffix.lower() == ".csv":
        return str(path)
    return None
