"""The Train tab: options, imbalance handling, Start / Pause / Stop, progress and live charts.

The panel forwards the user's intent to a `TrainingRun` (the engine in a worker thread) and
renders the engine's events; it computes nothing itself.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench import paths
from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.errors import UserError
from workbench.train.events import (
    BatchDone,
    EpochStarted,
    Failed,
    Finished,
    Paused,
    Resumed,
    RunStarted,
    Stopped,
)
from workbench.train.rundir import RunSummary, inspect_run
from workbench_ui.batch_preview_view import BatchPreviewView
from workbench_ui.config_binder import ConfigBinder
from workbench_ui.lr_finder_view import LrFinderView
from workbench_ui.plan_view import PlanView
from workbench_ui.runs_dialog import PathDialog, RunsDialog
from workbench_ui.state import AppState
from workbench_ui.train_charts import TrainChartsView
from workbench_ui.train_imbalance import ImbalanceView
from workbench_ui.train_notice import NoticeBanner, explain_failure
from workbench_ui.train_options import TrainOptionsView
from workbench_ui.train_progress import ProgressView
from workbench_ui.train_run import TrainerFactory, TrainingRun

SKLEARN_HEADS = {"svm": "a linear SVM", "logreg": "logistic regression"}


class RunState(Enum):
    """What the panel's buttons allow."""

    IDLE = "idle"
    STARTING = "starting"  # the worker builds the model and data; no RunStarted yet
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    STOPPING = "stopping"


class TrainPanel(QWidget):
    """Train the configured model on the open dataset and watch it live.

    Signals:
        run_finished(str): the run directory of a run that ended (finished, stopped or failed
            after it started; "" when it failed before having one).
    """

    run_finished = Signal(str)

    def __init__(self, state: AppState, parent: QWidget | None = None, *,
                 trainer_factory: TrainerFactory | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._trainer_factory = trainer_factory  # None: the real engine
        self.run: TrainingRun | None = None
        self.run_state = RunState.IDLE
        self.run_dir = ""
        self.device = ""  # where the last run trained, e.g. "cpu" or "cuda:0"
        self._skipped = 0
        self._head = ""  # the running config's head ("svm" / "logreg" are fitted once)
        self.runs_dialog: RunsDialog | None = None
        self.path_dialog: PathDialog | None = None
        self._binder = ConfigBinder(state, self)
        self.options = TrainOptionsView(state, self._binder)
        self.imbalance = ImbalanceView(state, self._binder)
        self.progress = ProgressView()
        self.charts = TrainChartsView()
        self.notice = NoticeBanner()
        self.plan_view = PlanView(state)
        self.batch_preview = BatchPreviewView(state)
        self.lr_finder = LrFinderView(state)
        self._binder.rejected.connect(self.notice.show_error)
        state.dataset_changed.connect(self._on_dataset_changed)
        self._build_buttons()
        self._build_layout()
        self._set_run_state(RunState.IDLE)

    # -- layout ----------------------------------------------------------------------------
    def _build_buttons(self) -> None:
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch. The epoch in progress is not "
                                    "kept: the run keeps its last completed epoch (resumable)")
        self.resume_run_button = QPushButton("Resume run…")
        self.resume_run_button.setToolTip(
            "Continue a stopped or finished run from its last epoch: its settings are loaded, "
            "its curves redrawn, and training goes on in the same run folder")
        self.resume_run_button.clicked.connect(self.choose_run_to_resume)
        self.open_folder_button = QPushButton("Open run folder")
        self.manage_runs_button = QPushButton("Manage runs…")
        self.manage_runs_button.setToolTip("List the runs in the runs folder with their results "
                                           "and sizes, and delete old ones")
        self.manage_runs_button.clicked.connect(self.manage_runs)
        self.run_dir_label = QLabel("No run yet")
        self.run_dir_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button.setToolTip("Train with the options on this tab and the Model tab")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.open_folder_button.clicked.connect(self.open_run_folder)

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button,
                       self.resume_run_button):
            buttons.addWidget(button)
        buttons.addWidget(self.progress, 1)
        folder = QHBoxLayout()
        folder.addWidget(QLabel("Run folder:"))
        folder.addWidget(self.run_dir_label, 1)
        folder.addWidget(self.open_folder_button)
        folder.addWidget(self.manage_runs_button)
        side = QWidget()
        side_column = QVBoxLayout(side)
        side_column.addWidget(self.options)
        side_column.addWidget(self.imbalance)
        plan_box = QGroupBox("Next run")
        QVBoxLayout(plan_box).addWidget(self.plan_view)
        side_column.addWidget(plan_box)
        side_column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(side.sizeHint().width() + 20)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        recipes = QSplitter()  # what the options do to the images, and what LR suits them
        recipes.addWidget(self.batch_preview)
        recipes.addWidget(self.lr_finder)
        recipes.setStretchFactor(1, 1)
        self.views = QTabWidget()
        self.views.addTab(self.charts, "Live charts")
        recipes_page = QScrollArea()  # scrolls rather than widening the window past 1024 px
        recipes_page.setWidgetResizable(True)
        recipes_page.setFrameShape(QScrollArea.Shape.NoFrame)
        recipes_page.setWidget(recipes)
        self.views.addTab(recipes_page, "Batch preview && LR finder")
        split = QSplitter()
        split.addWidget(scroll)
        split.addWidget(self.views)
        split.setStretchFactor(1, 1)
        split.setSizes([320, 960])
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(split, 1)
        layout.addLayout(folder)
        self.notice.float_over(self.charts)  # over the charts: the form never moves

    # -- user intent -----------------------------------------------------------------------
    def start(self) -> None:
        """Start a run with the current configuration and dataset (ignored while one runs)."""
        if self.busy():
            return
        config = self._state.config
        if self._state.index is None and not config.data.path:
            self.notice.show_error("Open a dataset first (File > Open folder, or the demo).")
            return
        self._state.plan  # noqa: B018 (planning sets plan_error)
        if self._state.plan_error:  # what the engine would refuse, said before it starts
            self.notice.show_error(self._state.plan_error)
            return
        self._launch(config, self._state.index)

    def choose_run_to_resume(self) -> None:
        """Ask for a run folder and continue it."""
        start = self.run_dir or str(paths.default_runs_dir())
        folder = QFileDialog.getExistingDirectory(self, "Resume run", start)
        if folder:
            self.resume_run(folder)

    def resume_run(self, folder: str | Path, epochs: int | None = None) -> bool:
        """Continue the run in `folder` from its last checkpoint; False when it did not start.

        Its config is loaded into the form, its recorded curves are redrawn, and training goes
        on to `epochs` in total (default: the run's own; asked for when the run reached them).
        """
        if self.busy():
            return False
        try:
            summary = inspect_run(folder)
            if epochs is None and summary.epochs_done >= summary.config.train.epochs:
                epochs = self._ask_total_epochs(summary)
                if epochs is None:
                    return False
            if epochs is not None:
                summary.config.train.epochs = epochs
            index = self._index_for(summary.config)
            self._state.set_config(summary.config)
        except UserError as exc:
            self.notice.show_error(str(exc))
            return False
        self.charts.replay(summary.history)
        self._launch(summary.config, index, resume_dir=str(summary.path))
        if index is None and summary.config.data.path:
            # the run trains on its own dataset: show that one on the Dataset tab too
            self._state.open_requested.emit(summary.config.data.path)
        return True

    def _ask_total_epochs(self, summary: RunSummary) -> int | None:
        done = summary.epochs_done
        value, ok = QInputDialog.getInt(
            self, "Resume run", f"{summary.path.name} already trained its {done} epochs.\n"
            "Train on to how many epochs in total?", done * 2, done + 1, 100_000)
        return value if ok else None

    def _index_for(self, config: RunConfig) -> DatasetIndex | None:
        """The open dataset when the run used it with the same split; else None (the engine
        scans the run's own `data.path`, and says so when it no longer exists)."""
        current = self._state.config.data
        same = (config.data.path, config.data.val_fraction, config.data.split_seed) == (
            current.path, current.val_fraction, current.split_seed)
        return self._state.index if same else None

    def _launch(self, config: RunConfig, index: DatasetIndex | None,
                resume_dir: str | None = None) -> None:
        self.notice.clear()
        if resume_dir is None:  # a resumed run keeps the curves just replayed
            self.charts.clear()
        self._skipped = 0
        self.run = TrainingRun(config, index, parent=self, trainer_factory=self._trainer_factory,
                               resume_dir=resume_dir)
        self._head = config.model.head
        self.run.worker.event.connect(self._on_event)
        self.run.worker.failed.connect(self._on_failed)
        self.run.worker.finished.connect(self._on_worker_finished)
        self._set_run_state(RunState.STARTING)
        self.progress.status.setText("Resuming the run…" if resume_dir else
                                     "Preparing the model and data…")
        self.run.start()

    def _toggle_pause(self) -> None:
        if self.run is None:
            return
        if self.run_state is RunState.PAUSED:
            self.run.resume()
            self._set_run_state(RunState.RUNNING)
        elif self.run_state is RunState.RUNNING:
            self.run.pause()
            self._set_run_state(RunState.PAUSING)

    def stop(self) -> None:
        """Ask the run to stop after the current batch; the panel goes idle when it has."""
        if self.run is None or not self.busy():
            return
        self.run.stop()
        self._set_run_state(RunState.STOPPING)
        self.progress.status.setText("Stopping after this batch… (the unfinished epoch is not "
                                     "kept)")

    def open_run_folder(self) -> bool:
        """Open the run directory in the system's file browser; False when there is none.

        Where no file browser is registered (openUrl says False), a dialog shows the path with
        a Copy button instead of nothing happening.
        """
        if not self.run_dir:
            return False
        if QDesktopServices.openUrl(QUrl.fromLocalFile(self.run_dir)):
            return True
        self.path_dialog = PathDialog(
            "Run folder", "No file manager could open the run folder. Its path:", self.run_dir,
            self)
        self.path_dialog.open()
        return False

    def runs_folder(self) -> Path:
        """Where new runs go: `train.out_dir`, else the default runs folder."""
        return Path(self._state.config.train.out_dir or paths.default_runs_dir()).expanduser()

    def manage_runs(self) -> RunsDialog:
        """Open the dialog that lists the runs folder and deletes old runs (never the one
        training now)."""
        self.runs_dialog = RunsDialog(self.runs_folder(), self.run_dir if self.busy() else "",
                                      self)
        self.runs_dialog.finished.connect(self._after_runs_dialog)
        self.runs_dialog.run_opened.connect(self._state.run_open_requested)  # its results
        self.runs_dialog.open()
        return self.runs_dialog

    def _after_runs_dialog(self) -> None:
        if self.run_dir and not Path(self.run_dir).exists():  # the shown run was deleted
            self._show_run_dir("")
            self.run_dir_label.setText("No run yet")

    # -- main window contract --------------------------------------------------------------
    def busy(self) -> bool:
        """True while a run trains (the main window asks before closing)."""
        return self.run is not None and self.run.is_running()

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop a run (and a batch preview or LR test) and join their threads; True when no
        thread is left running."""
        views = [view.shutdown(timeout) for view in (self.batch_preview, self.lr_finder)]
        if self.run is None:
            return all(views)
        ended = self.run.shutdown(timeout)
        if ended:
            self._set_run_state(RunState.IDLE)
        return ended and all(views)

    def _on_dataset_changed(self, _index: Any) -> None:
        # the charts describe the last run's classes; a run in progress keeps its own
        if not self.busy():
            self.charts.clear()

    # -- engine events ---------------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        self.progress.show_event(event)
        self.charts.show_event(event)
        if isinstance(event, RunStarted):
            self._show_run_dir(event.run_dir)
            self.device = event.device
            if self.run_state is RunState.STARTING:
                self._set_run_state(RunState.RUNNING)
        elif isinstance(event, BatchDone):
            self._skipped = event.skipped_images
        elif isinstance(event, EpochStarted) and self._head in SKLEARN_HEADS:
            self._show_one_shot_fit(SKLEARN_HEADS[self._head])
        elif isinstance(event, Paused | Resumed):
            self._on_pause_event(event)
        elif isinstance(event, Failed):
            self.notice.show_error(explain_failure(event.message))
        elif isinstance(event, Finished | Stopped):
            self._show_run_dir(event.run_dir)

    def _show_one_shot_fit(self, what: str) -> None:
        self.progress.show_fitting(what)
        self.notice.show_info(
            f"The head is {what} from scikit-learn, fitted once on the cached features: there "
            "are no per-batch loss, learning-rate or throughput curves; the validation metrics "
            "appear when the fit is done.")

    def _on_pause_event(self, event: Any) -> None:
        if self.run_state is RunState.STOPPING:
            return
        self._set_run_state(RunState.PAUSED if isinstance(event, Paused) else RunState.RUNNING)

    def _on_failed(self, message: str) -> None:
        self.progress.status.setText("Failed")
        self.notice.show_error(explain_failure(message))

    def _on_worker_finished(self) -> None:
        if self.run is not None:
            self.run.worker.join(1.0)  # the thread is past its last event: this returns at once
        self.charts.flush()
        if self._skipped:
            # the engine counts failed loads, and an unreadable file fails again every epoch
            note = (f"Unreadable images were skipped {self._skipped} time(s) during training "
                    "(each unreadable file once per epoch; see the Dataset tab's problems).")
            if self.notice.kind == "error":  # keep the error visible, add the count to it
                self.notice.show_error(f"{self.notice.text()}  {note}")
            else:
                self.notice.show_info(note)
        self._set_run_state(RunState.IDLE)
        self.run_finished.emit(self.run_dir)

    def _show_run_dir(self, run_dir: str) -> None:
        self.run_dir = run_dir
        dialog = self.runs_dialog
        if dialog is not None and dialog.isVisible() and self.busy():
            dialog.set_current(run_dir)  # a run that started while the dialog was open
        self.run_dir_label.setText(run_dir)
        self.open_folder_button.setEnabled(bool(run_dir))

    def _set_run_state(self, run_state: RunState) -> None:
        self.run_state = run_state
        idle = run_state is RunState.IDLE
        self.start_button.setEnabled(idle)
        self.resume_run_button.setEnabled(idle)
        self.pause_button.setEnabled(run_state in (RunState.RUNNING, RunState.PAUSED))
        self.pause_button.setText("Resume" if run_state is RunState.PAUSED else "Pause")
        self.stop_button.setEnabled(not idle and run_state is not RunState.STOPPING)
        self.open_folder_button.setEnabled(bool(self.run_dir))
        self._binder.set_enabled(idle)
        self._state.set_running(not idle)  # the Model and Dataset tabs lock what shaped the run
        self.imbalance.set_editable(idle)
