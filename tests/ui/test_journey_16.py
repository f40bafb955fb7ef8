"""What a new user tripped over in the GUI (issue 16, item 6), each fix seen from the widgets."""

from __future__ import annotations

import numpy as np

from workbench.train.events import BatchDone, EvalDone, Finished, RunStarted, Stopped
from workbench.train.metrics import compute_metrics
from workbench_ui.train_progress import ProgressView

CLASSES = ["cat", "dog", "owl"]


def _metrics():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    return compute_metrics(y_true, np.array([0, 0, 1, 1, 2, 0]), 0.5, CLASSES, [150, 50, 5])


def _batch(epoch: int, step: int) -> BatchDone:
    return BatchDone(epoch=epoch, step=step, total_steps=12, loss=1.0, lrs={"head": 0.01},
                     images_per_s=10.0)


# -- a stop keeps the completed epochs only, and says so ---------------------------------------
def test_a_stop_mid_epoch_says_which_epoch_is_kept_and_which_is_lost(qtbot):
    view = ProgressView()
    qtbot.addWidget(view)
    view.show_event(RunStarted("/tmp/run", "cpu", 9, 6, epochs=4, steps_per_epoch=3))
    for event in (_batch(1, 1), _batch(1, 2), _batch(1, 3), EvalDone(1, _metrics()),
                  _batch(2, 4), Stopped("/tmp/run")):
        view.show_event(event)
    text = view.status.text()
    assert text == "Stopped · kept epoch 1/4 (resumable) · unfinished epoch 2 not kept", text
    assert "not kept" in view.status.toolTip()
    view.show_event(RunStarted("/tmp/run", "cpu", 9, 6, epochs=4, steps_per_epoch=3,
                               start_epoch=2))  # resumed after two epochs, stopped between
    view.show_event(Stopped("/tmp/run"))
    assert view.status.text() == "Stopped · kept epoch 2/4 (resumable)"


# -- a slider moved after a probe trial -------------------------------------------------------
def test_unfreezing_stages_under_a_fitted_once_head_is_flagged(model_panel, qtbot):
    panel = model_panel
    stages = panel.model.num_stages
    # what applying a probe trial does: logistic regression on block2's features, all frozen
    panel.state.update_config(model={"head": "logreg", "feature_stage": 2,
                                     "freeze_stages": stages})
    notice = panel.settings.stage_notice
    assert not notice.isVisibleTo(panel)
    panel.settings.slider.setValue(1)  # the user then unfreezes stages
    assert panel.state.config.model.freeze_stages == 1
    assert notice.isVisibleTo(panel)
    name = panel.model.stage_names[2]
    assert f"fitted once on {name}'s pooled features" in notice.text()
    assert f"the {stages - 1} unfrozen stage(s) change nothing" in notice.text()
    panel.state.update_config(model={"head": "linear"})  # a head that fine-tunes: no notice
    assert not notice.isVisibleTo(panel)


# -- the backbone filter --------------------------------------------------------------------------
def test_filtering_backbones_never_changes_the_backbone_in_use(model_panel, qtbot):
    panel = model_panel
    before = panel.state.config.model.backbone
    view = panel.backbones
    for text in ("resnet", "vit_", "mobilenet_v3", "", "mobilenet"):
        view.filter_edit.setText(text)
        assert panel.state.config.model.backbone == before, text
    current = view.table.currentIndex()
    assert current.isValid() and current.siblingAtColumn(0).data() == before
    view.filter_edit.setText("resnet")
    assert not view.table.selectionModel().hasSelection()  # the one in use is not listed
    view.table.selectRow(0)  # a real pick still picks
    qtbot.waitUntil(lambda: panel.state.config.model.backbone != before, timeout=5000)
    assert panel.state.config.model.backbone.startswith("resnet")


# -- Manage runs: sorted as its arrow says, and a double-click opens a run --------------------
def _fake_run(folder, started: float, epochs_done: int, outcome: str):
    """A run folder as `list_runs` reads it: config.toml and a metrics.jsonl of events."""
    import json

    folder.mkdir(parents=True)
    (folder / "config.toml").write_text('[model]\nbackbone = "mobilenet_v2"\n\n[train]\n'
                                        "epochs = 3\n", encoding="utf-8")
    events = [{"event": "RunStarted", "time": started}]
    events += [{"event": "EvalDone", "epoch": e, "time": started + e,
                "metrics": {"balanced_acc": 0.1 * e}} for e in range(1, epochs_done + 1)]
    events.append({"event": outcome, "time": started + 9})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events),
                                          encoding="utf-8")
    return folder


def test_manage_runs_sorts_as_its_arrow_says_and_a_double_click_opens_the_run(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from workbench.config import RunConfig
    from workbench_ui.main_window import MainWindow
    from workbench_ui.runs_dialog import COLUMNS
    from workbench_ui.state import AppState

    runs = tmp_path / "runs"
    old = _fake_run(runs / "b-old", 1_000_000.0, 2, "Stopped")
    _fake_run(runs / "a-new", 2_000_000.0, 3, "Finished")
    config = RunConfig()
    config.train.out_dir = str(runs)
    window = MainWindow(AppState(config))
    qtbot.addWidget(window)
    train = next(p for p in window.panels if type(p).__name__ == "TrainPanel")
    dialog = train.manage_runs()
    header = dialog.table.horizontalHeader()
    started = COLUMNS.index("Started")
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        started, Qt.SortOrder.DescendingOrder)
    assert [dialog.table.item(r, 0).text() for r in range(2)] == ["a-new", "b-old"]
    dialog.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # a click on "Run folder"
    dialog.refresh()  # keeps the user's order, and the arrow with it
    assert [dialog.table.item(r, 0).text() for r in range(2)] == ["b-old", "a-new"]
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        0, Qt.SortOrder.DescendingOrder)
    dialog.table.sortByColumn(COLUMNS.index("Epochs"), Qt.SortOrder.DescendingOrder)
    assert [dialog.table.item(r, 0).text() for r in range(2)] == ["a-new", "b-old"]
    row = next(r for r in range(2) if dialog.table.item(r, 0).text() == "b-old")
    dialog.table.cellDoubleClicked.emit(row, 1)
    results = next(p for p in window.panels if type(p).__name__ == "ResultsPanel")
    assert window.tabs.currentWidget() is results and results.run_dir == str(old)
    assert not dialog.isVisible()
    assert "stopped after 2 of 3 epochs" in results.notice.text()
    window.close()


# -- issue 16 item 7: no "-100.0%" placeholder -------------------------------------------------
def test_a_run_without_a_measured_accuracy_shows_no_placeholder_number(qtbot):
    view = ProgressView()
    qtbot.addWidget(view)
    view.show_event(RunStarted("/tmp/run", "cpu", 9, 0, epochs=1, steps_per_epoch=3))
    view.show_event(Finished("/tmp/run", -1.0))  # the engine's "not measured"
    assert view.status.text() == "Finished (no validation accuracy was measured)"
    view.show_event(Finished("/tmp/run", float("nan")))
    assert "%" not in view.status.text()
    view.show_event(Finished("/tmp/run", 0.47))
    assert view.status.text() == "Finished: best balanced accuracy 47.0%"


# -- the Problems table at 1280x800 ----------------------------------------------------------------
def test_problem_paths_are_relative_to_the_dataset_so_the_detail_has_room(qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QStyleOptionViewItem

    from workbench.data.index import Problem
    from workbench_ui.problems_view import ProblemsView

    view = ProblemsView()
    qtbot.addWidget(view)
    view.resize(700, 300)
    inside = str(tmp_path / "train" / "cat" / "broken.png")
    outside = "/elsewhere/dog.png"
    view.set_problems([Problem("corrupt", inside, "not a recognised image format"),
                       Problem("missing_file", outside, "listed in the CSV, not on disk")],
                      root=str(tmp_path))
    model = view.model
    shown = [model.index(r, 1).data() for r in range(2)]
    assert shown == ["train/cat/broken.png", outside]  # a path outside stays whole
    assert model.index(0, 1).data(Qt.ItemDataRole.ToolTipRole) == inside
    assert model.index(0, 2).data(Qt.ItemDataRole.ToolTipRole) == "not a recognised image format"
    option = QStyleOptionViewItem()
    view.table.itemDelegateForColumn(2).initStyleOption(option, view.proxy.index(0, 2))
    assert option.textElideMode == Qt.TextElideMode.ElideRight  # a sentence loses its end


# -- the trials chart in its narrow column --------------------------------------------------------
def test_the_trials_chart_labels_fit_its_narrow_column(qtbot):
    from types import SimpleNamespace as NS

    from workbench_ui.trials_view import MAX_RANK_LABELS, TrialsView

    view = TrialsView()
    qtbot.addWidget(view)
    view.resize(470, 200)  # the evidence tab at 1280x800
    trials = [NS(name=f"candidate {i}", score=0.3 + 0.05 * i, spread=0.02, seconds=3.0,
                 pickable=True, note="", pooling="gap") for i in range(12)]
    report = NS(verdict="", trials=NS(trials=trials, pick=trials[5], budget="quick",
                                      images=512, folds=2, input_size=64, cached=False,
                                      message=""))
    view.show_report(report)
    left, bottom = view.chart.getAxis("left"), view.chart.getAxis("bottom")
    ranks = [label for _, label in left._tickLevels[0]]
    assert ranks[0] == "1" and len(ranks) <= MAX_RANK_LABELS  # 12 rows, no crowding
    assert [label for _, label in bottom._tickLevels[0]] == ["25", "50", "75"]
    assert bottom.labelText == "score (%)"  # "held-out score (%)" was cut in 130 px
