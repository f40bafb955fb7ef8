"""The trials on the Model tab: table + bar chart, a click applies the trial, budget, cancel."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from workbench.advice.trials import Trial, TrialsReport
from workbench_ui.trials_view import TrialsView


def _trials():
    probe = Trial("linear probe, block2 (average-pooled)", "probe", 5, 2, "logreg", 64, 0.81,
                  0.02, 1.5, norm_policy="frozen_bn", lr=0.01)
    grid = Trial("linear probe, block2 (2x2-pooled)", "probe", 5, 2, "logreg", 64, 0.9, 0.02,
                 1.7, pooling="grid2x2", pickable=False, note="evidence only")
    ft = Trial("fine-tune everything", "finetune", 0, 4, "linear", 64, 0.85, 0.03, 40.0,
               lr=0.01, lr_decay=0.3846)
    return TrialsReport("thorough", (probe, grid, ft), ft, 3, 300, 64)


class _Report:  # what TrialsView reads of an AdviceReport: its trials and verdict
    def __init__(self, trials):
        self.trials, self.verdict = trials, "The trials overrule the textbook cell."


@pytest.fixture
def view(qtbot):
    widget = TrialsView()
    qtbot.addWidget(widget)
    widget.resize(900, 300)
    return widget


def test_table_and_chart_show_every_trial_best_first_with_the_pick(view):
    view.show_report(_Report(_trials()))
    table = view.table
    assert table.rowCount() == 3
    names = [table.item(r, 0).text() for r in range(3)]
    assert names[0] == "linear probe, block2 (2x2-pooled)"  # 90 %: the best score on top
    assert table.item(0, 1).text() == "90.0 ± 2.0" and table.item(0, 2).text() == "1.7"
    assert [n for n in names if n.startswith("★")] == ["★ fine-tune everything"]
    assert table.item(1, 0).font().bold()
    bars = [i for i in view.chart.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    errors = [i for i in view.chart.getPlotItem().items if isinstance(i, pg.ErrorBarItem)]
    assert len(bars) == 1 and len(errors) == 1
    assert list(bars[0].opts["width"]) == pytest.approx([90.0, 85.0, 81.0])
    assert "overrule" in view.verdict.text() and "Thorough budget" in view.verdict.text()


def test_clicking_a_row_emits_its_trial_but_not_an_evidence_only_grid_row(view, qtbot):
    view.show_report(_Report(_trials()))
    got = []
    view.trial_chosen.connect(got.append)
    view.table.cellClicked.emit(1, 0)  # fine-tune everything
    view.table.cellClicked.emit(0, 0)  # the 2x2 probe: runs cannot pool that way
    assert [t.name for t in got] == ["fine-tune everything"]


def test_budget_box_offers_quick_then_thorough(view):
    assert view.budget() == "quick"
    view.budget_box.setCurrentIndex(1)
    assert view.budget() == "thorough"


def test_measuring_the_demo_fills_the_trials_and_a_click_applies_one(model_panel, qtbot,
                                                                    demo_root):
    from workbench.data.scan import index_dataset

    panel = model_panel
    panel.state.set_dataset(index_dataset(demo_root))
    panel.advice.measure_button.click()
    qtbot.waitUntil(lambda: not panel.busy(), timeout=120_000)
    report = panel.advice.report
    assert report is not None, panel.advice.numbers.text()
    trials = panel.advice.trials
    assert trials.table.rowCount() == len(report.trials.trials) == 11  # 5 stages x 2 poolings + FT
    assert panel.advice.evidence.currentWidget() is trials
    assert report.recommended["name"] in panel.advice.explanation.text()
    row = next(r for r, t in enumerate(trials.trials) if t.pooling == "gap" and t.feature_stage
               == 1)
    trials.table.cellClicked.emit(row, 0)
    model = panel.state.config.model
    assert (model.freeze_stages, model.head, model.feature_stage) == (5, "logreg", 1)
    assert panel.state.config.data.input_size == 64


def test_cancel_during_trials_leaves_no_report_and_a_usable_button(model_panel, qtbot,
                                                                  demo_root):
    from workbench.data.scan import index_dataset

    panel = model_panel
    panel.state.set_dataset(index_dataset(demo_root))
    panel.advice.trials.budget_box.setCurrentIndex(1)  # thorough: long enough to cancel
    panel.advice.measure_button.click()
    qtbot.waitUntil(lambda: "Trials" in panel.advice.progress_label.text(), timeout=60_000)
    panel.advice.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.busy(), timeout=30_000)
    assert panel.advice.report is None
    assert "cancelled" in panel.advice.numbers.text().lower()
    assert panel.advice.measure_button.isEnabled()


def test_rows_the_pick_never_takes_are_grey_like_their_bars(view):
    from workbench_ui.trials_view import EVIDENCE_TEXT

    view.show_report(_Report(_trials()))
    colours = {view.table.item(r, 0).text(): view.table.item(r, 0).foreground().color().name()
               for r in range(view.table.rowCount())}
    assert colours["linear probe, block2 (2x2-pooled)"] == EVIDENCE_TEXT
    assert colours["linear probe, block2 (average-pooled)"] != EVIDENCE_TEXT
