"""The Train tab and several processes: the device menu lists the GPUs and "All N GPUs", and a
run over several processes is a torchrun subprocess whose metrics.jsonl fills the same charts,
with Stop ending it gracefully (2 CPU processes over gloo stand in for GPUs here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.config import RunConfig
from workbench.data.scan import open_dataset
from workbench_ui.config_binder import ConfigBinder
from workbench_ui.state import AppState
from workbench_ui.train_options import ALL_GPUS, TrainOptionsView
from workbench_ui.train_panel import TrainPanel


def _menu(qtbot, state: AppState, gpus: list[str]):
    binder = ConfigBinder(state)
    combo = TrainOptionsView._device_menu(state, binder, gpus)
    qtbot.addWidget(combo)
    return combo


def test_the_device_menu_lists_each_gpu_and_all_of_them(qtbot):
    state = AppState(RunConfig())
    combo = _menu(qtbot, state, ["NVIDIA H200", "NVIDIA H200"])
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert "GPU 0: NVIDIA H200" in texts and "GPU 1: NVIDIA H200" in texts
    assert "All 2 GPUs" in texts
    combo.setCurrentIndex(combo.findData(ALL_GPUS))
    assert (state.config.train.device, state.config.train.gpus) == ("cuda", 2)
    combo.setCurrentIndex(combo.findData("cuda:1"))
    assert (state.config.train.device, state.config.train.gpus) == ("cuda:1", 0)
    state.update_config(train={"device": "cuda", "gpus": 2})  # a config file asking for both
    assert combo.currentData() == ALL_GPUS


def test_one_gpu_gets_no_all_gpus_entry(qtbot):
    combo = _menu(qtbot, AppState(RunConfig()), ["NVIDIA H200"])
    assert combo.findData("cuda:0") >= 0 and combo.findData(ALL_GPUS) < 0


@pytest.mark.slow
def test_a_run_over_two_processes_fills_the_charts_and_stops(qtbot, tmp_path, demo_root,
                                                              monkeypatch):
    from workbench.train.launch import TorchrunJob

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("WORKBENCH_DIST_TIMEOUT", "60")
    config = RunConfig()
    config.data.path = str(demo_root)
    config.data.input_size = 32
    config.data.num_workers = 0
    config.model.weights = "IMAGENET1K_V1"
    config.model.freeze_stages = 2
    config.train.epochs = 20
    config.train.batch_size = 32
    config.train.device = "cpu"
    config.train.limit_train_batches = 2
    config.train.out_dir = str(tmp_path / "runs")
    state = AppState(config)
    state.set_dataset(open_dataset(config.data.path), source=config.data.path)
    jobs: list[TorchrunJob] = []

    def two_processes(config, index, **kwargs):
        jobs.append(TorchrunJob(config, index, processes=2, **kwargs))
        return jobs[-1]

    panel = TrainPanel(state, trainer_factory=two_processes)
    qtbot.addWidget(panel)
    panel.start()
    try:
        qtbot.waitUntil(lambda: "val" in panel.charts.loss.curve_names(), timeout=180_000)
        with qtbot.waitSignal(panel.run_finished, timeout=90_000) as finished:
            panel.stop_button.click()
    finally:
        panel.shutdown(timeout=60)
    run_dir = Path(finished.args[0])
    # at least epoch 1 was evaluated: the line says which epoch the stop kept
    assert panel.progress.status.text().startswith("Stopped · kept epoch "), (
        panel.progress.status.text(), panel.notice.text())
    assert len(panel.charts.loss.series("train")) >= 2  # the batches of rank 0's record
    assert (run_dir / "checkpoints" / "last.pt").is_file()  # epoch 1's checkpoint is kept
    assert jobs[0]._process is not None and jobs[0]._process.returncode == 0
    assert not os.path.exists(jobs[0]._work)  # its temporary files are gone
