"""What a new user's journey found (issue 7, item 4), each fix seen from the GUI.

The runs use the real engine on a tiny real image folder (32 px, random init, capped batches).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox

from tests.test_train_engine import make_tiny_dataset, tiny_config
from workbench.advice.advisor import AdviceReport
from workbench.advice.matrix import strategy_for
from workbench.advice.probe import ProbeResult
from workbench.advice.similarity import BNDivergence
from workbench.config import RunConfig
from workbench.data.scan import open_dataset
from workbench.train.events import BatchDone, RunStarted
from workbench_ui.dataset_panel import DatasetPanel
from workbench_ui.histogram_view import HistogramView
from workbench_ui.model_advice_view import AdviceView
from workbench_ui.plots import CurvePlot
from workbench_ui.runs_dialog import PathDialog, RunsDialog
from workbench_ui.state import AppState
from workbench_ui.thumbnails_view import ThumbnailsView
from workbench_ui.train_charts import TrainChartsView
from workbench_ui.train_panel import TrainPanel


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "data", train=4, val=2)


def _train_panel(qtbot, tmp_path: Path, root: Path) -> TrainPanel:
    config = tiny_config(root, tmp_path / "runs", epochs=1, limit_train_batches=1)
    state = AppState(config)
    state.set_dataset(open_dataset(str(root)), source=str(root))
    panel = TrainPanel(state)
    qtbot.addWidget(panel)
    return panel


def _train(qtbot, panel: TrainPanel) -> Path:
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as finished:
        panel.start()
    assert panel.notice.kind != "error", panel.notice.text()
    return Path(finished.args[0])


# -- per-class and confusion charts of the previous dataset -----------------------------------
def test_class_charts_are_cleared_for_a_new_dataset_and_a_new_run(qtbot, tmp_path, tiny_root):
    panel = _train_panel(qtbot, tmp_path, tiny_root)
    _train(qtbot, panel)
    charts = panel.charts
    assert len(charts.class_acc.heights) == 3 and charts.confusion.matrix.shape == (3, 3)
    other = make_tiny_dataset(tmp_path / "other", train=3, val=1)
    panel._state.set_dataset(open_dataset(str(other)), source=str(other))
    assert len(charts.class_acc.heights) == 0 and charts.confusion.matrix.size == 0
    assert "–" in charts.shot_label.text() and not charts.loss.curve_names()
    _train(qtbot, panel)  # a new run starts empty too, then shows its own classes
    assert charts.confusion.matrix.shape == (3, 3)
    panel.charts.class_acc.set_accuracy(["a", "b"], [0.5, 0.5], ["few", "few"])
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.start()  # the old bars go as soon as the run is launched, before its first event
        assert len(charts.class_acc.heights) == 0


# -- "Open run folder" without a file manager -------------------------------------------------
def test_open_run_folder_without_a_file_manager_shows_the_path(qtbot, tmp_path, tiny_root,
                                                              monkeypatch):
    panel = _train_panel(qtbot, tmp_path, tiny_root)
    run_dir = _train(qtbot, panel)
    # what QDesktopServices answers where no file manager is registered
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    panel.open_folder_button.click()
    dialog = panel.path_dialog
    assert isinstance(dialog, PathDialog) and dialog.isVisible()
    assert dialog.path_edit.text() == str(run_dir)
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == str(run_dir)
    dialog.close()


# -- deleting old runs ------------------------------------------------------------------------
def test_manage_runs_lists_and_deletes_old_runs_but_not_the_running_one(
        qtbot, tmp_path, tiny_root, monkeypatch):
    panel = _train_panel(qtbot, tmp_path, tiny_root)
    old = _train(qtbot, panel)
    (tmp_path / "runs" / "keep-me").mkdir()  # not a run: never listed, never deleted
    dialog = panel.manage_runs()
    assert isinstance(dialog, RunsDialog) and dialog.table.rowCount() == 1
    assert dialog.table.item(0, 2).text() == "mobilenet_v2"
    assert dialog.table.item(0, 3).text() == "1 / 1" and dialog.table.item(0, 4).text() != "–"
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args: QMessageBox.StandardButton.Cancel)
    dialog.select_run(old)
    assert dialog.delete_selected() == [] and old.exists()  # cancelled: nothing deleted
    monkeypatch.setattr(QMessageBox, "question", lambda *args: QMessageBox.StandardButton.Yes)
    dialog.select_run(old)
    assert dialog.delete_selected() == [old] and not old.exists()
    assert dialog.table.rowCount() == 0 and (tmp_path / "runs" / "keep-me").is_dir()
    dialog.close()
    qtbot.waitUntil(lambda: panel.run_dir_label.text() == "No run yet", timeout=2000)
    assert not panel.open_folder_button.isEnabled()


def test_the_running_run_cannot_be_selected_for_deletion(qtbot, tmp_path, tiny_root):
    panel = _train_panel(qtbot, tmp_path, tiny_root)
    done = _train(qtbot, panel)
    dialog = RunsDialog(tmp_path / "runs", current=str(done))
    qtbot.addWidget(dialog)
    dialog.select_run(done)
    assert dialog.selected_paths() == [] and not dialog.delete_button.isEnabled()
    assert "training now" in dialog.table.item(0, 0).text()


# -- axis labels ------------------------------------------------------------------------------
def _labelled_ticks(axis, size: float) -> list[float]:
    low, high = axis.range
    return sorted(v for _, values in axis.tickValues(low, high, size) for v in values)


def test_one_batch_into_a_run_the_epoch_axis_reads_in_epochs(qtbot):
    """It read "epoch (x0.001)" with ticks -400..400: an SI prefix on a one-point range."""
    charts = TrainChartsView()
    qtbot.addWidget(charts)
    charts.resize(900, 600)
    charts.show_event(RunStarted("/tmp/r", "cpu", 600, 100, 10, 1000))
    for plot in charts.plots():  # before the first point: the run's epochs, from 0
        assert plot.getPlotItem().vb.viewRange()[0] == pytest.approx([0, 10])
    charts.show_event(BatchDone(1, 1, 10_000, 2.3, {"head": 0.01, "layer4": 0.001}, 300.0))
    charts.flush()
    qtbot.wait(50)
    for plot in (charts.loss, charts.lr, charts.throughput):
        axis = plot.getAxis("bottom")
        assert "x0.001" not in axis.labelString() and axis.autoSIPrefixScale == 1.0
        assert plot.getPlotItem().vb.viewRange()[0][0] >= 0  # no negative epochs


@pytest.mark.parametrize(("low", "high"), [(-3.09, -1.91), (-4.0, -1.0), (-2.4, -2.0)])
@pytest.mark.parametrize("size", [90.0, 160.0, 400.0])
def test_log_tick_labels_never_pile_up(qtbot, low, high, size):
    plot = CurvePlot("Learning rate per group", "lr", log_y=True)
    qtbot.addWidget(plot)
    plot.getAxis("left").setRange(low, high)
    ticks = _labelled_ticks(plot.getAxis("left"), size)
    assert ticks, "a log axis must keep some labels"
    per_decade = size / (high - low)
    gaps = [(b - a) * per_decade for a, b in zip(ticks, ticks[1:], strict=False)]
    assert min(gaps, default=99) >= 14, (ticks, gaps)  # a label is about 12 px tall


def test_log_histogram_ticks_are_counts_that_do_not_overlap(qtbot):
    view = HistogramView()
    qtbot.addWidget(view)
    view.resize(700, 250)
    counts = {f"c{i}": int(60 * 0.8 ** i) + 1 for i in range(10)}  # 6..61: one decade
    view.set_data({"train": counts}, {"medium": list(counts)})
    view.set_log_scale(True)
    axis = view.plot.getPlotItem().getAxis("left")
    size = axis.geometry().height() or 200.0
    ticks = _labelled_ticks(axis, size)
    labels = axis.logTickStrings(ticks, 1.0, None)
    assert "50" in labels and "10" in labels and all("·" not in text for text in labels)
    low, high = axis.range
    gaps = [(b - a) * size / (high - low) for a, b in zip(ticks, ticks[1:], strict=False)]
    assert min(gaps) >= 14, (labels, gaps)


# -- thumbnails scroll position ---------------------------------------------------------------
def test_another_class_shows_its_thumbnails_from_the_top(qtbot, tmp_path):
    images = make_tiny_dataset(tmp_path / "data", train=40, val=0) / "train"
    view = ThumbnailsView()
    qtbot.addWidget(view)
    view.resize(320, 240)
    view.show()
    first = sorted(str(p) for p in (images / "class_0").iterdir())
    second = sorted(str(p) for p in (images / "class_1").iterdir())
    view.show_class("class_0", first)
    bar = view.list.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=2000)
    bar.setValue(bar.maximum())
    view.show_class("class_1", second)
    qtbot.wait(20)
    assert bar.value() == 0
    bar.setValue(bar.maximum())
    view.clear()
    assert bar.value() == 0
    view.shutdown()


# -- notices do not move the form -------------------------------------------------------------
def test_an_error_notice_does_not_move_the_form(qtbot, tmp_path, tiny_root):
    panel = _train_panel(qtbot, tmp_path, tiny_root)
    panel.resize(1280, 800)
    panel.show()
    qtbot.waitExposed(panel)
    form = panel.options.epochs
    before = form.mapTo(panel, QPoint(0, 0))
    panel.notice.show_error("train.lr = 50 is out of range. " * 12)  # a long, wrapped message
    qtbot.wait(20)
    assert form.mapTo(panel, QPoint(0, 0)) == before
    notice = panel.notice.geometry()
    assert panel.notice.isVisible() and panel.notice.parent() is panel.charts
    assert panel.charts.rect().contains(notice) and notice.height() > 30  # it fits its text
    panel.notice.clear()
    assert form.mapTo(panel, QPoint(0, 0)) == before


# -- a one-class folder is said when opened ---------------------------------------------------
def _dataset_panel(qtbot) -> DatasetPanel:
    panel = DatasetPanel(AppState(RunConfig()))
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    return panel


def _open(qtbot, panel: DatasetPanel, source: Path) -> None:
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        panel.open_path(source)
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=30_000)


def test_a_one_class_folder_is_said_when_opened_without_moving_the_views(qtbot, tmp_path):
    root = make_tiny_dataset(tmp_path / "data", train=3, val=1)
    panel = _dataset_panel(qtbot)
    try:
        plot = panel.histogram.plot
        before = plot.mapTo(panel, QPoint(0, 0))
        panel.open_path(root)
        qtbot.wait(10)  # the progress bar shows (beside the split options: nothing moves)
        assert plot.mapTo(panel, QPoint(0, 0)) == before
        qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=30_000)
        assert not panel.notice.isVisible()  # three classes: nothing to say
        for split in ("train", "val"):
            for name in ("class_1", "class_2"):
                shutil.rmtree(root / split / name)
        _open(qtbot, panel, root)
        text = panel.notice.text()
        assert panel.notice.isVisible() and "only one class" in text and "class_0" in text
        qtbot.wait(10)
        assert plot.mapTo(panel, QPoint(0, 0)) == before
        assert "1 class ·" in panel.summary.text()
    finally:
        panel.shutdown()


# -- the stage diagram's head has the dataset's classes ---------------------------------------
def test_stage_diagram_head_has_the_datasets_classes(model_panel, tmp_path):
    head = model_panel.stages.rows()[-1]
    assert head.is_head and head.params == "1.3 M"  # no dataset: ImageNet's 1000 outputs
    root = make_tiny_dataset(tmp_path / "data", train=3, val=1)
    model_panel.state.set_dataset(open_dataset(str(root)), source=str(root))
    head = model_panel.stages.rows()[-1]
    assert head.name == "head → 3 classes"
    assert head.params == "4 k"  # 1280 features x 3 classes + 3 biases
    model_panel.resize(1280, 800)
    model_panel.stages.grab()  # paints without error


# -- a similarity at the threshold is borderline ----------------------------------------------
def _report(divergence: float) -> AdviceReport:
    return AdviceReport(
        backbone="resnet18", images_per_class={"min": 30, "median": 40, "max": 50},
        similarity={"bn_divergence": divergence},
        bn_profile=BNDivergence(per_stage=[divergence] * 5, mean=divergence),
        probe=ProbeResult(message="not run"), cell="dissimilar-small", cell_source="measured",
        strategy=strategy_for("dissimilar-small", 5), num_stages=5,
        thresholds={"small_images_per_class": 100, "similarity_threshold": 0.12},
        sample={"images": 64, "classes": 4})


def test_a_similarity_at_the_threshold_is_shown_as_borderline(qtbot):
    view = AdviceView()
    qtbot.addWidget(view)
    view.resize(700, 700)
    view.matrix.set_thresholds(100, 0.12)
    view.show_report(_report(0.1245))  # printed "0.12 → dissimilar" before
    text = view.numbers.text()
    assert "<b>0.124</b>" in text or "<b>0.125</b>" in text
    assert "dissimilar, borderline" in text
    view.matrix.set_point(40, 0.1245)
    assert view.matrix.point_label() == "your dataset (borderline)"
    view.show_report(_report(0.75))
    assert "borderline" not in view.numbers.text()
    view.matrix.set_point(40, 0.75)
    assert view.matrix.point_label() == "your dataset"
