"""The transfer model: any torchvision classifier as ordered stages, pooling and a head.

`build_model(backbone, weights, num_classes, norm_policy)` resolves the weights (hub cache,
download, a file, or random init), builds the torchvision model and wraps it in a
`TransferModel`, whose one interface serves every family:

- `stages` (stem first), `head`, `feature_dim`, `forward_features` (pooled), `forward_head`,
  `reset_classifier(num_classes)` (replaces the head's final Linear; a pre-logits MLP or norm
  before it is kept), `stage_outputs(x, stages)` (feature maps `[N, C, H, W]`, token models
  reshaped, class token left out).
- `freeze(k)`: the bottom k stages get no gradient and stay in eval mode through `train()` (a
  frozen stage is frozen entirely: its BatchNorm statistics and dropout too).
- `apply_norm_policy(policy)`, `param_groups(base_lr, lr_decay)`, `stage_summary(...)`.
- `bn_layers() -> list[(name, stage_index, module)]`: every BatchNorm layer of the stages in
  forward order, for the BN-statistics divergence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.models import get_model
from torchvision.ops import FrozenBatchNorm2d

from workbench.config import MIN_INPUT_SIZE, NORM_POLICIES, NormPolicy
from workbench.errors import UserError
from workbench.models import weights as wt
from workbench.models.adapters import as_map, layout_for
from workbench.models.registry import backbone_info

# BatchNorm1d/2d/3d and SyncBatchNorm (all _BatchNorm), and torchvision's frozen variant
BN_TYPES = (_BatchNorm, FrozenBatchNorm2d)
MAX_GROUPS = 32  # GroupNorm's default group count (Wu & He 2018)
SMALL_BN_BATCH = 16  # below this many images per device, suggest frozen BN


@dataclass(frozen=True)
class StageInfo:
    """One row of the stage diagram (the last row is the head)."""

    name: str
    params: int
    trainable: bool
    lr: float  # 0.0 when frozen
    norm_layers: str  # e.g. "BatchNorm2d x 12", "" when none


class TransferModel(nn.Module):
    """A torchvision classifier cut into stages, with one transfer interface for every family."""

    def __init__(self, model: nn.Module, backbone: str, pretrained: bool) -> None:
        super().__init__()
        info = backbone_info(backbone)
        layout = layout_for(info.family, model)
        self.backbone = backbone
        self.family = info.family
        self.norm_type = info.norm_type
        self.pretrained = pretrained
        self.stage_names = list(layout.stage_names)
        self.stages = nn.ModuleList(layout.stages)
        self.pool = layout.pool
        self.head = layout.head
        self.layout = layout.layout
        self.feature_dim = _head_in_features(self.head)
        self.num_classes = _head_out_features(self.head)
        self.frozen_stages = 0
        self.norm_policy = NormPolicy.TRAIN_BN

    @property
    def num_stages(self) -> int:
        """How many stages the backbone has (the slider's range is 0..num_stages)."""
        return len(self.stages)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Logits: stages, pooling, head."""
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features after the last stage, `[N, feature_dim]`."""
        for stage in self.stages:
            x = stage(x)
        return self.pool(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """Logits from pooled features."""
        return self.head(features)

    def stage_outputs(self, x: Tensor, stages: Iterable[int]) -> dict[int, Tensor]:
        """Feature maps `[N, C, H, W]` after each requested stage (runs only as deep as needed)."""
        wanted = sorted({self._stage_index(i) for i in stages})
        outputs: dict[int, Tensor] = {}
        for index, stage in enumerate(self.stages[: wanted[-1] + 1] if wanted else []):
            x = stage(x)
            if index in wanted:
                outputs[index] = as_map(x, self.layout)
        return outputs

    def _stage_index(self, index: int) -> int:
        resolved = index + self.num_stages if index < 0 else index
        if not 0 <= resolved < self.num_stages:
            raise UserError(f"stage {index} is out of range: {self.backbone} has "
                            f"{self.num_stages} stages")
        return resolved

    # -- head --------------------------------------------------------------------------------
    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head's final layer by a fresh Linear with `num_classes` outputs."""
        if num_classes < 1:
            raise UserError(f"num_classes must be at least 1, not {num_classes}")
        parent, name, last = _last_layer(self.head)
        if isinstance(last, nn.Conv2d):  # SqueezeNet's conv classifier: a Linear on features
            self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(last.in_channels, num_classes))
        else:
            new = nn.Linear(last.in_features, num_classes, bias=True)
            new = new.to(device=last.weight.device, dtype=last.weight.dtype)
            if last is self.head:  # the head is a bare Linear (ResNet's fc)
                self.head = new
            else:
                setattr(parent, name, new)
        self.num_classes = num_classes
        self._sync_requires_grad()

    # -- freezing, norm policy, learning rates ----------------------------------------------------
    def freeze(self, k: int) -> None:
        """Freeze the bottom k stages (k == num_stages: the whole backbone, a linear probe)."""
        if not 0 <= k <= self.num_stages:
            raise UserError(f"model.freeze_stages = {k} is out of range 0..{self.num_stages}: "
                            f"{self.backbone} has {self.num_stages} stages")
        self.frozen_stages = k
        self._sync_requires_grad()
        self.train(self.training)

    def _sync_requires_grad(self) -> None:
        for index, stage in enumerate(self.stages):
            stage.requires_grad_(index >= self.frozen_stages)
        self.head.requires_grad_(True)
        if self.norm_policy == NormPolicy.FROZEN_BN:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.requires_grad_(False)

    def train(self, mode: bool = True) -> TransferModel:
        """Set training mode; frozen stages and (under frozen_bn) BN layers stay in eval mode."""
        super().train(mode)
        if mode:
            for stage in self.stages[: self.frozen_stages]:
                stage.eval()
            if self.norm_policy == NormPolicy.FROZEN_BN:
                for module in self.modules():
                    if isinstance(module, _BatchNorm):
                        module.eval()
        return self

    def apply_norm_policy(self, policy: str) -> None:
        """train_bn (as is), frozen_bn, group_norm (random init only) or sync_bn."""
        if policy not in NORM_POLICIES:
            raise UserError(f"norm policy {policy!r} is not one of {', '.join(NORM_POLICIES)}")
        if policy == NormPolicy.GROUP_NORM:
            if self.pretrained:
                raise UserError("group_norm needs random initialization: pretrained BatchNorm "
                                "weights do not map onto GroupNorm")
            _replace_modules(self, lambda m: isinstance(m, nn.BatchNorm2d), _group_norm_for)
        elif policy == NormPolicy.SYNC_BN:
            # Syncs only under torch.distributed with several processes; plain BN otherwise.
            for index, stage in enumerate(self.stages):
                self.stages[index] = nn.SyncBatchNorm.convert_sync_batchnorm(stage)
        self.norm_policy = NormPolicy(policy)
        self._sync_requires_grad()
        self.train(self.training)

    def param_groups(self, base_lr: float, lr_decay: float) -> list[dict]:
        """Optimizer groups: the head at base_lr, trainable stage i at base_lr * decay**(S - i)."""
        groups = [{"params": _trainable(self.head), "lr": base_lr, "name": "head"}]
        for index in range(self.num_stages - 1, self.frozen_stages - 1, -1):
            params = _trainable(self.stages[index])
            if params:
                groups.append({"params": params, "lr": self.stage_lr(index, base_lr, lr_decay),
                               "name": f"stage{index}:{self.stage_names[index]}"})
        return [g for g in groups if g["params"]]

    def stage_lr(self, index: int, base_lr: float, lr_decay: float) -> float:
        """The learning rate of stage `index` (0.0 when frozen)."""
        if index < self.frozen_stages:
            return 0.0
        return base_lr * lr_decay ** (self.num_stages - index)

    def stage_summary(self, base_lr: float = 0.01, lr_decay: float = 1.0) -> list[StageInfo]:
        """One row per stage, then one for the head: parameters, trainable, LR, norm layers."""
        rows = [
            StageInfo(name, _count(stage), index >= self.frozen_stages,
                      self.stage_lr(index, base_lr, lr_decay), _norm_summary(stage))
            for index, (name, stage) in enumerate(zip(self.stage_names, self.stages, strict=True))
        ]
        rows.append(StageInfo("head", _count(self.head), True, base_lr, _norm_summary(self.head)))
        return rows

    def bn_layers(self) -> list[tuple[str, int, nn.Module]]:
        """Every BatchNorm layer, in order: (name, stage index, module) (see `bn_layers`)."""
        return bn_layers(self)


def bn_layers(model: nn.Module) -> list[tuple[str, int, nn.Module]]:
    """Every BatchNorm layer with running statistics, in forward order: (name, stage index,
    module). The stage is the index in `model.stages` (a `TransferModel`), -1 for a layer
    outside them, and 0 for any model without stages. The one definition of "the BN layers",
    for freezing, the norm policies and the BN-statistics divergence."""
    stage_of: dict[int, int] = {}
    for index, stage in enumerate(getattr(model, "stages", [])):
        for module in stage.modules():
            stage_of[id(module)] = index
    return [
        (name, stage_of.get(id(m), 0 if not stage_of else -1), m)
        for name, m in model.named_modules()
        if isinstance(m, BN_TYPES) and getattr(m, "running_mean", None) is not None
    ]


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _norm_summary(module: nn.Module) -> str:
    norm_types = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)
    counts = Counter(type(m).__name__ for m in module.modules() if isinstance(m, norm_types))
    return ", ".join(f"{name} x {n}" for name, n in sorted(counts.items()))


def _last_layer(head: nn.Module) -> tuple[nn.Module, str, nn.Module]:
    found = None
    for name, module in head.named_modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            found = name
    if found is None:
        raise UserError("this head has no Linear layer to replace")
    parent_name, _, attr = found.rpartition(".")
    parent = head.get_submodule(parent_name) if parent_name else head
    return parent, attr, head.get_submodule(found)


def _head_in_features(head: nn.Module) -> int:
    for module in head.modules():
        if isinstance(module, nn.Linear):
            return module.in_features
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise UserError("this head has no Linear layer")


def _head_out_features(head: nn.Module) -> int:
    last = _last_layer(head)[2]
    return last.out_features if isinstance(last, nn.Linear) else last.out_channels


def _group_norm_for(bn: nn.Module) -> nn.GroupNorm:
    channels = bn.num_features
    # at most 32 groups, at least 2 channels per group where the channel count allows
    groups = next(g for g in range(min(MAX_GROUPS, max(1, channels // 2)), 0, -1)
                  if channels % g == 0)
    return nn.GroupNorm(groups, channels, eps=bn.eps, affine=True)


def _replace_modules(root: nn.Module, match: Callable[[nn.Module], bool],
                     make: Callable[[nn.Module], nn.Module]) -> None:
    for name, module in list(root.named_modules()):
        if name and match(module):
            parent_name, _, attr = name.rpartition(".")
            parent = root.get_submodule(parent_name) if parent_name else root
            setattr(parent, attr, make(module))


def build_model(
    backbone: str,
    weights: str = "DEFAULT",
    num_classes: int | None = None,
    norm_policy: str = "train_bn",
    input_size: int = 0,
) -> TransferModel:
    """Build a backbone with its weights as a `TransferModel`.

    `weights`: "DEFAULT", a torchvision weights name, "random", or a .pth file path.
    `num_classes=None` keeps the ImageNet head. `input_size` (0: the weights' own) is checked
    against what the family accepts; for ViT it sets the position embedding (random init only).
    """
    family = backbone_info(backbone).family  # UserError on an unknown name, before any work
    resolved = wt.resolve_weights(backbone, weights)
    check_input_size(backbone, input_size, pretrained=resolved is not None)
    wt.ensure_weights(resolved)
    kwargs = _build_kwargs(backbone, family, resolved, input_size)
    # never torchvision's own loader: it unpickles the hub cache with full pickle (any code)
    model = get_model(backbone, weights=None, **kwargs)
    if resolved is not None:
        cached = _legacy_keys(family, wt.read_cached_weights(resolved))
        wt.load_state_dict_checked(model, cached, wt.cache_path(resolved).name)
    state = wt.read_state_dict(weights) if wt.is_weights_file(weights) else None
    # A torchvision-format file fills the model before it is cut into stages; one saved from a
    # TransferModel (keys "stages.*", "head.*") after, once the head has its class count.
    own_format = state is not None and any(k.startswith("stages.") for k in state)
    if state is not None and not own_format:
        wt.load_state_dict_checked(model, state, Path(weights).name)
    transfer = TransferModel(model, backbone, pretrained=resolved is not None or state is not None)
    if num_classes is not None:
        transfer.reset_classifier(num_classes)
    if own_format:
        wt.load_state_dict_checked(transfer, state, Path(weights).name)
    transfer.apply_norm_policy(norm_policy)
    return transfer


def input_size_fix(backbone: str, input_size: int, pretrained: bool) -> tuple[int, str] | None:
    """(the nearest size the backbone takes, why) when it cannot take `input_size`; None when
    it can (0, the weights' own size, always can). The run plan turns this into a fix.

    Convolutional models take any size that survives their downsampling (32 px and up,
    inception 75); MaxViT's 7x7 attention windows need a multiple of 224; pretrained ViT's
    position embedding fixes 224.
    """
    if not input_size:
        return None
    family = backbone_info(backbone).family
    minimum = max(MIN_INPUT_SIZE, 75 if family == "inception" else 0)
    if input_size < minimum:
        return minimum, f"{backbone} needs an input size of at least {minimum} px"
    if family == "maxvit" and input_size % 224:
        return (224 * max(1, round(input_size / 224)),
                f"{backbone}'s attention windows need a multiple of 224 px")
    if family == "vit" and pretrained and input_size != 224:
        return 0, (f"pretrained {backbone} was trained at 224 px and its position embedding "
                   "fixes that size")
    return None


def check_input_size(backbone: str, input_size: int, pretrained: bool = False) -> None:
    """UserError when a backbone cannot take this input size (see `input_size_fix`)."""
    fix = input_size_fix(backbone, input_size, pretrained)
    if fix is not None:
        raise UserError(f"{fix[1]}, not {input_size}")


def _build_kwargs(backbone: str, family: str, weights: Any, input_size: int) -> dict:
    """Constructor arguments; for pretrained weights, the ones torchvision's builders would set
    from the weights (the model is built weightless, then filled through the safe loader)."""
    kwargs: dict = {}
    if family in ("googlenet", "inception"):
        kwargs["aux_logits"] = False
        # explicit, or torchvision warns that its default will change
        kwargs["init_weights"] = weights is None
        if weights is not None:
            kwargs["transform_input"] = True  # the ImageNet weights were trained with it
    if weights is not None:
        kwargs["num_classes"] = len(weights.meta["categories"])
        if family == "vgg":
            kwargs["init_weights"] = False
        if family == "vit":
            kwargs["image_size"] = weights.meta["min_size"][0]
        if family == "maxvit":
            kwargs["input_size"] = weights.meta["min_size"]
    if family == "vit" and input_size:
        kwargs["image_size"] = input_size  # checked by `check_input_size`
    return kwargs


# DenseNet's published files predate a rename ("norm.1" became "norm1"): torchvision's builder
# maps the keys before loading, and so must we.
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _legacy_keys(family: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map a published weights file's old key names onto the current model's."""
    if family != "densenet":
        return state
    renamed = {}
    for key, value in state.items():
        match = _DENSENET_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def build_skeleton(backbone: str) -> TransferModel:
    """Build the backbone's `TransferModel` without weights, to read its stages and parameters.

    Parameters are created on the meta device when the architecture allows it: nothing is
    allocated or initialised, so even a ViT-H is ready at once; otherwise it is built normally.
    """
    try:
        with torch.device("meta"):
            model = build_model(backbone, weights="random", num_classes=None)
    except Exception:  # some constructors compute on tensors (e.g. drop-path rates)
        model = build_model(backbone, weights="random", num_classes=None)
    return model
