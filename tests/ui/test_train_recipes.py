"""Train tab recipes: the augmentation options, "show a batch" and the LR finder, on the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.config import RunConfig
from workbench.data.scan import open_dataset
from workbench.plan import backbone_stages, remember_stages
from workbench.train.lr_find import result_of
from workbench_ui.batch_preview_view import IMAGES, pixmap_of
from workbench_ui.state import AppState
from workbench_ui.train_panel import TrainPanel


@pytest.fixture
def panel(qtbot, demo_root: Path, tmp_path: Path) -> TrainPanel:
    remember_stages("mobilenet_v2", backbone_stages("mobilenet_v2"))
    config = RunConfig()
    config.train.out_dir = str(tmp_path / "runs")
    state = AppState(config)
    state.set_dataset(open_dataset(demo_root), demo_root)
    state.update_config(data={"input_size": 32, "num_workers": 0},
                        model={"weights": "random"}, train={"device": "cpu", "batch_size": 8})
    view = TrainPanel(state)
    qtbot.addWidget(view)
    yield view
    assert view.shutdown(5.0)


def test_augmentation_options_edit_the_config_and_follow_it(panel):
    state, options = panel._state, panel.options
    options.augment.setCurrentIndex(options.augment.findData("strong"))
    options.mixup.setValue(0.2)
    options.cutmix.setValue(1.0)
    options.label_smoothing.setValue(0.1)
    data = state.config.data
    assert (data.augment, data.mixup, data.cutmix) == ("strong", 0.2, 1.0)
    assert state.config.train.label_smoothing == 0.1
    assert options.mixup.maximum() == 10.0 and options.label_smoothing.maximum() == 0.5
    state.update_config(data={"augment": "light"})  # edited elsewhere (a loaded config)
    assert options.augment.currentData() == "light"


def test_schedule_options_edit_the_config_and_reach_the_plan(panel):
    state, options = panel._state, panel.options
    assert options.unfreeze_after.text() == "off" and options.patience.text() == "off"
    options.schedule.setCurrentIndex(options.schedule.findData("one_cycle"))
    options.unfreeze_after.setValue(2)
    options.patience.setValue(3)
    train = state.config.train
    assert (train.schedule, train.unfreeze_after_epochs, train.early_stopping_patience) == (
        "one_cycle", 2, 3)
    assert options.patience.maximum() == 100_000  # the range is the config's own (LIMITS)
    plan = state.plan
    assert plan is not None and plan.unfreeze_after_epochs == 2  # what the run will do
    state.update_config(train={"schedule": "warmup_cosine"})  # e.g. a loaded config
    assert options.schedule.currentData() == "warmup_cosine"


def test_show_a_batch_draws_augmented_images_with_labels_off_the_gui_thread(qtbot, panel):
    panel._state.update_config(data={"augment": "strong", "mixup": 0.4})
    preview = panel.batch_preview
    assert preview.show_batch()
    assert not preview.show_button.isEnabled()  # one draw at a time
    qtbot.waitUntil(lambda: preview.show_button.isEnabled(), timeout=60_000)
    shown = [label for label in preview.images if label.pixmap() and not label.pixmap().isNull()]
    assert len(shown) == IMAGES
    names = set(panel._state.index.class_names)
    for caption in preview.captions:
        assert {part.split(" (")[0] for part in caption.text().split(" · ")} <= names
    assert preview.recipe_label.text() == "strong, MixUp 0.4 · 32 px"


def test_show_a_batch_without_a_dataset_says_so(qtbot):
    state = AppState()
    view = TrainPanel(state)
    qtbot.addWidget(view)
    assert not view.batch_preview.show_batch() and not view.lr_finder.find()
    assert view.batch_preview.recipe_label.text() == "Open a dataset first."
    assert view.lr_finder.status.text() == "Open a dataset first."


def test_pixmap_keeps_the_images_colours():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[..., 0] = 200
    pixmap = pixmap_of(image, side=8)
    assert pixmap.width() == 8
    assert pixmap.toImage().pixelColor(3, 3).red() == 200


def test_lr_finder_runs_in_a_worker_marks_the_suggestion_and_applies_it(qtbot, panel):
    finder = panel.lr_finder
    finder.steps = 5
    assert not finder.use_button.isEnabled()
    assert finder.find()
    assert finder.stop_button.isEnabled() and not finder.run_button.isEnabled()
    # generous: a shared 2-core machine may take seconds per step
    qtbot.waitUntil(lambda: not finder.busy(), timeout=600_000)
    result = finder.result
    assert result is not None, finder.status.text()
    xs, ys = finder.curve.getData()
    assert len(xs) == len(result.lrs) and np.allclose(ys, result.losses)
    assert finder.marker.isVisible()
    assert finder.marker.value() == pytest.approx(np.log10(result.suggested))
    assert "Suggested learning rate" in finder.status.text()
    assert finder.use_button.isEnabled()
    finder.use_button.click()
    assert panel._state.config.train.lr == pytest.approx(float(f"{result.suggested:.3g}"))
    assert panel.options.lr.value() == pytest.approx(panel._state.config.train.lr, rel=1e-3)


def test_lr_finder_result_view_on_a_known_curve(panel):
    finder = panel.lr_finder
    finder.show_result(result_of([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.2, 1.0, 0.9, 3.0], 100))
    assert finder.marker.value() == pytest.approx(-2.0)  # 1e-1 / 10, on the log axis
    assert finder.status.text().startswith("Suggested learning rate: 0.01 (minimum / 10;")
    assert "stopped early" in finder.status.text()


def test_lr_finder_is_locked_while_a_run_trains(panel):
    panel._state.set_running(True)
    assert not panel.lr_finder.run_button.isEnabled() and not panel.lr_finder.find()
    panel._state.set_running(False)
    assert panel.lr_finder.run_button.isEnabled()
