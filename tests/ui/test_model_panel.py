"""The Model tab as a user drives it: backbones, slider, matrix cells, weights import, advice."""

from __future__ import annotations

import pytest
import torch
import torchvision
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from workbench.advice.matrix import CELLS, strategy_for
from workbench_ui.backbone_view import CACHED_TEXT


@pytest.fixture
def panel(model_panel):
    return model_panel


def test_backbone_table_lists_the_zoo_with_mobilenet_cached(panel):
    assert panel.backbones.row_count() > 50
    assert panel.backbones.cell_text("mobilenet_v2", "weights") == CACHED_TEXT
    panel.backbones.filter_edit.setText("resnet")
    assert 3 <= panel.backbones.row_count() < 20


def test_slider_moves_the_stage_diagram_and_the_config(panel):
    stages = panel.model.num_stages
    assert panel.settings.slider.maximum() == stages
    assert panel.stages.frozen_count() == 0
    panel.settings.slider.setValue(3)
    assert panel.state.config.model.freeze_stages == 3
    assert panel.stages.frozen_count() == 3
    frozen_lrs = [row.lr for row in panel.stages.rows()[:3]]
    assert frozen_lrs == ["frozen"] * 3
    panel.settings.slider.setValue(stages)  # linear probe: only the head trains
    assert panel.stages.frozen_count() == stages
    assert panel.matrix.selected_cell() == "similar-small"


def test_clicking_each_cell_applies_its_strategy(panel, qtbot):
    stages = panel.model.num_stages
    for cell in CELLS:
        qtbot.mouseClick(panel.matrix, Qt.MouseButton.LeftButton,
                         pos=panel.matrix.cell_rect(cell).center().toPoint())
        expected = strategy_for(cell, stages)
        model = panel.state.config.model
        assert panel.settings.slider.value() == expected.freeze_stages, cell
        assert model.freeze_stages == expected.freeze_stages
        assert (model.head, model.norm_policy) == (expected.head, expected.norm_policy)
        assert panel.stages.frozen_count() == expected.freeze_stages
        assert panel.matrix.selected_cell() == cell


def test_importing_weights_of_another_architecture_says_why(panel, qtbot, tmp_path,
                                                             monkeypatch):
    path = tmp_path / "squeezenet.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda _parent, title, text, *a: shown.append((title, text))))
    before = panel.state.config.model.weights
    assert before == "IMAGENET1K_V1"  # the file on disk is preferred over downloading V2
    panel.weights.import_file()
    qtbot.waitUntil(lambda: bool(shown) and not panel.busy(), timeout=20_000)
    title, text = shown[0]
    assert "\n" not in text and "Traceback" not in text
    assert "another architecture" in text and "squeezenet.pth" in text
    assert panel.state.config.model.weights == before  # the bad file was not taken


def test_measuring_the_demo_places_the_dataset_on_the_matrix(panel, qtbot, demo_root):
    from workbench.data.scan import index_dataset

    panel.state.set_dataset(index_dataset(demo_root))
    assert panel.matrix.point_position() is not None  # size known before measuring
    panel.advice.measure_button.click()
    assert panel.busy() and panel.advice.cancel_button.isVisibleTo(panel)
    qtbot.waitUntil(lambda: not panel.busy(), timeout=60_000)
    report = panel.advice.report
    assert report is not None, panel.advice.numbers.text()
    assert panel.matrix.highlighted_cell() == report.cell
    assert panel.matrix.cell_at(panel.matrix.point_position()) == report.cell
    assert panel.advice.probe_table.rowCount() > 0
    # digits are far from ImageNet: fine-tuning through frozen ImageNet BN statistics is warned
    panel.state.update_config(model={"freeze_stages": 0, "norm_policy": "frozen_bn"})
    assert "can collapse" in panel.settings.norm_hint.text()
    panel.state.update_config(model={"norm_policy": "train_bn"})
    assert "can collapse" not in panel.settings.norm_hint.text()


def test_layernorm_backbone_says_similarity_cannot_be_measured(panel, qtbot):
    panel.backbones.filter_edit.setText("swin_t")
    panel.backbones.table.selectRow(0)
    assert panel.state.config.model.backbone == "swin_t"
    qtbot.waitUntil(lambda: panel.model is not None, timeout=20_000)
    reason = panel.matrix.unmeasurable_reason()
    assert reason and "LayerNorm" in reason.replace("layernorm", "LayerNorm")
    assert not panel.settings.norm.isEnabled()
    assert "LayerNorm" in panel.settings.norm_hint.text()
    panel.matrix.cell_clicked.emit("dissimilar-large")  # the user's own pick still applies
    assert panel.state.config.model.freeze_stages == 0
    assert panel.matrix.selected_cell() == "dissimilar-large"


def test_group_norm_is_offered_only_for_random_init(panel):
    items = panel.settings.norm.model()
    group_norm_row = panel.settings.norm.findData("group_norm")
    assert not items.item(group_norm_row).isEnabled()
    panel.weights.combo.setCurrentIndex(panel.weights.combo.findData("random"))
    panel.weights.combo.activated.emit(panel.weights.combo.currentIndex())
    assert panel.state.config.model.weights == "random"
    assert items.item(group_norm_row).isEnabled()


def test_a_config_with_an_unknown_backbone_is_reported_not_raised(panel, monkeypatch):
    messages: list[str] = []
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda _parent, _title, text, *a: shown.append(text)))
    panel.state.message.connect(messages.append)
    panel.state.update_config(model={"backbone": "resnet9000"})
    assert messages and "unknown backbone" in messages[0]
    assert shown and "resnet9000" in shown[0] and "Keeping mobilenet_v2" in shown[0]
    # the config and every view still agree on the backbone that can be built
    assert panel.state.config.model.backbone == "mobilenet_v2"
    assert panel.stages.rows()


def test_cancel_stops_the_measurement_without_a_report(panel, qtbot, demo_root):
    from workbench.data.scan import index_dataset

    panel.state.set_dataset(index_dataset(demo_root))
    panel.advice.measure_button.click()
    panel.advice.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.busy(), timeout=15_000)
    assert panel.advice.report is None
    assert panel.matrix.highlighted_cell() is None
    assert "cancelled" in panel.advice.numbers.text().lower()
    assert panel.advice.measure_button.isEnabled()


def test_another_backbone_forgets_the_measured_similarity(panel, qtbot, demo_root):
    """After measuring with mobilenet_v2, picking alexnet (no BN) must not leave the dot at
    mobilenet's divergence, nor the last cell's strategy text, on the matrix."""
    from workbench.data.scan import index_dataset

    panel.state.set_dataset(index_dataset(demo_root))
    panel.measure()
    qtbot.waitUntil(lambda: not panel.busy() and panel.advice.report is not None,
                    timeout=60_000)
    panel.apply_cell(panel.advice.report.cell)
    applied = panel.advice.report.strategy.title
    assert applied in panel.advice.explanation.text()
    assert panel.matrix.label_rect() is not None  # a measured dot
    panel.backbones.filter_edit.setText("alexnet")
    panel.backbones.table.selectRow(0)
    qtbot.waitUntil(lambda: panel.model is not None, timeout=20_000)
    assert panel.matrix.label_rect() is None  # size only: a dashed line, not a measured dot
    assert panel.matrix.point_position() is not None
    assert panel.settings.measured_divergence is None
    assert applied not in panel.advice.explanation.text()
    assert "alexnet" in panel.advice.explanation.text()
    reason = panel.matrix.unmeasurable_reason()
    assert "no norm layers" in reason and "uses none" not in reason


def test_divergence_axis_shows_the_values_themselves(panel):
    """Divergences around 0.5 must read 0.5 on the axis, not 500 with a clipped "(x0.001)"."""
    axis = panel.advice.profile_plot.getAxis("left")
    axis.setRange(0.0, 0.9)
    assert axis.autoSIPrefixScale == 1.0
    assert "x0.001" not in axis.labelString()


def test_applying_the_lp_ft_trial_sets_head_first_epochs_and_another_trial_clears_them(panel):
    from workbench.advice.trials import Trial

    lp_ft = Trial("LP-FT: linear probe, then fine-tune everything", "lpft", 0, 4, "linear", 64,
                  0.9, 0.02, 30.0, lr=0.005, lr_decay=0.3846, unfreeze_after_epochs=1)
    panel.apply_trial(lp_ft)
    config = panel.state.config
    assert config.train.unfreeze_after_epochs == 1  # the run it predicts: head first, then all
    assert (config.model.freeze_stages, config.train.lr) == (0, 0.005)
    probe = Trial("linear probe, block2 (average-pooled)", "probe", 5, 2, "logreg", 64, 0.81,
                  0.02, 1.5, norm_policy="frozen_bn", lr=0.01)
    panel.apply_trial(probe)
    assert panel.state.config.train.unfreeze_after_epochs == 0
    assert panel.state.config.model.head == "logreg"


def test_the_plan_warns_about_memory_once_the_backbone_is_built(panel, demo_root):
    from workbench.data.scan import open_dataset

    panel.state.set_dataset(open_dataset(demo_root), demo_root)
    panel.state.update_config(data={"input_size": 1024}, model={"freeze_stages": 0},
                              train={"device": "cpu", "batch_size": 256})
    plan = panel.state.plan
    assert plan is not None  # measured by the skeleton's worker, not on the GUI thread
    assert any("GiB of activations" in w for w in plan.warnings), plan.warnings
