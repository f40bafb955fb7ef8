"""The run plan: one answer to "what exactly will this run do?", refused or fixed by one rule."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from workbench.config import Head, RunConfig
from workbench.data.scan import index_dataset
from workbench.errors import UserError
from workbench.plan import plan_run, suggest_input_size
from workbench.train.engine import Trainer
from workbench.train.events import Failed


def _tree(root, classes=("a", "b"), per_class=6, side=24):
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (side, side + 4), (40 * c, 10 * i, 90)).save(folder / f"{i}.png")
    return index_dataset(root)


def _config(**model) -> RunConfig:
    config = RunConfig()
    config.model.weights = "random"
    for key, value in model.items():
        setattr(config.model, key, value)
    return config


def test_settings_the_backbone_cannot_take_are_refused_by_default_and_fixed_on_request():
    config = _config(freeze_stages=9, feature_stage=7, head="logreg")
    with pytest.raises(UserError, match=r"model.freeze_stages = 9: mobilenet_v2 has 5 stages"):
        plan_run(config)
    plan = plan_run(config, fix=True)
    assert plan.freeze_stages == 5 and plan.feature_stage == 4
    assert [f.key for f in plan.fixes] == ["model.freeze_stages", "model.feature_stage"]
    assert plan.config.model.freeze_stages == 5
    assert config.model.freeze_stages == 9  # the caller's config is never edited


def test_group_norm_on_pretrained_weights_is_one_fix():
    config = _config(norm_policy="group_norm")
    config.model.weights = "IMAGENET1K_V1"
    plan = plan_run(config, fix=True)
    assert plan.config.model.norm_policy == "train_bn" and plan.pretrained
    assert "GroupNorm needs random initialization" in plan.fixes[0].reason


def test_input_size_rule_is_the_backbones(tmp_path):
    config = _config()
    config.data.input_size = 40
    config.model.backbone = "inception_v3"
    with pytest.raises(UserError, match="at least 75 px"):
        plan_run(config)
    assert plan_run(config, fix=True).input_size == 75


def test_plan_resolves_everything_a_run_needs(tmp_path):
    index = _tree(tmp_path / "data", side=24)
    config = _config(freeze_stages=5, head="svm", feature_stage=-2)
    plan = plan_run(config, index)
    assert plan.head is Head.SVM and plan.head.fitted_once
    assert plan.feature_stage == 3 and plan.fast_path and not plan.trains_backbone
    assert plan.input_size == 224 == plan.native_input_size
    assert plan.suggested_input_size == 64  # 24 px images: twice their side, to 32 px steps
    assert plan.num_classes == 2 and plan.train_images + plan.val_images == 12
    assert plan.device == "cpu" and plan.processes == 1
    assert any("64 px input would train" in note for note in plan.notes)


def test_warnings_say_what_the_run_will_silently_do(tmp_path):
    index = _tree(tmp_path / "data", per_class=5)
    config = _config(head="logreg")
    config.train.batch_size = 64
    config.data.augment = "standard"
    config.data.sampling = "class_balanced"
    plan = plan_run(config, index)
    text = " ".join(plan.warnings)
    assert f"batch size 64 is more than the {plan.train_images} training images" in text
    assert plan.batch_size == plan.train_images
    assert "augmentation is not used" in text and "sampling is not used" in text


def test_a_one_class_dataset_is_refused_before_any_work(tmp_path):
    index = _tree(tmp_path / "data", classes=("only",))
    with pytest.raises(UserError, match="only one class"):
        plan_run(_config(), index)


def test_suggested_size_never_exceeds_the_weights_own():
    assert suggest_input_size(28, 224, "mobilenet_v2", pretrained=True) == 64
    assert suggest_input_size(500, 224, "mobilenet_v2", pretrained=True) is None
    assert suggest_input_size(None, 224, "mobilenet_v2", pretrained=True) is None


def test_engine_refuses_an_unplannable_config_before_making_a_run_folder(tmp_path):
    index = _tree(tmp_path / "data")
    config = _config(freeze_stages=9)
    config.train.out_dir = str(tmp_path / "runs")
    events = list(Trainer(config, index).run())
    assert isinstance(events[-1], Failed) and events[-1].user_error
    assert "freeze_stages" in events[-1].message
    assert not (tmp_path / "runs").exists()


def test_engine_runs_the_plan_it_is_given(tmp_path):
    index = _tree(tmp_path / "data")
    config = _config(freeze_stages=5)
    config.train.out_dir = str(tmp_path / "runs")
    config.train.epochs = 1
    plan = dataclasses.replace(plan_run(config, index), fast_path=False)
    trainer = Trainer(config, index, plan=plan)
    kinds = [type(e).__name__ for e in trainer.run()]
    assert "FeaturesProgress" not in kinds and kinds[-1] == "Finished"


def _memory_plan(monkeypatch, input_size: int, freeze_stages: int = 0, gib: int = 8):
    from workbench.models import memory

    # the bound of a laptop with 16 GiB RAM, whatever machine runs the test
    monkeypatch.setattr(memory, "available_bytes",
                        lambda device: (gib * memory.GIB, f"half of {2 * gib} GiB RAM"))
    config = _config(freeze_stages=freeze_stages)
    config.data.input_size = input_size
    config.train.device = "cpu"
    return plan_run(config)  # the default batch of 32


def test_a_1024_px_input_with_the_default_batch_warns_about_memory(monkeypatch):
    plan = _memory_plan(monkeypatch, 1024)
    warning = next(w for w in plan.warnings if "activations" in w)
    # mobilenet_v2 keeps about 19.5 M floats per 224 px image; 1024 px is 21x that, 32 images
    assert warning.startswith("1024 px with batch 32 keeps about 48 GiB of activations per "
                              "step, more than half of 16 GiB RAM")
    assert "lower train.batch_size (about 5 fits) or data.input_size" in warning
    assert any("activations" in line for line in plan.summary())


def test_the_native_size_and_a_frozen_backbone_get_no_memory_warning(monkeypatch):
    assert not [w for w in _memory_plan(monkeypatch, 224).warnings if "activations" in w]
    frozen = _memory_plan(monkeypatch, 1024, freeze_stages=5)  # nothing trains: no backward
    assert not [w for w in frozen.warnings if "activations" in w]


def test_activation_estimate_scales_with_the_input_area():
    from workbench.models.memory import activation_elements, step_bytes

    per_image = activation_elements("mobilenet_v2")
    assert 15e6 < per_image < 25e6  # the sum of every layer's output at 224 px
    assert step_bytes(per_image, 224, 448, 8, half=False) == 4 * step_bytes(
        per_image, 224, 224, 8, half=False)
    assert step_bytes(per_image, 224, 224, 8, half=True) * 2 == step_bytes(
        per_image, 224, 224, 8, half=False)
