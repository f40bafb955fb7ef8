"""The Train panel driving the real engine on real data (tiny inputs, capped batches)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.builders import pretrained_config
from workbench.config import RunConfig
from workbench.data.scan import open_dataset
from workbench_ui.results_panel import missing_predictions_note
from workbench_ui.state import AppState
from workbench_ui.train_panel import RunState, TrainPanel


def _config(tmp_path: Path, data_path: Path, **train) -> RunConfig:
    # mobilenet_v2's ImageNet weights (offline hub cache), 2 batches of 16 at 32 px
    return pretrained_config(data_path, tmp_path / "runs",
                             **{f"train__{key}": value for key, value in train.items()})


def _panel(qtbot, config: RunConfig) -> TrainPanel:
    state = AppState(config)
    state.set_dataset(open_dataset(config.data.path), source=config.data.path)
    panel = TrainPanel(state)
    qtbot.addWidget(panel)
    return panel


def _wait_for_batches(qtbot, panel: TrainPanel) -> None:
    qtbot.waitUntil(lambda: panel.progress.bar.value() > 0, timeout=60_000)


def test_start_trains_and_fills_the_charts(qtbot, tmp_path, demo_root):
    panel = _panel(qtbot, _config(tmp_path, demo_root))
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as finished:
        panel.start_button.click()
    run_dir = Path(finished.args[0])
    assert panel.notice.kind != "error", panel.notice.text()
    assert "Finished" in panel.progress.status.text()
    charts = panel.charts
    assert len(charts.loss.series("train")) == 2 and len(charts.loss.series("val")) == 1
    assert charts.accuracy.curve_names() == ["top-1", "balanced"]
    assert charts.lr.curve_names() and len(charts.throughput.series("images/s")) == 2
    # the demo's balanced validation split: every row of the confusion matrix sums to 1
    assert charts.confusion.matrix.shape == (10, 10)
    assert np.allclose(charts.confusion.matrix.sum(axis=1), 1.0)
    assert len(charts.class_acc.heights) == 10
    assert "many" in charts.shot_label.text() and "%" in charts.shot_label.text()
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert events[0] == "RunStarted" and events[-1] == "Finished"
    assert panel.run_dir_label.text() == str(run_dir)


def test_stop_ends_training_promptly(qtbot, tmp_path, demo_root):
    panel = _panel(qtbot, _config(tmp_path, demo_root, limit_train_batches=0, epochs=5))
    panel.start()
    _wait_for_batches(qtbot, panel)
    started = time.monotonic()
    with qtbot.waitSignal(panel.run_finished, timeout=5000):
        panel.stop_button.click()
    assert time.monotonic() - started < 5.0  # well before five epochs end (loose: shared CPUs)
    assert not panel.busy() and panel.start_button.isEnabled()
    # issue 16: a stop mid-epoch keeps nothing of that epoch, and both tabs say so
    status = panel.progress.status.text()
    assert status == "Stopped before epoch 1 ended: nothing kept", status
    assert "not kept" in panel.stop_button.toolTip()
    note = missing_predictions_note(panel.run_dir, "val", "best")
    assert "stopped before its first epoch ended" in note and "older" not in note


def test_pause_then_resume_finishes_the_run(qtbot, tmp_path, small_digits):
    panel = _panel(qtbot, _config(tmp_path, small_digits, batch_size=4, limit_train_batches=0))
    panel.start()
    _wait_for_batches(qtbot, panel)
    panel.pause_button.click()
    qtbot.waitUntil(lambda: panel.run_state is RunState.PAUSED, timeout=5000)
    paused_at = panel.progress.bar.value()
    qtbot.wait(300)
    assert panel.progress.bar.value() == paused_at and panel.busy()
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.pause_button.click()
    assert "Finished" in panel.progress.status.text()
    assert panel.progress.bar.value() == panel.progress.bar.maximum()


def test_shutdown_mid_training_joins_the_thread(qtbot, tmp_path, demo_root):
    panel = _panel(qtbot, _config(tmp_path, demo_root, limit_train_batches=0, epochs=5))
    panel.start()
    _wait_for_batches(qtbot, panel)
    assert panel.busy()
    started = time.monotonic()
    assert panel.shutdown(5.0)
    assert time.monotonic() - started < 5.0 and not panel.busy()


def test_bad_weights_file_is_reported_and_the_panel_stays_usable(qtbot, tmp_path, demo_root):
    config = _config(tmp_path, demo_root)
    config.model.weights = str(tmp_path / "missing.pth")
    panel = _panel(qtbot, config)
    panel.start()  # refused by the plan at once, or by the engine once it plans in its worker
    qtbot.waitUntil(lambda: panel.notice.kind == "error", timeout=60_000)
    assert "missing.pth" in panel.notice.text()
    qtbot.waitUntil(lambda: panel.run_state is RunState.IDLE, timeout=10_000)
    assert panel.start_button.isEnabled()


def _copy_digits(demo_root: Path, root: Path) -> Path:
    """Three demo classes, 10 training and 4 validation digits each: a run takes a second."""
    for split, keep in (("train", 10), ("val", 4)):
        for digit in ("0", "1", "2"):
            target = root / split / digit
            target.mkdir(parents=True)
            for path in sorted((demo_root / split / digit).iterdir())[:keep]:
                shutil.copy(path, target / path.name)
    return root


@pytest.fixture
def small_digits(tmp_path: Path, demo_root: Path) -> Path:
    """A small real dataset cut from the demo."""
    return _copy_digits(demo_root, tmp_path / "digits3")


@pytest.fixture
def digits_with_a_corrupt_file(small_digits: Path) -> Path:
    """The small dataset with one corrupt PNG among the training images."""
    (small_digits / "train" / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    return small_digits


def test_corrupt_training_image_is_skipped_and_counted(qtbot, tmp_path,
                                                       digits_with_a_corrupt_file):
    config = _config(tmp_path, digits_with_a_corrupt_file, limit_train_batches=0)
    panel = _panel(qtbot, config)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.start()
    assert "Finished" in panel.progress.status.text()
    assert "skipped 1 time(s)" in panel.notice.text()


def test_one_corrupt_image_over_two_epochs_is_not_called_two_images(
        qtbot, tmp_path, digits_with_a_corrupt_file):
    config = _config(tmp_path, digits_with_a_corrupt_file, limit_train_batches=0, epochs=2)
    panel = _panel(qtbot, config)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.start()
    text = panel.notice.text()
    assert "skipped 2 time(s)" in text and "once per epoch" in text
    assert "2 unreadable images" not in text  # there is one broken file, read twice


def test_resume_run_from_the_gui_replays_curves_and_continues(qtbot, tmp_path, small_digits):
    config = _config(tmp_path, small_digits, batch_size=10, limit_train_batches=0)
    first = _panel(qtbot, config)
    with qtbot.waitSignal(first.run_finished, timeout=60_000) as finished:
        first.start()
    run_dir = Path(finished.args[0])
    # a fresh window (new state, nothing drawn) resumes the finished run for one more epoch
    panel = _panel(qtbot, _config(tmp_path, small_digits, epochs=7))
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        assert panel.resume_run(run_dir, epochs=2)
        # the recorded epoch is drawn before the engine reports anything
        assert len(panel.charts.loss.series("val")) == 1
    assert panel.notice.kind != "error", panel.notice.text()
    assert panel.run_dir == str(run_dir) and panel._state.config.train.epochs == 2
    assert len(panel.charts.loss.series("val")) == 2
    assert len(panel.charts.loss.series("train")) == 6  # 3 batches an epoch, both epochs
    x, _ = panel.charts.loss.series("train").arrays()
    assert np.all(np.diff(x) > 0)  # the curve continues, it does not start over
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["start_epoch"] for e in events if e["event"] == "RunStarted"] == [0, 1]
    assert 'epochs = 2' in (run_dir / "config.toml").read_text()


def test_resuming_a_run_on_another_dataset_asks_to_open_it(qtbot, tmp_path, small_digits,
                                                         demo_root):
    config = _config(tmp_path, small_digits, batch_size=10, limit_train_batches=1)
    first = _panel(qtbot, config)
    with qtbot.waitSignal(first.run_finished, timeout=60_000) as finished:
        first.start()
    panel = _panel(qtbot, _config(tmp_path, demo_root))  # the demo is open in this window
    with qtbot.waitSignal(panel._state.open_requested, timeout=5_000) as requested:
        assert panel.resume_run(Path(finished.args[0]), epochs=2)
    assert requested.args == [str(small_digits)]  # the Dataset tab follows the resumed run
    qtbot.waitUntil(lambda: not panel.busy(), timeout=60_000)


def test_resume_of_a_folder_that_is_not_a_run_says_so(qtbot, tmp_path, small_digits):
    panel = _panel(qtbot, _config(tmp_path, small_digits))
    assert not panel.resume_run(tmp_path)
    assert panel.notice.kind == "error" and "not a run folder" in panel.notice.text()
    assert panel.run_state is RunState.IDLE and panel.resume_run_button.isEnabled()


def test_sklearn_head_says_it_is_fitted_once(qtbot, tmp_path, small_digits):
    config = _config(tmp_path, small_digits)
    config.model.head, config.model.feature_stage = "logreg", 3
    panel = _panel(qtbot, config)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.start()
    assert panel.notice.kind == "info" and "fitted once" in panel.notice.text()
    assert "Finished" in panel.progress.status.text()
    assert panel.progress.bar.maximum() > 0  # the busy indicator ended with the fit
    assert len(panel.charts.class_acc.heights) == 3


def test_config_whose_dataset_is_gone_is_reported(qtbot, tmp_path, small_digits):
    config = _config(tmp_path, small_digits)
    config.data.path = str(tmp_path / "moved-away")
    panel = TrainPanel(AppState(config))
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.start()
    assert panel.notice.kind == "error" and "moved-away" in panel.notice.text()
    assert panel.run_state is RunState.IDLE
