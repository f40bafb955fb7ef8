"""The advisor's trials on the Model tab: a table and a bar chart of held-out scores.

Each row is a candidate the advisor scored on held-out training images (candidate, score ±
spread, seconds, the pick starred); the bar chart shows the same scores with their spread.
Clicking a row emits `trial_chosen` with the trial, which the Model panel applies to the slider,
head, feature stage, learning rates, norm policy and input size. The budget box says how much
the next measurement may spend (quick: probes; thorough: short fine-tuning runs too).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.advice.trials import Budget

COLUMNS = ("Candidate (★ chosen)", "Score %", "s")
MAX_RANK_LABELS = 8  # row numbers on the chart's short axis: more would overlap
BUDGET_WORDS = {Budget.QUICK: "Quick trials", Budget.THOROUGH: "Thorough trials"}
BUDGET_TIPS = {Budget.QUICK: "Linear probes on held-out training images and one short "
                            "fine-tuning trial at 64 px (about a minute on a CPU).",
               Budget.THOROUGH: "Probes and every fine-tuning candidate at 64 px, the best one "
                                "on every fold (a few minutes on a CPU)."}
PICK_BRUSH, OTHER_BRUSH, EVIDENCE_BRUSH = "#2b8a3e", "#4c6ef5", "#adb5bd"
EVIDENCE_TEXT = "#868e96"  # a row the pick never takes (2x2 pooling, a halving's loser)


class TrialsView(QWidget):
    """Table + bar chart of one `TrialsReport`; a click on a row emits the trial."""

    trial_chosen = Signal(object)  # a workbench.advice.trials.Trial

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trials: list[Any] = []
        self.budget_box = QComboBox(self)
        for i, (budget, words) in enumerate(BUDGET_WORDS.items()):
            self.budget_box.addItem(words, str(budget))
            self.budget_box.setItemData(i, BUDGET_TIPS[budget], Qt.ItemDataRole.ToolTipRole)
        self.budget_box.setToolTip("How much the next measurement may spend on trials: quick "
                                   "(probes, one fine-tuning trial) or thorough (every "
                                   "fine-tuning candidate).")
        self.verdict = QLabel("Measure to score the candidates on held-out training images.",
                              self)
        self.verdict.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # names elide, numbers show
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellClicked.connect(self._on_clicked)
        self.chart = pg.PlotWidget(background="w")
        # a narrow chart (2/7 of the row): a short title and three ticks that never collide
        self.chart.setLabel("bottom", "score (%)")
        self.chart.getAxis("bottom").setTicks([[(v, str(v)) for v in (25, 50, 75)],
                                               [(v, "") for v in (0, 100)]])
        self.chart.setToolTip("Held-out score of each candidate (%), ± its spread over folds; "
                              "rows numbered as in the table")
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart.getAxis("left").setWidth(30)
        for widget in (self.table, self.chart):  # never widen the window: they share the row
            widget.setMinimumWidth(120)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.verdict)
        row = QHBoxLayout()
        row.addWidget(self.table, 5)
        row.addWidget(self.chart, 2)
        layout.addLayout(row, 1)

    def budget(self) -> str:
        """The budget chosen for the next measurement ("quick" or "thorough")."""
        return str(self.budget_box.currentData())

    def clear(self, text: str = "") -> None:
        """Forget the trials (the dataset or backbone changed)."""
        self.trials = []
        self.table.setRowCount(0)
        self.chart.clear()
        self.verdict.setText(text or "Measure to score the candidates on held-out training "
                             "images.")

    def show_report(self, report: Any) -> None:
        """Fill the table and the chart from an `AdviceReport` (its trials, its verdict)."""
        trials = getattr(report, "trials", None)
        self.clear(getattr(report, "verdict", "") or "")
        if trials is None:
            return
        pick = trials.pick.name if trials.pick is not None else None
        self.trials = sorted(trials.trials, key=lambda t: -(t.score or 0.0))
        self.table.setRowCount(len(self.trials))
        for row, trial in enumerate(self.trials):
            self._fill_row(row, trial, trial.name == pick)
        self._plot(pick)
        header = (f"<b>{trials.budget.capitalize()} budget</b>: {trials.images} training "
                  f"images, {trials.folds} folds held out, {trials.input_size} px"
                  + (" (from the cache)" if trials.cached else "") + ". ")
        self.verdict.setText(header + (getattr(report, "verdict", "") or trials.message))

    def _fill_row(self, row: int, trial: Any, chosen: bool) -> None:
        score = ("n/a" if trial.score is None else
                 f"{100 * trial.score:.1f} ± {100 * trial.spread:.1f}")
        cells = (f"★ {trial.name}" if chosen else trial.name, score, f"{trial.seconds:.1f}")
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if chosen:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            if col in (1, 2):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            tip = trial.note or ("Click to apply these settings." if trial.pickable else "")
            item.setToolTip(tip)
            if not trial.pickable:  # evidence only, grey as its bar
                item.setForeground(QColor(EVIDENCE_TEXT))
            self.table.setItem(row, col, item)

    def _plot(self, pick: str | None) -> None:
        self.chart.clear()
        if not self.trials:
            return
        ys = list(range(len(self.trials)))[::-1]  # the best at the top, as in the table
        widths = [100 * (t.score or 0.0) for t in self.trials]
        brushes = [PICK_BRUSH if t.name == pick else OTHER_BRUSH if t.pickable else
                   EVIDENCE_BRUSH for t in self.trials]
        bars = pg.BarGraphItem(x0=0, y=ys, height=0.7, width=widths, brushes=brushes)
        self.chart.addItem(bars)
        spread = [100 * t.spread for t in self.trials]
        self.chart.addItem(pg.ErrorBarItem(x=np.array(widths), y=np.array(ys),
                                           left=np.array(spread), right=np.array(spread),
                                           beam=0.2, pen=pg.mkPen("#212529")))
        every = math.ceil(len(ys) / MAX_RANK_LABELS)  # numbers that would overlap are skipped
        self.chart.getAxis("left").setTicks([[(y, str(i + 1)) for i, y in enumerate(ys)
                                              if i % every == 0]])
        self.chart.setXRange(0, 100, padding=0.02)

    def _on_clicked(self, row: int, _col: int) -> None:
        # 2x2-pooled probes are evidence only: a run pools its features by averaging
        if 0 <= row < len(self.trials) and self.trials[row].pooling == "gap":
            self.trial_chosen.emit(self.trials[row])
