"""The Results tab on a real run: confusion cell -> images, top losses, the large view, label
corrections, the tau slider, a run without predictions, and a comparison of two runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt

from tests.test_results_core import demo_lt, demo_run  # noqa: F401 (session fixtures)
from tests.test_train_engine import make_tiny_dataset, tiny_config
from workbench.data.corrections import read_corrections
from workbench.data.scan import open_dataset
from workbench.train.engine import Trainer
from workbench_ui.results_panel import ResultsPanel
from workbench_ui.state import AppState


@pytest.fixture
def run_copy(demo_run: Path, tmp_path: Path) -> Path:  # noqa: F811
    """A copy of the demo run, so corrections written here stay out of the shared one."""
    return Path(shutil.copytree(demo_run, tmp_path / "run"))


def open_panel(qtbot, run_dir: Path, checkpoint: str = "last") -> ResultsPanel:
    panel = ResultsPanel(AppState())
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    panel.checkpoint_combo.setCurrentText(checkpoint)
    panel.show_run(str(run_dir))
    qtbot.waitUntil(lambda: panel.evaluation is not None and not panel.busy(), timeout=30_000)
    return panel


def test_clicking_a_confusion_cell_shows_its_images(qtbot, run_copy: Path) -> None:
    panel = open_panel(qtbot, run_copy)
    assert "balanced accuracy" in panel.summary.text()
    table = panel.per_class
    assert table.rowCount() == 10
    header = table.horizontalHeader()  # issue 16: the arrow matches the order shown
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        0, Qt.SortOrder.AscendingOrder)
    assert [table.item(r, 0).text() for r in range(10)] == [str(c) for c in range(10)]
    table.sortItems(1)  # by training images, fewest first: the tail on top
    assert table.item(0, 0).text() == "9" and table.item(0, 2).text() == "few"
    view = panel.confusion
    counts = view.counts
    true, pred = 9, int(counts[9].argmax())
    scene = view.plot_item.vb.mapViewToScene(QPointF(pred + 0.5, true + 0.5))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(scene))
    qtbot.waitUntil(lambda: panel.gallery.title.text().startswith("9 → "), timeout=5000)
    assert panel.gallery.model.rowCount() == counts[true, pred]
    p = panel.evaluation.predictions
    assert all(p.labels[r] == true for r in panel.gallery.rows)
    assert panel.gallery.model.captions[0].startswith(f"9→{pred} ")
    panel.shutdown()


def test_top_losses_and_the_large_view(qtbot, run_copy: Path) -> None:
    panel = open_panel(qtbot, run_copy)
    panel.top_losses_button.click()
    losses = panel.evaluation.losses
    shown = [losses[r] for r in panel.gallery.rows]
    assert len(shown) == 48 and shown == sorted(shown, reverse=True)
    # issue 16: the title and captions name what the order follows (not "surest mistakes")
    assert "least probability on the true class first" in panel.gallery.title.text()
    p_true = [int(c.rsplit(" ", 1)[1].rstrip("%")) for c in panel.gallery.model.captions]
    assert all("p(true)" in c for c in panel.gallery.model.captions)
    assert p_true == sorted(p_true)
    index = panel.gallery.model.index(0)
    rect = panel.gallery.list.visualRect(index)
    opened = []
    panel.gallery.image_activated.connect(lambda row: opened.append(panel.show_image(row)))
    viewport = panel.gallery.list.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: bool(opened), timeout=3000)
    dialog = opened[0]
    assert dialog.top.text().count("%") == 5 and dialog.image.pixmap() is not None
    dialog.close()
    panel.shutdown()


def test_marking_an_image_writes_corrections_beside_the_run(qtbot, run_copy: Path) -> None:
    panel = open_panel(qtbot, run_copy)
    panel.show_top_losses()
    row = panel.gallery.rows[0]
    menu = panel.gallery.correction_menu(row)
    relabel = menu.actions()[0].menu()
    p = panel.evaluation.predictions
    own = p.class_names[p.labels[row]]
    names = [a.text() for a in relabel.actions()]
    assert own not in names and len(names) == 9  # issue 16: not the class it already has
    next(a for a in relabel.actions() if a.text() == "3").trigger()  # the right class is 3
    path = p.paths[row]
    fixes = read_corrections(run_copy / "corrections.csv")
    assert [(f.path, f.action, f.label) for f in fixes] == [(path, "relabel", "3")]
    assert panel.gallery.model.marks[path] == "→ 3"
    assert "1 correction(s)" in panel.corrections.label.text()
    with qtbot.waitSignal(panel.state.open_requested) as opened:
        panel.corrections.apply_button.click()
    assert opened.args[0].endswith("digits-lt.csv")  # the run's dataset
    assert panel.state.config.data.corrections == str(run_copy / "corrections.csv")
    assert panel.state.config.data.path == opened.args[0]
    other = make_tiny_dataset(run_copy.parent / "other", train=4, val=2)
    panel.state.set_dataset(open_dataset(other), source=str(other))
    assert panel.state.config.data.corrections == ""  # they belong to the run's dataset
    panel.shutdown()


def test_tau_slider_redraws_the_shot_bands(qtbot, run_copy: Path) -> None:
    panel = open_panel(qtbot, run_copy)
    tail = panel.tail
    assert tail.adjusted is tail.plain  # tau 0: the model as trained
    tail.slider.setValue(100)
    assert tail.tau == 1.0
    assert tail.adjusted.shot_acc["few"] > tail.plain.shot_acc["few"]
    assert "few" in tail.summary.text() and "(+" in tail.summary.text()
    tail.slider.setValue(0)
    assert tail.adjusted.per_class_acc == tail.plain.per_class_acc
    panel.shutdown()


def test_old_run_without_predictions_is_evaluated_on_request(qtbot, tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data", train=4, val=2)
    last = list(Trainer(tiny_config(root, tmp_path / "runs", limit_train_batches=1)).run())[-1]
    shutil.rmtree(Path(last.run_dir) / "predictions")  # as a run from before they were stored
    panel = ResultsPanel(AppState())
    qtbot.addWidget(panel)
    panel.show_run(str(tmp_path))
    assert "is not a run folder" in panel.notice.text() and not panel.run_dir
    panel.show_run(last.run_dir)
    assert "press Evaluate" in panel.notice.text() and panel.evaluation is None
    panel.evaluate_button.click()
    qtbot.waitUntil(lambda: panel.evaluation is not None and not panel.busy(), timeout=30_000)
    assert panel.evaluation.metrics.num_images == 6
    assert (Path(last.run_dir) / "predictions" / "val-best.npz").is_file()
    panel.shutdown()


def test_two_runs_side_by_side(qtbot, run_copy: Path, demo_run: Path) -> None:  # noqa: F811
    panel = open_panel(qtbot, run_copy)
    panel.compare_with(str(demo_run))
    qtbot.waitUntil(lambda: panel.compare.second is not None and not panel.busy(),
                    timeout=30_000)
    assert panel.compare.table.rowCount() == 7
    assert panel.compare.delta_of("0") == pytest.approx(0.0)  # the same model
    assert panel.compare.table.item(0, 2).text() in ("+0.0", "-0.0")
    panel.shutdown()


def test_the_window_shows_each_finished_run_in_the_results_tab(qtbot, run_copy: Path) -> None:
    from workbench_ui.main_window import MainWindow
    from workbench_ui.train_panel import TrainPanel

    win = MainWindow(AppState())
    qtbot.addWidget(win)
    train = next(p for p in win.panels if isinstance(p, TrainPanel))
    results = next(p for p in win.panels if isinstance(p, ResultsPanel))
    results.checkpoint_combo.setCurrentText("last")
    train.run_finished.emit(str(run_copy))
    qtbot.waitUntil(lambda: results.evaluation is not None and not results.busy(),
                    timeout=30_000)
    assert results.current_button.isEnabled() and results.run_dir == str(run_copy)
    win.close()


def test_the_dataset_tab_says_how_many_corrections_it_applied(qtbot, tmp_path: Path) -> None:
    from workbench.data.corrections import Correction, add_correction
    from workbench_ui.dataset_panel import DatasetPanel

    root = make_tiny_dataset(tmp_path / "data", train=4, val=2)
    fixes = tmp_path / "run" / "corrections.csv"
    add_correction(fixes, Correction(str(root / "train" / "class_0" / "0.png"), "exclude"))
    add_correction(fixes, Correction(str(root / "val" / "class_1" / "1.png"), "relabel",
                                     "class_2"))
    state = AppState()
    state.update_config(data={"corrections": str(fixes)})
    panel = DatasetPanel(state)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        panel.open_path(str(root))
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=30_000)
    assert "label corrections applied: 1 relabelled, 1 excluded" in panel.summary.text()
    assert len(state.index) == 17
    panel.shutdown()


def test_the_train_tab_sets_the_long_tail_options(qtbot) -> None:
    from workbench_ui.config_binder import ConfigBinder
    from workbench_ui.train_imbalance import ImbalanceView

    state = AppState()
    view = ImbalanceView(state, ConfigBinder(state))
    qtbot.addWidget(view)
    assert not view.loss_tau.isEnabled()  # only the logit-adjusted loss has a tau
    view.loss.setCurrentIndex(view.loss.findData("logit_adjusted"))
    assert state.config.train.loss == "logit_adjusted" and view.loss_tau.isEnabled()
    view.loss_tau.setValue(1.5)
    view.crt_epochs.setValue(4)
    assert (state.config.train.loss_tau, state.config.train.crt_epochs) == (1.5, 4)
    view.set_editable(False)
    assert not view.loss.isEnabled() and not view.crt_epochs.isEnabled()
