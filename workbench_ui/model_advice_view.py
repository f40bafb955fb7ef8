"""The advisor side of the Model panel: the matrix, its heuristic thresholds, and the evidence.

"Measure similarity" runs `workbench.advice.advisor.iter_advice` in a `GeneratorWorker` with
progress and cancel; the report places the dataset on the matrix, plots the BatchNorm-divergence
profile by depth, and lists NCE / LEEP and the linear-probe accuracies as evidence.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.advice.matrix import similarity_verdict
from workbench_ui.matrix_view import MatrixView
from workbench_ui.trials_view import TrialsView
from workbench_ui.workers import GeneratorWorker

_STAGE_WORDS = {"features": "Extracting features", "bn": "Measuring BatchNorm statistics",
                "probe": "Linear probe (k-fold)", "trial features": "Trials: features",
                "probes": "Trials: linear probes"}


class AdviceView(QWidget):
    """Matrix + thresholds + measure / cancel + evidence; emits what the user asks for."""

    cell_clicked = Signal(str)
    thresholds_edited = Signal(dict)  # advice-section changes
    measure_requested = Signal()
    report_ready = Signal(object)  # the AdviceReport
    trial_chosen = Signal(object)  # a Trial whose settings the user wants

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._worker: GeneratorWorker | None = None
        self.report: Any = None
        self.matrix = MatrixView(self)
        self.matrix.cell_clicked.connect(self.cell_clicked)
        self._build_controls()
        self._build_evidence()
        top = QWidget(self)
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.matrix, 1)
        column.addLayout(self._threshold_row())
        column.addLayout(self._measure_row())
        column.addWidget(self.numbers)
        # the user shares the height between the matrix and the evidence
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(top)
        splitter.addWidget(self.evidence)
        splitter.setSizes([420, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # -- building -----------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.small_spin = QSpinBox(self)
        self.small_spin.setRange(1, 10**7)
        self.small_spin.setMaximumWidth(90)
        self.small_spin.setToolTip("Heuristic: no paper fixes what a small dataset is.")
        self.similarity_spin = QDoubleSpinBox(self)
        self.similarity_spin.setRange(0.0, 1e6)
        self.similarity_spin.setDecimals(3)
        self.similarity_spin.setMaximumWidth(80)
        self.similarity_spin.setSingleStep(0.01)
        self.similarity_spin.setToolTip("Heuristic: mean BN divergence above this is dissimilar.")
        self.small_spin.valueChanged.connect(
            lambda v: self.thresholds_edited.emit({"small_images_per_class": int(v)}))
        self.similarity_spin.valueChanged.connect(
            lambda v: self.thresholds_edited.emit({"similarity_threshold": float(v)}))
        self.measure_button = QPushButton("Measure similarity", self)
        self.measure_button.clicked.connect(self.measure_requested)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress_label = QLabel(self)
        self.explanation = QLabel("Click a cell to apply its strategy, or measure where your "
                                  "dataset sits.", self)
        self.explanation.setWordWrap(True)
        self.numbers = QLabel(self)
        self.numbers.setWordWrap(True)
        self._set_busy(False)
        self._set_numbers("")

    def _threshold_row(self) -> QGridLayout:
        # two short lines, not one long one: the matrix column must fit a 1024 px window
        grid = QGridLayout()
        note = QLabel("<i>Heuristic</i>: small <", self)
        note.setToolTip("No paper fixes these values; edit them (README explains the defaults).")
        grid.addWidget(note, 0, 0, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.small_spin, 0, 1)
        grid.addWidget(QLabel("images/class", self), 0, 2)
        grid.addWidget(QLabel("dissimilar >", self), 1, 0, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.similarity_spin, 1, 1)
        grid.addWidget(QLabel("mean BN divergence", self), 1, 2)
        grid.setColumnStretch(3, 1)
        return grid

    def _measure_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(self.measure_button)
        row.addWidget(self.trials.budget_box)
        row.addWidget(self.progress, 1)
        row.addWidget(self.progress_label)
        row.addWidget(self.cancel_button)
        return row

    def _build_evidence(self) -> None:
        self.evidence = QTabWidget(self)
        self.evidence.setMinimumHeight(120)
        self.evidence.addTab(self.explanation, "Strategy")
        self.explanation.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.explanation.setMargin(6)
        self.profile_plot = pg.PlotWidget(background="w")
        self.profile_plot.setLabel("bottom", "stage (stem → last)")
        self.profile_plot.setLabel("left", "BN divergence by depth")
        # divergences sit in 0..1: pyqtgraph would show them x1000 with a "(x0.001)" that the
        # axis clips, so the bars read 500 where the numbers above say 0.5
        self.profile_plot.getAxis("left").enableAutoSIPrefix(False)
        self.profile_plot.showGrid(y=True, alpha=0.3)
        self.profile_plot.setMouseEnabled(x=False, y=False)
        self.evidence.addTab(self.profile_plot, "Divergence")
        self.trials = TrialsView(self)
        self.trials.trial_chosen.connect(self.trial_chosen)
        self.evidence.addTab(self.trials, "Trials")
        self.probe_table = QTableWidget(0, 0, self)
        self.probe_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.evidence.addTab(self.probe_table, "Probe")
        self.scores = QLabel("Measure similarity to see the evidence.", self)
        self.scores.setWordWrap(True)
        self.evidence.addTab(self.scores, "NCE / LEEP")

    # -- showing ------------------------------------------------------------------------------
    def show_thresholds(self, advice_config: Any) -> None:
        """Show the heuristic thresholds of the config (without echoing edits back)."""
        for spin, value in ((self.small_spin, advice_config.small_images_per_class),
                            (self.similarity_spin, advice_config.similarity_threshold)):
            blocked = spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(blocked)
        self.matrix.set_thresholds(advice_config.small_images_per_class,
                                   advice_config.similarity_threshold)

    def show_strategy(self, title: str, explanation: str) -> None:
        """Show why a strategy fits (after a click on a cell)."""
        self.explanation.setText(f"<b>{title}.</b> {explanation}")
        self.evidence.setCurrentWidget(self.explanation)

    def clear_report(self, reason: str = "") -> None:
        """Forget the last measurement (the backbone or the dataset changed)."""
        self.report = None
        self.matrix.set_highlight(None)
        self.profile_plot.clear()
        self.probe_table.setRowCount(0)
        self.scores.setText("Measure similarity to see the evidence.")
        self.trials.clear()
        if reason:
            self.explanation.setText(reason)
        self._set_numbers("")

    def show_report(self, report: Any) -> None:
        """Place the dataset, highlight the suggested cell and fill the evidence tabs."""
        self.report = report
        profile = report.bn_profile
        median = report.images_per_class["median"]
        measurable = bool(getattr(profile, "available", True)) and profile.mean is not None
        self.matrix.set_point(median, profile.mean if measurable else None)
        self.matrix.set_unmeasurable(None if measurable else _unmeasurable_text(profile))
        self.matrix.set_highlight(report.cell if measurable else None)
        self.explanation.setText(_strategy_text(report) if measurable else "")
        self._set_numbers(_numbers_text(report, measurable))
        self._plot_profile(profile, list(getattr(report, "stage_names", []) or []))
        self._fill_probe(report.probe, list(getattr(report, "stage_names", []) or []))
        self._fill_scores(report)
        self.trials.show_report(report)
        has_trials = getattr(report, "trials", None) is not None
        self.evidence.setCurrentWidget(self.trials if has_trials else self.profile_plot)

    def _plot_profile(self, profile: Any, stage_names: list[str]) -> None:
        self.profile_plot.clear()
        values = list(profile.per_stage or [])
        names = stage_names if len(stage_names) >= len(values) else [str(i) for i in
                                                                     range(len(values))]
        self.profile_plot.getAxis("bottom").setTicks([list(enumerate(names[:len(values)]))])
        xs = [i for i, v in enumerate(values) if v is not None]
        heights = [values[i] for i in xs]
        if heights:
            bars = pg.BarGraphItem(x=xs, height=heights, width=0.7, brush="#4c6ef5")
            self.profile_plot.addItem(bars)
        if profile.mean is not None:
            line = pg.InfiniteLine(pos=profile.mean, angle=0, pen=pg.mkPen("#d9480f", width=2),
                                   label=f"mean {profile.mean:.3g}")
            self.profile_plot.addItem(line)

    def _fill_probe(self, probe: Any, stage_names: list[str]) -> None:
        rows = list(getattr(probe, "rows", None) or [])
        poolings = sorted({r.pooling for r in rows})
        stages = sorted({r.stage for r in rows})
        table = self.probe_table
        table.setColumnCount(len(poolings))
        table.setRowCount(len(stages))
        table.setHorizontalHeaderLabels([f"{_POOLINGS.get(p, p)} accuracy" for p in poolings])
        table.setVerticalHeaderLabels([stage_names[s] if s < len(stage_names) else f"stage {s}"
                                       for s in stages])
        best = getattr(probe, "best", None)
        for r in rows:
            text = f"{100 * r.accuracy:.1f} %" + ("  ★ best" if r is best else "")
            table.setItem(stages.index(r.stage), poolings.index(r.pooling), QTableWidgetItem(text))
        table.resizeColumnsToContents()

    def _fill_scores(self, report: Any) -> None:
        sim = dict(report.similarity)
        lines = [f"<b>{_MEASURES.get(name, name)}</b>: {value:.3f}" for name, value in sim.items()
                 if isinstance(value, int | float)]
        ipc = report.images_per_class
        lines.append(f"Training images per class: min {ipc['min']:g}, median {ipc['median']:g}, "
                     f"max {ipc['max']:g}")
        lines.append("<i>NCE and LEEP say how well ImageNet's labels predict yours; they track "
                     "the number of classes, so they are evidence, not the similarity axis.</i>")
        self.scores.setText("<br>".join(lines))

    # -- measuring ----------------------------------------------------------------------------
    def measure(self, index: Any, config: Any) -> None:
        """Run the advisor on `index` with `config` in a worker."""
        if self._worker is not None:
            return
        from workbench.advice.advisor import iter_advice

        worker = GeneratorWorker(iter_advice, index, config, throttle_s=0.1,
                                 droppable=_is_progress, parent=self,
                                 budget=self.trials.budget())
        worker.event.connect(self._on_event)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._set_busy(True)
        self.progress_label.setText("Starting…")
        worker.start()

    def is_busy(self) -> bool:
        """True while a measurement runs."""
        return self._worker is not None

    def cancel(self) -> None:
        """Ask the measurement to stop."""
        if self._worker is not None:
            self._worker.stop()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop and join the measurement (on close)."""
        if self._worker is not None:
            self._worker.shutdown(timeout)

    def _on_event(self, event: Any) -> None:
        if self._worker is None or self._worker.stop_requested:
            return  # cancelled: a late report must not place a stale point
        if _is_progress(event):
            self.progress_label.setText(_STAGE_WORDS.get(event.stage, event.stage.capitalize()))
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        else:
            self.show_report(event)
            self.report_ready.emit(event)

    def _on_failed(self, message: str) -> None:
        self._set_numbers(f"<b>Could not measure:</b> {message}")

    def _on_finished(self) -> None:
        worker, self._worker = self._worker, None
        self._set_busy(False)
        if worker is not None:
            worker.join(1.0)
            if worker.stopped:
                self._set_numbers("Measurement cancelled.")

    def _set_numbers(self, text: str) -> None:
        self.numbers.setText(text)
        self.numbers.setVisible(bool(text))  # an empty label would still take a line

    def _set_busy(self, busy: bool) -> None:
        self.measure_button.setEnabled(not busy)
        # the progress takes the budget's place: the row must not widen the window
        if hasattr(self, "trials"):  # built after the controls
            self.trials.budget_box.setVisible(not busy)
        self.cancel_button.setVisible(busy)
        self.progress.setVisible(busy)
        if not busy:
            self.progress_label.setText("")


_POOLINGS = {"gap": "global-average", "grid2x2": "2x2-grid"}
_MEASURES = {"bn_divergence": "BN divergence (mean KL, similarity axis)",
             "nce": "NCE (higher: ImageNet labels predict yours better)",
             "leep": "LEEP (higher: better)",
             "probe_best_acc": "best linear-probe accuracy (fraction)"}


def _is_progress(event: Any) -> bool:
    return hasattr(event, "stage") and hasattr(event, "done") and hasattr(event, "total")


def _numbers_text(report: Any, measurable: bool) -> str:
    """One line with the measured numbers behind the point, next to their thresholds."""
    limits = report.thresholds or {}
    median = report.images_per_class["median"]
    size = "small" if median < limits.get("small_images_per_class", float("inf")) else "large"
    parts = [f"median <b>{median:g}</b> images/class (small below "
             f"{limits.get('small_images_per_class', '?')}) → {size}"]
    if measurable:
        mean, threshold = report.bn_profile.mean, limits.get("similarity_threshold")
        side = (similarity_verdict(mean, threshold) if threshold is not None
                else f" → {report.cell.split('-')[0]}")
        parts.append(f"mean BN divergence <b>{mean:.3g}</b> (dissimilar above "
                     f"{'?' if threshold is None else format(threshold, 'g')}){side}")
    sample = report.sample or {}
    parts.append(f"measured on {sample.get('images', '?')} images in {report.seconds:.0f} s")
    return "; ".join(parts) + "."


def _strategy_text(report: Any) -> str:
    """The textbook cell's strategy, and next to it the measured pick with its sentence."""
    strategy = report.strategy
    text = f"<b>Textbook cell: {strategy.title}.</b> {strategy.explanation}"
    recommended = getattr(report, "recommended", None) or {}
    if recommended:
        text += (f"<br><br><b>Recommended ({recommended.get('source')}): "
                 f"{recommended.get('name')}.</b> {getattr(report, 'verdict', '')}")
    return text


def _unmeasurable_text(profile: Any) -> str:
    message = getattr(profile, "message", "") or "This backbone has no BatchNorm layers."
    return f"{message} Similarity cannot be measured: click the cell you believe fits."
