"""The GUI shows the run plan and follows it: suggested input size, fixes, the lock during a run,
labels keyed by the core's vocabulary, and widget ranges from the config's own limits."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QMessageBox

from workbench.config import LIMITS, RunConfig
from workbench.data.scan import open_dataset
from workbench.train.events import RunStarted, Stopped
from workbench_ui.state import AppState
from workbench_ui.train_panel import TrainPanel
from workbench_ui.vocabulary import VOCABULARIES


def test_every_choice_of_the_core_has_one_gui_label_and_no_more():
    for enum, labels in VOCABULARIES.items():
        assert set(labels) == set(enum), enum.__name__
        assert all(isinstance(text, str) and text for text in labels.values())


def test_both_learning_rate_boxes_take_the_configs_range(model_panel, qtbot):
    train = TrainPanel(model_panel.state)
    qtbot.addWidget(train)
    low, high = LIMITS["train.lr"]
    for box in (model_panel.settings.base_lr, train.options.lr):
        assert (box.minimum(), box.maximum()) == (low, high)
    assert model_panel.settings.input_size.minimum() == 32  # training refuses less


def test_plan_view_says_what_the_next_run_does(model_panel, demo_root):
    state = model_panel.state
    state.set_dataset(open_dataset(str(demo_root)), source=str(demo_root))
    model_panel.plan_view.refresh()
    text = model_panel.plan_view.label.text()
    assert "Next run:" in text and "mobilenet_v2" in text and "64 px" in text


def test_clicking_a_cell_brings_the_suggested_input_size_for_small_images(model_panel,
                                                                          demo_root):
    state = model_panel.state
    state.update_config(data={"input_size": 0})  # the weights' 224 px
    state.set_dataset(open_dataset(str(demo_root)), source=str(demo_root))
    assert state.plan.suggested_input_size == 64  # 28 px digits
    assert model_panel.plan_view.use_size.isVisibleTo(model_panel)
    model_panel.apply_cell("similar-large")
    assert state.config.data.input_size == 64
    assert not model_panel.plan_view.use_size.isVisibleTo(model_panel)


def test_use_size_button_applies_the_suggestion(model_panel, demo_root):
    state = model_panel.state
    state.update_config(data={"input_size": 0})
    state.set_dataset(open_dataset(str(demo_root)), source=str(demo_root))
    model_panel.plan_view.use_size.click()
    assert state.config.data.input_size == 64
    assert model_panel.settings.input_size.value() == 64


def test_a_one_class_dataset_is_said_before_training(qtbot, tmp_path, monkeypatch):
    from PIL import Image

    for i in range(3):
        (tmp_path / "only").mkdir(exist_ok=True)
        Image.new("RGB", (40, 40)).save(tmp_path / "only" / f"{i}.png")
    state = AppState(RunConfig())
    state.set_dataset(open_dataset(str(tmp_path)), source=str(tmp_path))
    from workbench.plan import remember_stages

    remember_stages("mobilenet_v2", [f"s{i}" for i in range(5)])
    started = []
    panel = TrainPanel(state, trainer_factory=lambda *a, **k: started.append(a))
    qtbot.addWidget(panel)
    panel.start()
    assert "only one class" in panel.notice.text() and not started
    assert "only one class" in panel.plan_view.label.text()


class _HeldTrainer:
    """Starts, then waits until stopped: a run in progress."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def run(self):
        yield RunStarted("/tmp/held", "cpu", 10, 5, 1, 1)
        self._stop.wait(10)
        yield Stopped("/tmp/held")


def test_settings_that_shaped_a_run_are_locked_while_it_trains(model_panel, qtbot,
                                                               monkeypatch, demo_root):
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *a: None))
    state = model_panel.state
    state.set_dataset(open_dataset(str(demo_root)), source=str(demo_root))
    train = TrainPanel(state, trainer_factory=lambda c, i: _HeldTrainer())
    qtbot.addWidget(train)
    train.start()
    qtbot.waitUntil(lambda: train.run_dir == "/tmp/held", timeout=5000)
    assert state.running
    assert not model_panel.settings.isEnabled() and not model_panel.backbones.isEnabled()
    train.stop()
    qtbot.waitUntil(lambda: not state.running, timeout=5000)
    assert model_panel.settings.isEnabled() and model_panel.backbones.isEnabled()


def test_another_dataset_does_not_inherit_the_previous_ones_settings(tmp_path, demo_root):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (300, 300)).save(tmp_path / name / f"{i}.png")
    state = AppState(RunConfig())
    messages = []
    state.message.connect(messages.append)
    state.set_dataset(open_dataset(str(demo_root)), source=str(demo_root))
    state.update_config(data={"input_size": 64, "loss_weighting": "inverse"},
                        train={"epochs": 40, "lr": 0.05})
    state.set_dataset(open_dataset(str(tmp_path)), source=str(tmp_path))
    c = state.config
    assert (c.data.input_size, c.data.loss_weighting, c.train.epochs) == (0, "none", 10)
    assert c.train.lr == 0.05  # not a property of the dataset: kept
    assert "input size" in messages[-1] and "epochs" in messages[-1]
    state.set_dataset(open_dataset(str(tmp_path)), source=str(tmp_path))  # the same again
    assert len(messages) == 1


def test_the_split_is_locked_while_a_run_trains(qtbot):
    from workbench_ui.dataset_panel import DatasetPanel

    state = AppState(RunConfig())
    panel = DatasetPanel(state)
    qtbot.addWidget(panel)
    state.set_running(True)
    assert not panel.split_options.isEnabled()
    state.set_running(False)
    assert panel.split_options.isEnabled()


def test_show_in_folder_without_a_file_manager_shows_the_path(qtbot, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from workbench_ui.problems_view import ProblemsView

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: False))
    view = ProblemsView()
    qtbot.addWidget(view)
    view._shown_path = str(tmp_path / "a.png")
    view.show_in_folder()
    assert view.path_dialog is not None and view.path_dialog.isVisible()
    assert view.path_dialog.path_edit.text() == str(tmp_path)
