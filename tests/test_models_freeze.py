"""Freezing, per-stage learning rates, normalization policies and the stage diagram."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from workbench.errors import UserError
from workbench.models.transfer import TransferModel, build_model


@pytest.fixture
def model() -> TransferModel:
    """A random-init MobileNet v2 with a 3-class head (5 stages, BatchNorm everywhere)."""
    torch.manual_seed(0)
    return build_model("mobilenet_v2", weights="random", num_classes=3)


def _train_step(model: TransferModel, lr: float = 0.1) -> torch.optim.Optimizer:
    optimizer = torch.optim.SGD(model.param_groups(lr, 0.5), lr=lr)
    model.train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    return optimizer


def _bn_stats(module: nn.Module) -> list[torch.Tensor]:
    return [t.clone() for m in module.modules() if isinstance(m, _BatchNorm)
            for t in (m.running_mean, m.running_var, m.weight, m.bias)]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_frozen_stages_get_no_gradient_and_stay_out_of_the_optimizer(model):
    model.freeze(2)
    frozen = [p for stage in model.stages[:2] for p in stage.parameters()]
    before = _bn_stats(model.stages[0])
    optimizer = _train_step(model)
    assert all(p.grad is None for p in frozen)
    assert all(p.grad is not None for p in model.stages[2].parameters())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in frozen}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert in_optimizer == trainable
    assert _same(before, _bn_stats(model.stages[0]))  # a frozen stage is frozen entirely


def test_freeze_all_stages_is_a_linear_probe(model):
    model.freeze(model.num_stages)
    groups = model.param_groups(0.1, 0.5)
    assert [g["name"] for g in groups] == ["head"]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.head.parameters()}
    model.freeze(0)  # moving the slider back unfreezes everything
    assert all(p.requires_grad for p in model.parameters())


def test_freeze_position_out_of_range_is_a_user_error(model):
    with pytest.raises(UserError, match="out of range 0..5"):
        model.freeze(6)


def test_param_groups_decay_the_learning_rate_with_distance_from_the_head(model):
    model.freeze(2)
    groups = model.param_groups(0.1, 0.5)
    assert [g["name"] for g in groups] == ["head", "stage4:block4", "stage3:block3",
                                          "stage2:block2"]
    assert [g["lr"] for g in groups] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    uniform = model.param_groups(0.1, 1.0)
    assert {g["lr"] for g in uniform} == {0.1}


def test_frozen_bn_keeps_statistics_and_affine_through_training(model):
    model.apply_norm_policy("frozen_bn")
    before = _bn_stats(model)
    _train_step(model)
    model.train()  # train() must not switch the BN layers back to batch statistics
    assert not any(m.training for m in model.modules() if isinstance(m, _BatchNorm))
    assert _same(before, _bn_stats(model))
    model.freeze(1)  # unfreezing stages keeps the BN affine parameters frozen
    assert not any(p.requires_grad for m in model.modules() if isinstance(m, _BatchNorm)
                   for p in m.parameters())


def test_train_bn_updates_statistics(model):
    before = _bn_stats(model)
    _train_step(model)
    assert not _same(before, _bn_stats(model))


def test_group_norm_replaces_every_batchnorm_for_random_init(model):
    bn_count = len(model.bn_layers())
    model.apply_norm_policy("group_norm")
    assert not model.bn_layers()
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == bn_count
    assert all(m.num_channels % m.num_groups == 0 and m.num_groups <= 32 for m in norms)
    _train_step(model)
    assert "GroupNorm" in model.stage_summary()[0].norm_layers


def test_group_norm_with_pretrained_weights_is_a_user_error():
    model = build_model("mobilenet_v2", weights="IMAGENET1K_V1")
    with pytest.raises(UserError, match="group_norm needs random initialization"):
        model.apply_norm_policy("group_norm")


def test_sync_bn_converts_and_still_trains_in_one_process(model):
    model.apply_norm_policy("sync_bn")
    assert all(isinstance(module, nn.SyncBatchNorm) for _, _, module in model.bn_layers())
    _train_step(model)


def test_stage_summary_shows_parameters_trainable_lr_and_norm_layers(model):
    model.freeze(2)
    rows = model.stage_summary(0.1, 0.5)
    assert [r.name for r in rows] == [*model.stage_names, "head"]
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert [r.trainable for r in rows] == [False, False, True, True, True, True]
    assert [r.lr for r in rows] == pytest.approx([0, 0, 0.0125, 0.025, 0.05, 0.1])
    assert rows[0].norm_layers.startswith("BatchNorm2d x ")
    assert rows[-1].norm_layers == ""


def test_bn_layers_name_each_batchnorm_with_its_stage(model):
    layers = model.bn_layers()
    assert len(layers) == sum(isinstance(m, _BatchNorm) for m in model.modules())
    assert [stage for _, stage, _ in layers] == sorted(stage for _, stage, _ in layers)
    assert {stage for _, stage, _ in layers} == set(range(model.num_stages))
    assert all(model.get_submodule(name) is module for name, _, module in layers)


def test_norm_type_reports_layernorm_backbones():
    assert build_model("swin_t", weights="random").norm_type == "layernorm"


def test_frozen_bn_is_suggested_for_small_batches_of_batchnorm_backbones():
    # the one rule is advice.norm.norm_hint (models.transfer.suggest_norm_policy duplicated it)
    from workbench.advice.norm import norm_hint

    small = norm_hint("batchnorm", "train_bn", 8, trains_backbone=True)
    assert small.warning and "freeze BN" in small.text
    assert not norm_hint("batchnorm", "train_bn", 32, trains_backbone=True).warning
    assert "LayerNorm backbone" in norm_hint("layernorm", "train_bn", 8, True).text
