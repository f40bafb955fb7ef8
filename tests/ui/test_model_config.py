"""The Model tab and the run config: save / open round trip, bad configs, backbone switches,
the batch-size hint, and weights files that must be refused."""

from __future__ import annotations

import pickle

import pytest
import torch
from PySide6.QtWidgets import QFileDialog, QMessageBox

from workbench.config import RunConfig, load_config, save_config
from workbench_ui.model_panel import ModelPanel


@pytest.fixture
def panel(model_panel):
    return model_panel


@pytest.fixture
def dialogs(monkeypatch) -> list[tuple[str, str]]:
    """Every QMessageBox.warning shown, as (title, text), instead of a blocking dialog."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda _parent, title, text, *a: shown.append((title, text))))
    return shown


def _widget_values(panel: ModelPanel) -> dict[str, object]:
    s = panel.settings
    return {"slider": s.slider.value(), "head": s.head.currentData(),
            "feature_stage": s.feature_stage.currentText(), "norm": s.norm.currentData(),
            "input_size": s.input_size.value(), "lr_decay": s.lr_decay.value(),
            "base_lr": s.base_lr.value(), "small": panel.advice.small_spin.value(),
            "threshold": panel.advice.similarity_spin.value()}


def test_every_model_tab_setting_survives_save_and_open(panel, tmp_path, dialogs):
    s = panel.settings
    s.input_size.setValue(96)
    s.slider.setValue(5)
    s.head.setCurrentIndex(s.head.findData("svm"))
    s.feature_stage.setCurrentIndex(s.feature_stage.findData(2))
    s.norm.setCurrentIndex(s.norm.findData("frozen_bn"))
    s.lr_decay.setValue(0.5)
    s.base_lr.setValue(0.02)
    panel.advice.small_spin.setValue(50)
    panel.advice.similarity_spin.setValue(0.2)
    chosen = _widget_values(panel)
    path = save_config(panel.state.config, tmp_path / "run.toml")
    panel.state.set_config(RunConfig())  # everything back to the defaults ...
    assert _widget_values(panel) != chosen
    panel.state.set_config(load_config(path))  # ... and the file brings it all back
    assert _widget_values(panel) == chosen
    assert panel.state.config.model.feature_stage == 2 and chosen["feature_stage"] == "2 · block2"
    assert panel.matrix.selected_cell() == "dissimilar-small"
    assert panel.stages.frozen_count() == 5
    assert not dialogs


def test_an_opened_config_with_too_many_frozen_stages_is_clamped_and_said(panel, dialogs):
    config = RunConfig()
    config.model.freeze_stages = 9  # mobilenet_v2 has 5 stages
    panel.state.set_config(config)
    assert panel.state.config.model.freeze_stages == 5
    assert panel.settings.slider.value() == 5 and panel.stages.frozen_count() == 5
    title, text = dialogs[0]
    assert "model.freeze_stages set to 5" in text and "mobilenet_v2 has 5 stages" in text
    assert "\n" not in text


def test_group_norm_with_pretrained_weights_in_a_config_is_refused(panel, dialogs):
    config = RunConfig()
    config.model.norm_policy = "group_norm"
    panel.state.set_config(config)
    assert panel.state.config.model.norm_policy == "train_bn"
    assert "GroupNorm needs random initialization" in dialogs[0][1]


def test_picking_a_backbone_with_fewer_stages_keeps_slider_and_diagram_in_sync(
        panel, qtbot, dialogs):
    panel.settings.slider.setValue(5)  # mobilenet_v2: everything frozen
    panel.backbones.filter_edit.setText("alexnet")
    panel.backbones.table.selectRow(0)
    qtbot.waitUntil(lambda: panel.model is not None and panel.model.num_stages == 3,
                    timeout=20_000)
    assert panel.state.config.model.freeze_stages == 3
    assert panel.settings.slider.maximum() == 3 and panel.settings.slider.value() == 3
    assert panel.stages.frozen_count() == 3
    assert panel.matrix.selected_cell() == "similar-small"
    assert not dialogs  # the user's own pick: the slider shows the change, no dialog


def test_the_batch_norm_hint_follows_the_train_tab_batch_size(panel):
    hint = panel.settings.norm_hint
    assert "enough to train BN" in hint.text()
    panel.state.update_config(train={"batch_size": 8})  # as the Train tab does
    assert "Batch per device is 8" in hint.text() and "freeze BN" in hint.text()
    panel.settings.norm.setCurrentIndex(panel.settings.norm.findData("frozen_bn"))
    assert "as it should be" in hint.text()


def test_default_weights_are_the_ones_the_core_loads(panel):
    panel.state.update_config(model={"weights": "DEFAULT"})
    from workbench.models.weights import default_weights, weights_cached

    core = default_weights("mobilenet_v2")
    assert panel.weights.combo.currentData() == core.name
    assert panel.weights.download_button.isHidden() == weights_cached(core)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_RunsCode.marker}",))


@pytest.mark.parametrize("kind", ["corrupt", "pickle"])
def test_bad_weights_files_are_refused_in_the_gui(panel, qtbot, tmp_path, monkeypatch,
                                                   dialogs, kind):
    path = tmp_path / f"{kind}.pth"
    _RunsCode.marker = tmp_path / "ran"
    if kind == "corrupt":
        path.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    else:
        torch.save({"features.0.0.weight": _RunsCode()}, path,
                   pickle_protocol=pickle.HIGHEST_PROTOCOL)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    before = panel.state.config.model.weights
    panel.weights.import_file()
    qtbot.waitUntil(lambda: bool(dialogs) and not panel.busy(), timeout=20_000)
    text = dialogs[0][1]
    assert path.name in text and "\n" not in text and "Traceback" not in text
    assert ("refused" if kind == "pickle" else "cannot read") in text
    assert not _RunsCode.marker.exists()  # the pickle's code never ran
    assert panel.state.config.model.weights == before
