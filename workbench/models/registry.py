"""The backbone registry: every torchvision classification model with the metadata transfer needs.

Everything here comes from torchvision's own registry (`list_models`, `get_model_weights`, the
weights' `meta` and `transforms`), so listing the 80 backbones builds no model and reads no
weight file. The family of a model (which decides how it is cut into stages, see `transfer.py`)
and its normalization type come from the name, through the tables below.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from workbench.errors import UserError

# Longest prefix first: "resnext" and "wide_resnet" before "resnet", the v2 variants first.
FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("wide_resnet", "wide_resnet"),
    ("resnext", "resnext"),
    ("resnet", "resnet"),
    ("mobilenet_v2", "mobilenet_v2"),
    ("mobilenet_v3", "mobilenet_v3"),
    ("efficientnet_v2", "efficientnet_v2"),
    ("efficientnet", "efficientnet"),
    ("convnext", "convnext"),
    ("regnet", "regnet"),
    ("densenet", "densenet"),
    ("shufflenet", "shufflenet"),
    ("mnasnet", "mnasnet"),
    ("squeezenet", "squeezenet"),
    ("vgg", "vgg"),
    ("googlenet", "googlenet"),
    ("inception", "inception"),
    ("vit", "vit"),
    ("swin_v2", "swin_v2"),
    ("swin", "swin"),
    ("maxvit", "maxvit"),
    ("alexnet", "alexnet"),
)

# Building 80 models to find their norm layers is slow; the families are few and fixed.
# MaxViT mixes BatchNorm (its MBConv blocks) and LayerNorm (attention): BN-based tools apply.
FAMILY_NORM: dict[str, str] = {
    "convnext": "layernorm",
    "vit": "layernorm",
    "swin": "layernorm",
    "swin_v2": "layernorm",
    "alexnet": "none",
    "squeezenet": "none",
}


@dataclass(frozen=True)
class BackboneInfo:
    """What the user sees about a backbone before building it (from its default weights)."""

    name: str
    family: str
    params: int
    acc1: float
    acc5: float
    gflops: float
    file_size_mb: float
    weights_name: str  # the default weights, e.g. "IMAGENET1K_V2"
    weights_cached: bool  # the default weights' file is in the torch hub cache
    norm_type: str  # "batchnorm", "layernorm" or "none"
    input_size: int  # the default weights' crop size

    def to_json(self) -> dict[str, object]:
        """The `workbench backbones --json` object (docs/cli.md contract plus extras)."""
        return {
            "name": self.name,
            "family": self.family,
            "params": self.params,
            "acc1": self.acc1,
            "acc5": self.acc5,
            "gflops": self.gflops,
            "file_size_mb": self.file_size_mb,
            "weights": self.weights_name,
            "weights_cached": self.weights_cached,
            "norm_type": self.norm_type,
            "input_size": self.input_size,
        }


def family_of(name: str) -> str:
    """The architecture family of a torchvision model name (UserError when none fits)."""
    for prefix, family in FAMILY_PREFIXES:
        if name.startswith(prefix):
            return family
    raise UserError(f"backbone {name!r} belongs to no supported family")


def norm_type_of(name: str) -> str:
    """"batchnorm", "layernorm" or "none", from the family (VGG depends on its `_bn` suffix)."""
    family = family_of(name)
    if family == "vgg":
        return "batchnorm" if name.endswith("_bn") else "none"
    return FAMILY_NORM.get(family, "batchnorm")


@functools.cache
def backbone_names() -> tuple[str, ...]:
    """Names of every torchvision classification model, sorted."""
    import torchvision  # here, not at the top: the CLI's parser needs only the tables above

    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


@functools.cache
def _static_info(name: str, weights_name: str) -> BackboneInfo:
    # Metadata never changes during a session; which weights "DEFAULT" means can (a download).
    from torchvision.models import get_model_weights

    weights = get_model_weights(name)[weights_name]
    meta = weights.meta
    metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
    crop = weights.transforms.keywords.get("crop_size", 224)
    return BackboneInfo(
        name=name,
        family=family_of(name),
        params=int(meta.get("num_params", 0)),
        acc1=float(metrics.get("acc@1", 0.0)),
        acc5=float(metrics.get("acc@5", 0.0)),
        gflops=float(meta.get("_ops", 0.0)),
        file_size_mb=float(meta.get("_file_size", 0.0)),
        weights_name=weights.name,
        weights_cached=False,
        norm_type=norm_type_of(name),
        input_size=int(crop),
    )


def backbone_info(name: str) -> BackboneInfo:
    """The metadata of one backbone, for the weights "DEFAULT" resolves to (the cached ones
    when torchvision's default is not on disk); UserError naming close matches when unknown."""
    if name not in backbone_names():
        import difflib

        close = difflib.get_close_matches(name, backbone_names(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown backbone {name!r}{hint}; `workbench backbones` lists them")
    from workbench.models.weights import default_weights, weights_cached

    weights = default_weights(name)
    return replace(_static_info(name, weights.name), weights_cached=weights_cached(weights))


def list_backbones(family: str | None = None) -> list[BackboneInfo]:
    """Every backbone (optionally one family), from weights metadata only: no model is built."""
    infos = [backbone_info(name) for name in backbone_names()]
    if family is not None:
        infos = [info for info in infos if info.family == family]
    return infos
