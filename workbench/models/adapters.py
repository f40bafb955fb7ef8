"""Per-family adapters: cut a torchvision classifier into ordered stages, a pooling step, a head.

Each adapter reuses the model's own modules (weights and all) and reproduces its forward pass as
`head(pool(stages[-1](...stages[0](x))))`. The pooling step has no parameters; it turns the last
stage's output into the pooled features `[N, feature_dim]`. Everything after it (dropout, a
pre-logits MLP or norm, the final Linear) is the head. Where a model's blocks form one long
`nn.Sequential` (MobileNet, EfficientNet, MNASNet, VGG, ...), stages are its blocks grouped by the
resolution they produce, found with one tiny forward pass, so every variant is cut alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from workbench.errors import UserError
from workbench.models.transforms import IMAGENET_MEAN, IMAGENET_STD

PROBE_SIZE = 64  # input side for the resolution probe; every grouped family accepts it


@dataclass
class Layout:
    """How a model splits: stages (stem first), parameter-free pooling, head."""

    stage_names: list[str]
    stages: list[nn.Module]
    pool: nn.Module
    head: nn.Module
    layout: str = "nchw"  # stage outputs: "nchw", "nhwc" (Swin) or "tokens" (ViT, class first)


def as_map(x: Tensor, layout: str = "nchw") -> Tensor:
    """A stage output as `[N, C, H, W]`: Swin's NHWC permuted, ViT's tokens (class token first,
    left out: it is not part of the spatial map) laid back on their square grid."""
    if layout == "nhwc":
        return x.permute(0, 3, 1, 2)
    if layout == "tokens":
        tokens = x[:, 1:]
        side = int(round(tokens.shape[1] ** 0.5))
        return tokens.transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)
    return x


class InputTransform(nn.Module):
    """GoogLeNet / Inception v3 re-normalization of ImageNet-normalized input (`transform_input`).

    Their pretrained weights were trained on inputs scaled to [-1, 1]; torchvision converts the
    usual ImageNet normalization to that inside the model, and so do we.
    """

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled

    def forward(self, x: Tensor) -> Tensor:
        """Map ImageNet mean/std normalization to (x - 0.5) / 0.5 when enabled."""
        if not self.enabled:
            return x
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5


class VitEmbedding(nn.Module):
    """ViT's patch embedding, class token and position embedding: image -> tokens."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.conv_proj = vit.conv_proj
        self.class_token = vit.class_token
        self.pos_embedding = vit.encoder.pos_embedding
        self.dropout = vit.encoder.dropout
        self.image_size = vit.image_size

    def forward(self, x: Tensor) -> Tensor:
        """`[N, 3, S, S]` -> `[N, 1 + h*w, C]` with the class token first."""
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise UserError(f"this ViT needs {self.image_size}x{self.image_size} input, "
                            f"got {x.shape[-2]}x{x.shape[-1]}")
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.dropout(x + self.pos_embedding)


class ClassToken(nn.Module):
    """Pooling for ViT: the class token's output."""

    def forward(self, x: Tensor) -> Tensor:
        """`[N, T, C]` -> `[N, C]`."""
        return x[:, 0]


def avg_pool() -> nn.Module:
    """Global average pooling to `[N, C]`."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def group_by_resolution(blocks: nn.Sequential) -> list[list[nn.Module]]:
    """Group a block sequence into stages, a new stage wherever the resolution drops.

    A block with parameters that downsamples (a strided conv) opens a stage; a parameter-free one
    (a pooling layer, as in VGG) closes the current stage instead.
    """
    sizes = _output_sizes(blocks)
    groups: list[list[nn.Module]] = [[]]
    previous, close = PROBE_SIZE, False
    for block, size in zip(blocks, sizes, strict=True):
        has_params = any(True for _ in block.parameters())
        if groups[-1] and (close or (size < previous and has_params)):
            groups.append([])
        groups[-1].append(block)
        close = size < previous and not has_params
        previous = size
    return _merge_parameter_free(groups)


def _output_sizes(blocks: nn.Sequential) -> list[int]:
    sizes: list[int] = []
    hooks = [b.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[-1]))
             for b in blocks]
    training = blocks.training
    blocks.eval()  # no running-statistics update from the probe
    try:
        with torch.no_grad():
            blocks(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
    finally:
        blocks.train(training)
        for hook in hooks:
            hook.remove()
    return sizes


def _merge_parameter_free(groups: list[list[nn.Module]]) -> list[list[nn.Module]]:
    merged: list[list[nn.Module]] = []
    for group in groups:
        if merged and not any(True for m in group for _ in m.parameters()):
            merged[-1].extend(group)
        else:
            merged.append(group)
    return merged


def grouped(blocks: nn.Sequential) -> tuple[list[str], list[nn.Module]]:
    """Stage names ("stem", "block1", ...) and `nn.Sequential` stages for a block sequence."""
    groups = group_by_resolution(blocks)
    names = ["stem"] + [f"block{i}" for i in range(1, len(groups))]
    return names, [nn.Sequential(*g) for g in groups]


def _seq(*modules: nn.Module) -> nn.Sequential:
    return nn.Sequential(*modules)


def resnet_layout(m: nn.Module) -> Layout:
    """ResNet, ResNeXt, Wide ResNet: stem, layer1..layer4."""
    stem = _seq(m.conv1, m.bn1, m.relu, m.maxpool)
    names = ["stem", "layer1", "layer2", "layer3", "layer4"]
    stages = [stem, m.layer1, m.layer2, m.layer3, m.layer4]
    return Layout(names, stages, avg_pool(), m.fc)


def features_layout(m: nn.Module) -> Layout:
    """MobileNet v2/v3, EfficientNet v1/v2: `features` grouped by resolution, `classifier`."""
    names, stages = grouped(m.features)
    return Layout(names, stages, avg_pool(), m.classifier)


def mnasnet_layout(m: nn.Module) -> Layout:
    """MNASNet: `layers` grouped by resolution."""
    names, stages = grouped(m.layers)
    return Layout(names, stages, avg_pool(), m.classifier)


def vgg_layout(m: nn.Module) -> Layout:
    """VGG and AlexNet: conv blocks by resolution; their fixed-size pooling; the MLP head."""
    names, stages = grouped(m.features)
    return Layout(names, stages, _seq(m.avgpool, nn.Flatten(1)), m.classifier)


def squeezenet_layout(m: nn.Module) -> Layout:
    """SqueezeNet: the 1x1-conv classifier runs on the pooled features (pool and conv commute;
    only the ReLU moves after pooling, so ImageNet logits differ slightly from torchvision's)."""
    names, stages = grouped(m.features)
    channels = m.classifier[1].in_channels
    head = _seq(nn.Unflatten(1, (channels, 1, 1)), *list(m.classifier)[:3], nn.Flatten(1))
    return Layout(names, stages, avg_pool(), head)


def densenet_layout(m: nn.Module) -> Layout:
    """DenseNet: stem, dense blocks with their transitions; the final ReLU is in the pooling."""
    f = m.features
    stages = [_seq(f.conv0, f.norm0, f.relu0, f.pool0),
              _seq(f.denseblock1, f.transition1), _seq(f.denseblock2, f.transition2),
              _seq(f.denseblock3, f.transition3), _seq(f.denseblock4, f.norm5)]
    names = ["stem", "dense1", "dense2", "dense3", "dense4"]
    pool = _seq(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return Layout(names, stages, pool, m.classifier)


def convnext_layout(m: nn.Module) -> Layout:
    """ConvNeXt: (stem or downsample + stage) x 4; the head keeps its LayerNorm."""
    names, stages = grouped(m.features)
    channels = m.classifier[-1].in_features
    head = _seq(nn.Unflatten(1, (channels, 1, 1)), *m.classifier)
    return Layout(names, stages, avg_pool(), head)


def regnet_layout(m: nn.Module) -> Layout:
    """RegNet: stem, block1..block4."""
    blocks = list(m.trunk_output.named_children())
    names = ["stem"] + [name for name, _ in blocks]
    return Layout(names, [m.stem] + [b for _, b in blocks], avg_pool(), m.fc)


def shufflenet_layout(m: nn.Module) -> Layout:
    """ShuffleNet v2: stem, stage2, stage3, stage4 with conv5."""
    stages = [_seq(m.conv1, m.maxpool), m.stage2, m.stage3, _seq(m.stage4, m.conv5)]
    return Layout(["stem", "stage2", "stage3", "stage4"], stages, avg_pool(), m.fc)


def googlenet_layout(m: nn.Module) -> Layout:
    """GoogLeNet (aux heads dropped): stem, inception3, inception4, inception5."""
    stages = [
        _seq(InputTransform(m.transform_input), m.conv1, m.maxpool1, m.conv2, m.conv3,
             m.maxpool2),
        _seq(m.inception3a, m.inception3b, m.maxpool3),
        _seq(m.inception4a, m.inception4b, m.inception4c, m.inception4d, m.inception4e,
             m.maxpool4),
        _seq(m.inception5a, m.inception5b),
    ]
    names = ["stem", "inception3", "inception4", "inception5"]
    return Layout(names, stages, avg_pool(), _seq(m.dropout, m.fc))


def inception_layout(m: nn.Module) -> Layout:
    """Inception v3 (aux head dropped): stem, stem2, mixed5, mixed6, mixed7."""
    stages = [
        _seq(InputTransform(m.transform_input), m.Conv2d_1a_3x3, m.Conv2d_2a_3x3,
             m.Conv2d_2b_3x3, m.maxpool1),
        _seq(m.Conv2d_3b_1x1, m.Conv2d_4a_3x3, m.maxpool2),
        _seq(m.Mixed_5b, m.Mixed_5c, m.Mixed_5d),
        _seq(m.Mixed_6a, m.Mixed_6b, m.Mixed_6c, m.Mixed_6d, m.Mixed_6e),
        _seq(m.Mixed_7a, m.Mixed_7b, m.Mixed_7c),
    ]
    names = ["stem", "stem2", "mixed5", "mixed6", "mixed7"]
    return Layout(names, stages, avg_pool(), _seq(m.dropout, m.fc))


def vit_layout(m: nn.Module) -> Layout:
    """ViT: patch embedding, then the encoder blocks in 4 groups (the last with the final norm)."""
    layers = list(m.encoder.layers)
    bounds = [round(i * len(layers) / 4) for i in range(5)]
    groups = [list(layers[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    groups[-1].append(m.encoder.ln)
    names = ["embed"] + [f"blocks{i}" for i in range(1, 5)]
    stages = [VitEmbedding(m)] + [nn.Sequential(*g) for g in groups]
    return Layout(names, stages, ClassToken(), m.heads, layout="tokens")


def swin_layout(m: nn.Module) -> Layout:
    """Swin v1/v2: (patch embedding or merging + stage) x 4, the final norm with the last."""
    f = m.features
    stages = [_seq(f[0], f[1]), _seq(f[2], f[3]), _seq(f[4], f[5]), _seq(f[6], f[7], m.norm)]
    pool = _seq(m.permute, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return Layout(["stage1", "stage2", "stage3", "stage4"], stages, pool, m.head, "nhwc")


def maxvit_layout(m: nn.Module) -> Layout:
    """MaxViT: stem, block1..block4; the head keeps its norm and pre-logits layer."""
    names = ["stem"] + [f"block{i}" for i in range(1, len(m.blocks) + 1)]
    head = _seq(*list(m.classifier)[2:])
    return Layout(names, [m.stem, *m.blocks], avg_pool(), head)


ADAPTERS: dict[str, Callable[[nn.Module], Layout]] = {
    "resnet": resnet_layout,
    "resnext": resnet_layout,
    "wide_resnet": resnet_layout,
    "mobilenet_v2": features_layout,
    "mobilenet_v3": features_layout,
    "efficientnet": features_layout,
    "efficientnet_v2": features_layout,
    "mnasnet": mnasnet_layout,
    "vgg": vgg_layout,
    "alexnet": vgg_layout,
    "squeezenet": squeezenet_layout,
    "densenet": densenet_layout,
    "convnext": convnext_layout,
    "regnet": regnet_layout,
    "shufflenet": shufflenet_layout,
    "googlenet": googlenet_layout,
    "inception": inception_layout,
    "vit": vit_layout,
    "swin": swin_layout,
    "swin_v2": swin_layout,
    "maxvit": maxvit_layout,
}


def layout_for(family: str, model: nn.Module) -> Layout:
    """The stage layout of a torchvision model of the given family."""
    try:
        adapter = ADAPTERS[family]
    except KeyError:
        raise UserError(f"no stage layout for the {family} family") from None
    return adapter(model)
