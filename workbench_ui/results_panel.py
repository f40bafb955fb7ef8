"""`ResultsPanel`: what a finished run gets wrong, and what fixing the long tail would change.

Opens any run (the one the Train tab just finished, or a run folder) and shows its evaluation on
the val or test split: a summary line, the confusion matrix (click a cell: its images), the top
losses, per-class accuracy against training count with the logit-adjustment slider, the
reliability diagram, and a comparison with a second run. Images can be marked mislabelled or
excluded; the marks go to `corrections.csv` in the run folder, never into the dataset.

Evaluations come from `workbench.results.evaluate` in a worker: stored predictions load in a
moment, a run without them (an older run, another checkpoint) is classified on request.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench import paths
from workbench.results.evaluate import EvalProgress, Evaluation, iter_evaluation_events
from workbench.train.predictions import predictions_file
from workbench.train.runpaths import RunPaths
from workbench.train.runs import run_info
from workbench_ui.compare_view import CompareView
from workbench_ui.confusion_cells_view import ConfusionCellsView
from workbench_ui.gallery_view import GalleryView
from workbench_ui.image_dialog import ImageDialog
from workbench_ui.per_class_view import PerClassView
from workbench_ui.reliability_view import ReliabilityView
from workbench_ui.results_corrections import CorrectionsBar
from workbench_ui.state import AppState
from workbench_ui.tail_view import TailView
from workbench_ui.workers import GeneratorWorker

TOP_LOSSES = 48


def missing_predictions_note(run_dir: str, split: str, checkpoint: str) -> str:
    """Why a run has no stored predictions for `split` / `checkpoint`, and what to do."""
    info = run_info(run_dir)
    if info.outcome == "Stopped":
        if not info.epochs_done:
            return ("This run was stopped before its first epoch ended: nothing was kept "
                    "(a stop keeps completed epochs only). Train it again.")
        return (f"This run was stopped after {info.epochs_done} of {info.epochs} epochs "
                "(the epoch in progress was not kept); predictions are stored when a run "
                "ends: press Evaluate to classify the images with its checkpoint.")
    return (f"No stored {split} predictions for the {checkpoint} checkpoint (a run from an "
            "older version, or the last epoch was not the best): press Evaluate to classify "
            "the images.")


class ResultsPanel(QWidget):
    """The Results tab over one run folder (`show_run`)."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_dir = ""
        self.current_run = ""  # the Train tab's latest run
        self.evaluation: Evaluation | None = None
        self.worker: GeneratorWorker | None = None
        self.compare_worker: GeneratorWorker | None = None
        self._build_widgets()
        self._build_layout()
        self._connect()
        self._set_idle()

    # -- construction ------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.run_label = QLabel("No run open: train one, or open a run folder.")
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open run…")
        self.current_button = QPushButton("Latest run")
        self.current_button.setToolTip("The run the Train tab finished last")
        self.split_combo = QComboBox()
        self.split_combo.addItems(["val", "test"])
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.addItems(["best", "last"])
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Classify the split's images with this checkpoint and "
                                        "store the predictions in the run folder")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setObjectName("notice")
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.confusion = ConfusionCellsView()
        self.gallery = GalleryView()
        self.top_losses_button = QPushButton("Top losses")
        self.top_losses_button.setToolTip("The images the model gets most confidently wrong")
        self.tail = TailView()
        self.reliability = ReliabilityView()
        self.per_class = PerClassView()
        self.compare = CompareView()
        self.corrections = CorrectionsBar(self.state)

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        for widget in (self.open_button, self.current_button, QLabel("split"), self.split_combo,
                       QLabel("checkpoint"), self.checkpoint_combo, self.evaluate_button,
                       self.progress):
            top.addWidget(widget)
        top.addWidget(self.run_label, 1)
        errors = QSplitter(Qt.Orientation.Horizontal)
        errors.addWidget(self.confusion)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.top_losses_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.gallery, 1)
        errors.addWidget(right)
        errors.setSizes([420, 580])
        self.views = QTabWidget()
        self.views.addTab(errors, "Errors")
        self.views.addTab(self.tail, "Long tail")
        self.views.addTab(self.per_class, "Per class")
        self.views.addTab(self.reliability, "Calibration")
        self.views.addTab(self.compare, "Compare")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.notice)
        layout.addWidget(self.summary)
        layout.addWidget(self.views, 1)
        layout.addWidget(self.corrections)

    def _connect(self) -> None:
        self.open_button.clicked.connect(self.choose_run)
        self.current_button.clicked.connect(lambda: self.show_run(self.current_run))
        self.evaluate_button.clicked.connect(lambda: self.evaluate(compute=True))
        self.split_combo.currentTextChanged.connect(lambda _: self.evaluate(compute=False))
        self.checkpoint_combo.currentTextChanged.connect(lambda _: self.evaluate(compute=False))
        self.confusion.cell_clicked.connect(self.show_cell)
        self.top_losses_button.clicked.connect(self.show_top_losses)
        self.gallery.image_activated.connect(self.show_image)
        self.gallery.correction_requested.connect(self._correct)
        self.corrections.changed.connect(self.gallery.set_marks)
        self.compare.choose_requested.connect(self.choose_second_run)

    # -- which run -----------------------------------------------------------------------------
    def set_current_run(self, run_dir: str) -> None:
        """The Train tab finished a run: remember it and show it."""
        self.current_run = run_dir
        self.current_button.setEnabled(bool(run_dir))
        if run_dir:
            self.show_run(run_dir)

    def choose_run(self) -> None:
        """Ask for a run folder and show it."""
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder",
                                                  self.run_dir or str(paths.default_runs_dir()))
        if folder:
            self.show_run(folder)

    def show_run(self, run_dir: str) -> None:
        """Show a run: its stored predictions at once, or say how to get them."""
        if not run_dir:
            return
        if not RunPaths.of(run_dir).config.is_file():
            self.notice.setText(f"{run_dir} is not a run folder (no config.toml): pick a folder "
                                "that `workbench train` or the Train tab wrote")
            return
        self.run_dir = str(run_dir)
        self.run_label.setText(self.run_dir)
        self.corrections.set_run(self.run_dir)
        self._set_idle()
        self.evaluate(compute=False)

    def evaluate(self, compute: bool) -> None:
        """Load the chosen split and checkpoint; `compute`: classify the images when they were
        never stored (else only say so)."""
        if not self.run_dir or self.busy():
            return
        split, checkpoint = self.split_combo.currentText(), self.checkpoint_combo.currentText()
        if not compute and not predictions_file(self.run_dir, split, checkpoint).is_file():
            self._show(None)
            self.notice.setText(missing_predictions_note(self.run_dir, split, checkpoint))
            return
        self.notice.setText(f"Evaluating on {split}…")
        self.worker = self._start(self.run_dir, split, checkpoint, self._on_event)

    def _start(self, run_dir: str, split: str, checkpoint: str, slot: object) -> GeneratorWorker:
        worker = GeneratorWorker(iter_evaluation_events, run_dir, split, checkpoint,
                                 throttle_s=0.1, parent=self,
                                 droppable=lambda e: isinstance(e, EvalProgress))
        worker.event.connect(slot)
        worker.failed.connect(self.notice.setText)
        worker.finished.connect(self._set_idle)
        self._set_busy()
        worker.start()
        return worker

    def _on_event(self, event: object) -> None:
        if isinstance(event, EvalProgress):
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)
        elif isinstance(event, Evaluation):
            self.notice.setText(" · ".join(event.predictions.notes))
            self._show(event)

    # -- showing an evaluation -----------------------------------------------------------------
    def _show(self, ev: Evaluation | None) -> None:
        self.evaluation = ev
        self.summary.setText("" if ev is None else _summary(ev))
        if ev is None:
            self.confusion.clear_matrix()
            self.gallery.show_items("", [], [], [], [])
        else:
            self.confusion.set_counts(ev.metrics.confusion, ev.class_names)
            self.show_top_losses()
        self.tail.set_predictions(None if ev is None else ev.predictions,
                                  None if ev is None else ev.metrics)
        self.reliability.set_reliability(None if ev is None else ev.calibration)
        self.per_class.set_evaluation(ev)
        self.compare.set_first(ev)
        self.compare.set_second(None)

    def show_cell(self, true: int, predicted: int) -> None:
        """Show the images of one confusion-matrix cell, surest first."""
        ev = self.evaluation
        if ev is None:
            return
        rows = ev.rows_of_cell(true, predicted)
        self.confusion.select((true, predicted))
        names = ev.class_names
        kind = "correct" if true == predicted else "confused"
        self._list(f"{names[true]} → {names[predicted]}: {len(rows)} image(s), {kind}", rows)

    def show_top_losses(self) -> None:
        """Show the images with the highest loss: the lowest probability on the true class
        first (each caption gives that probability, the number the order follows)."""
        ev = self.evaluation
        if ev is not None:
            rows = [r["row"] for r in ev.top_losses(TOP_LOSSES)]
            self._list(f"Top {len(rows)} losses: the least probability on the true class first",
                       rows, true_prob=True)

    def _list(self, title: str, rows: list[int], true_prob: bool = False) -> None:
        """Show `rows` in the gallery; captions give the predicted class's probability, or with
        `true_prob` the true class's (what a loss ranking follows)."""
        ev = self.evaluation
        assert ev is not None
        p, probs = ev.predictions, ev.probs
        captions = []
        for r in rows:
            pred, true = int(probs[r].argmax()), int(p.labels[r])
            shown = f"p(true) {100 * probs[r, true]:.0f}%" if true_prob else (
                f"{100 * probs[r, pred]:.0f}%")
            captions.append(f"{p.class_names[true]}→{p.class_names[pred]} {shown}")
        self.gallery.show_items(title, rows, [p.paths[r] for r in rows], captions,
                                p.class_names, [int(p.labels[r]) for r in rows])
        self.gallery.set_marks(self.corrections.marks())

    def show_image(self, row: int) -> ImageDialog | None:
        """The large view of one image with its top-5 (returned for tests)."""
        ev = self.evaluation
        if ev is None:
            return None
        p = ev.predictions
        dialog = ImageDialog(p.paths[row], p.class_names[p.labels[row]], p.top_k(row, 5), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _correct(self, row: int, action: str, label: str) -> None:
        if self.evaluation is not None:
            self.corrections.record(self.evaluation.predictions.paths[row], action, label)

    # -- comparison ----------------------------------------------------------------------------
    def choose_second_run(self) -> None:
        """Ask for another run folder and compare it with this one (same split, checkpoint)."""
        if self.evaluation is None or self.busy():
            self.notice.setText("Evaluate a run first, then pick the one to compare it with.")
            return
        folder = QFileDialog.getExistingDirectory(self, "Compare with run folder",
                                                  str(Path(self.run_dir).parent))
        if folder:
            self.compare_with(folder)

    def compare_with(self, run_dir: str) -> None:
        """Evaluate `run_dir` like this run and show the two side by side."""
        p = self.evaluation.predictions if self.evaluation is not None else None
        if p is None:
            return
        self.compare_worker = self._start(run_dir, p.split, p.checkpoint, self._on_second)

    def _on_second(self, event: object) -> None:
        if isinstance(event, Evaluation):
            self.compare.set_second(event)
            self.views.setCurrentWidget(self.compare)

    # -- state -------------------------------------------------------------------------------
    def busy(self) -> bool:
        """True while an evaluation runs (quitting would throw it away)."""
        return any(w is not None and w.is_running() for w in (self.worker, self.compare_worker))

    def _set_busy(self) -> None:
        for widget in (self.evaluate_button, self.open_button, self.split_combo,
                       self.checkpoint_combo):
            widget.setEnabled(False)
        self.progress.setRange(0, 0)

    def _set_idle(self) -> None:
        if self.busy():
            return
        for widget in (self.evaluate_button, self.open_button, self.split_combo,
                       self.checkpoint_combo):
            widget.setEnabled(True)
        self.evaluate_button.setEnabled(bool(self.run_dir))
        self.current_button.setEnabled(bool(self.current_run))
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.evaluation is not None else 0)

    def shutdown(self) -> None:
        """Stop the evaluations and the thumbnail decoding; join their threads."""
        for worker in (self.worker, self.compare_worker):
            if worker is not None:
                worker.shutdown(10.0)
        self.gallery.shutdown()


def _summary(ev: Evaluation) -> str:
    m, p = ev.metrics, ev.predictions
    shots = " · ".join(f"{band} {'–' if v is None else f'{100 * v:.1f}%'}"
                       for band, v in m.shot_acc.items())
    return (f"<b>{p.split}</b> split, <b>{p.checkpoint}</b> checkpoint, {len(p):,} images: "
            f"<b>balanced accuracy {100 * m.balanced_acc:.1f}%</b> · top-1 {100 * m.top1:.1f}% "
            f"· {shots} · loss {m.loss:.3f} · calibration error {100 * ev.calibration.ece:.1f}%")
