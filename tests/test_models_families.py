"""Every backbone family builds, is cut into stages that cover it exactly, and runs end to end."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision

from workbench.errors import UserError
from workbench.models.adapters import ADAPTERS
from workbench.models.registry import backbone_names, family_of, list_backbones
from workbench.models.transfer import TransferModel, build_model

# The smallest member of each family, with the smallest input it accepts.
FAMILY_MODELS = [
    ("resnet18", 64), ("resnext50_32x4d", 64), ("wide_resnet50_2", 64),
    ("mobilenet_v2", 64), ("mobilenet_v3_small", 64), ("efficientnet_b0", 64),
    ("efficientnet_v2_s", 64), ("convnext_tiny", 64), ("regnet_x_400mf", 64),
    ("densenet121", 64), ("shufflenet_v2_x0_5", 64), ("mnasnet0_5", 64),
    ("squeezenet1_1", 64), ("vgg11_bn", 64), ("alexnet", 64), ("googlenet", 64),
    ("inception_v3", 75), ("vit_b_16", 32), ("swin_t", 64), ("swin_v2_t", 64),
    ("maxvit_t", 224),
]


def test_every_torchvision_classifier_has_a_family_and_an_adapter():
    names = backbone_names()
    assert len(names) == len(list_backbones()) >= 80
    assert {family_of(name) for name in names} <= set(ADAPTERS)
    assert {family_of(name) for name, _ in FAMILY_MODELS} == set(ADAPTERS)


@pytest.mark.parametrize(("name", "size"), FAMILY_MODELS, ids=[n for n, _ in FAMILY_MODELS])
def test_family_builds_with_stages_covering_every_parameter_once(name: str, size: int):
    model = build_model(name, weights="random", input_size=size if name.startswith("vit") else 0)
    covered = [p for stage in model.stages for p in stage.parameters()]
    covered += list(model.head.parameters())
    assert len({id(p) for p in covered}) == len(covered)  # no parameter in two places
    assert {id(p) for p in covered} == {id(p) for p in model.parameters()}  # none left out
    assert 3 <= model.num_stages <= 8 and len(model.stage_names) == model.num_stages

    model.reset_classifier(3)
    model.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
        maps = model.stage_outputs(x, range(model.num_stages))
    assert features.shape == (1, model.feature_dim)
    assert logits.shape == (1, 3)
    assert torch.allclose(model.forward_head(features), logits)
    assert sorted(maps) == list(range(model.num_stages))
    assert all(m.dim() == 4 and m.shape[0] == 1 for m in maps.values())
    if name.startswith("vit"):  # 2x2 patches of 16 px: the class token is left out
        assert all(m.shape == (1, 768, 2, 2) for m in maps.values())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "googlenet", "densenet121"])
def test_imagenet_head_gives_torchvision_logits(name: str):
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    reference = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    if name == "googlenet":
        reference.transform_input = True  # what pretrained weights switch on
    wrapped = TransferModel(copy.deepcopy(reference), name, pretrained=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), reference(x), atol=1e-5)
    assert wrapped.num_classes == 1000


def test_stage_index_out_of_range_is_a_user_error():
    model = build_model("mobilenet_v3_small", weights="random")
    with pytest.raises(UserError, match="out of range"):
        model.stage_outputs(torch.randn(1, 3, 64, 64), [model.num_stages])


def test_reset_classifier_keeps_a_pretrained_mlp_and_replaces_only_the_last_layer():
    model = build_model("alexnet", weights="random")
    hidden = model.head[1]
    model.reset_classifier(5)
    assert model.head[1] is hidden and model.head[-1].out_features == 5
    assert model.feature_dim == 256 * 6 * 6


def test_unknown_backbone_is_a_user_error():
    with pytest.raises(UserError, match="unknown backbone 'resnet19'.*resnet18"):
        build_model("resnet19", weights="random")


@pytest.mark.parametrize(("name", "size", "message"), [
    ("maxvit_t", 112, "multiple of 224"),
    ("inception_v3", 64, "at least 75"),
    ("resnet18", 16, "at least 32"),
])
def test_input_size_a_backbone_cannot_take_is_a_user_error(name: str, size: int, message: str):
    with pytest.raises(UserError, match=message):
        build_model(name, weights="random", input_size=size)
