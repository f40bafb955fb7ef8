"""Weights from the hub cache never run code: hash-checked, then loaded with weights_only=True."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models import get_model

from workbench.errors import UserError
from workbench.models import transfer
from workbench.models import weights as wt
from workbench.models.transfer import build_model

MOBILENET_FILE = "mobilenet_v2-b0353104.pth"


@pytest.fixture
def tmp_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache of our own."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    return hub


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_a_pickle_planted_under_a_weights_name_never_runs(tmp_hub, tmp_path):
    marker = tmp_path / "pwned"
    planted = tmp_hub / "resnet18-f37072fd.pth"
    torch.save({"fc.weight": _Payload(marker)}, planted)
    with pytest.raises(UserError) as caught:
        build_model("resnet18", weights="IMAGENET1K_V1")
    assert not marker.exists()
    message = str(caught.value)
    assert "\n" not in message and str(planted) in message and "damaged" in message


def test_a_truncated_cached_file_is_one_line_naming_it(tmp_hub):
    source = wt._offline_weights_dir() / MOBILENET_FILE
    target = tmp_hub / MOBILENET_FILE
    target.write_bytes(source.read_bytes()[: 1 << 20])
    with pytest.raises(UserError, match=MOBILENET_FILE) as caught:
        build_model("mobilenet_v2", weights="IMAGENET1K_V1", num_classes=3)
    assert "\n" not in str(caught.value)


def test_a_fifo_under_a_weights_name_is_refused_without_hanging(tmp_hub):
    import os

    os.mkfifo(tmp_hub / MOBILENET_FILE)
    with pytest.raises(UserError, match="not a regular file"):
        wt.read_cached_weights(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1)


def test_the_genuine_file_still_loads_and_is_checked_once(tmp_hub, monkeypatch):
    shutil.copyfile(wt._offline_weights_dir() / MOBILENET_FILE, tmp_hub / MOBILENET_FILE)
    model = build_model("mobilenet_v2", weights="IMAGENET1K_V1", num_classes=3)
    state = torch.load(tmp_hub / MOBILENET_FILE, weights_only=True)
    assert torch.equal(model.stages[0][0][0].weight, state["features.0.0.weight"])
    hashed = []
    monkeypatch.setattr(wt, "_sha256", lambda p: hashed.append(p) or "0")
    build_model("mobilenet_v2", weights="IMAGENET1K_V1", num_classes=3)
    assert hashed == []  # verified once per file version, not per build


@pytest.mark.parametrize("backbone, weights", [
    ("googlenet", "IMAGENET1K_V1"), ("inception_v3", "IMAGENET1K_V1"),
    ("densenet121", "IMAGENET1K_V1"), ("vit_b_16", "IMAGENET1K_SWAG_E2E_V1"),
])
def test_weightless_build_matches_torchvisions_pretrained_build(backbone, weights, monkeypatch):
    """The constructor arguments torchvision derives from the weights are reproduced, and
    published files' legacy key names are mapped, so every published file loads strictly."""
    resolved = wt.resolve_weights(backbone, weights)
    family = transfer.backbone_info(backbone).family
    ours = get_model(backbone, weights=None,
                     **transfer._build_kwargs(backbone, family, resolved, 0))
    published = _as_published(backbone, family, ours)
    monkeypatch.setattr(type(resolved), "get_state_dict",
                        lambda self, *a, **k: dict(published))
    theirs = get_model(backbone, weights=resolved)  # torchvision's own pretrained path
    assert getattr(ours, "transform_input", None) == getattr(theirs, "transform_input", None)
    assert getattr(ours, "image_size", None) == getattr(theirs, "image_size", None)
    mapped = transfer._legacy_keys(family, published)
    wt.load_state_dict_checked(ours, mapped, "published")


def _as_published(backbone: str, family: str, ours: torch.nn.Module) -> dict:
    """A state_dict shaped like the published file: aux heads included, DenseNet's old keys."""
    if family in ("googlenet", "inception"):
        with_aux = get_model(backbone, weights=None, aux_logits=True, init_weights=False)
        with_aux.load_state_dict(ours.state_dict(), strict=False)
        return with_aux.state_dict()
    state = ours.state_dict()
    if family != "densenet":
        return state
    # saved before torch 0.4.1: no BatchNorm step counters either
    return {_old_densenet_key(k): v for k, v in state.items()
            if not k.endswith("num_batches_tracked")}


def _old_densenet_key(key: str) -> str:
    for part in ("norm", "relu", "conv"):
        for n in ("1", "2"):
            key = key.replace(f".{part}{n}.", f".{part}.{n}.")
    return key
