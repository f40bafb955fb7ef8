"""Similarity to ImageNet from BatchNorm statistics, without labels.

Every BatchNorm layer stores the running mean and variance of its input over ImageNet. Hooks
capture the same per-channel moments of the input on the user's images (exactly, merged across
batches); each channel is treated as a Gaussian and the divergence is the per-channel
KL(data || imagenet), averaged per layer, then per stage, and over all layers for the similarity
axis. Zero means "ImageNet-like statistics at every depth"; where it jumps hints where features
stop transferring.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from workbench.advice.events import AdviceProgress
from workbench.models.transfer import bn_layers

KL_DIRECTION = "KL(data || imagenet)"


def gaussian_kl(
    mean_p: torch.Tensor, var_p: torch.Tensor, mean_q: torch.Tensor, var_q: torch.Tensor
) -> torch.Tensor:
    """Element-wise KL(N(mean_p, var_p) || N(mean_q, var_q)) in nats."""
    return 0.5 * (torch.log(var_q / var_p) + (var_p + (mean_p - mean_q) ** 2) / var_q - 1.0)


class ChannelMoments:
    """Per-channel count, sum and sum of squares of a layer's input, accumulated over batches.

    Per image and channel, the sum and the sum of squares come from two contiguous reductions
    (a sum and a batched dot product: ~10% of the BN layer's own cost, where `torch.var_mean`
    over (N, H, W) costs four times the layer); they are added up in float64, so the moments
    are those of one pass over all images, whatever the batching.
    """

    def __init__(self) -> None:
        self.count = 0
        self.sums: torch.Tensor | None = None  # [2, C] float64: sum, sum of squares

    def update(self, x: torch.Tensor) -> None:
        """Add a batch `[N, C, ...]` (channel on dim 1)."""
        n, c = x.shape[:2]
        x = x.detach()
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
                memory_format=torch.channels_last):
            # channels last (`fusion.inference_layout`): [N, H*W, C] is a view, reduce over
            # H*W (3 times the contiguous path's cost, which here would copy the whole input)
            rows = x.permute(0, 2, 3, 1).reshape(n, -1, c)
            parts = torch.stack((rows.sum(dim=1), torch.linalg.vecdot(rows, rows, dim=1)))
        else:
            flat = x.reshape(n * c, 1, -1)
            # few kernels per layer: this runs in every BN layer's forward (see the benchmark)
            parts = torch.stack((flat.sum(dim=2),
                                 torch.bmm(flat, flat.transpose(1, 2)).view(-1, 1))).view(2, n, c)
        batch = parts.sum(dim=1, dtype=torch.float64)
        self.sums = batch if self.sums is None else self.sums.add_(batch)
        self.count += x.numel() // c

    @property
    def mean(self) -> torch.Tensor | None:
        """Per-channel mean (None before the first batch)."""
        return None if self.sums is None else self.sums[0] / self.count

    @property
    def variance(self) -> torch.Tensor:
        """The population variance (what BatchNorm normalizes with)."""
        assert self.sums is not None, "no batch seen"
        mean = self.sums[0] / self.count
        return (self.sums[1] / self.count - mean**2).clamp_min(0.0)


@dataclass(frozen=True)
class BNDivergence:
    """The BN-statistics divergence of a sample from ImageNet.

    `layers`: (module name, stage index, mean per-channel KL); `per_stage`: the layer average
    for each stage (None where a stage has no BN layer); `mean`: over all layers.
    """

    layers: list[tuple[str, int, float]] = field(default_factory=list)
    per_stage: list[float | None] = field(default_factory=list)
    mean: float | None = None
    available: bool = True
    message: str = ""
    direction: str = KL_DIRECTION

    def to_dict(self) -> dict[str, object]:
        """JSON form: the profile by stage, the mean, and the per-layer values."""
        return {
            "available": self.available, "message": self.message, "direction": self.direction,
            "mean": self.mean, "per_stage": self.per_stage,
            "layers": [{"name": n, "stage": s, "kl": k} for n, s, k in self.layers],
        }


def count_stages(model: nn.Module) -> int:
    """Number of stages (1 for a model without a `stages` list)."""
    return len(getattr(model, "stages", [])) or 1


class BNStatsCollector:
    """Forward pre-hooks on every BN layer that accumulate the moments of its input.

    Use as a context manager around forward passes (any number of batches); `result()` then
    gives the divergence. Used alone by `iter_bn_divergence` and inside the advisor's single
    shared feature pass.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = bn_layers(model)
        self.num_stages = count_stages(model)
        self.moments = [ChannelMoments() for _ in self.layers]
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> BNStatsCollector:
        for (_, _, module), moments in zip(self.layers, self.moments, strict=True):
            self._handles.append(module.register_forward_pre_hook(_hook(moments)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def result(self) -> BNDivergence:
        """The divergence over everything seen so far (unavailable when the model has no BN)."""
        if not self.layers:
            return unavailable()
        rows = []
        for (name, stage, module), moments in zip(self.layers, self.moments, strict=True):
            if moments.mean is None:  # a layer the forward pass never reached
                continue
            rows.append((name, stage, layer_divergence(moments, module)))
        return summarize(rows, self.num_stages)


def _hook(moments: ChannelMoments):
    def capture(module: nn.Module, args: tuple) -> None:
        moments.update(args[0])

    return capture


def layer_divergence(moments: ChannelMoments, module: nn.Module) -> float:
    """Mean over channels of KL(data || imagenet) for one BN layer.

    The layer's own epsilon is added to both variances, as BatchNorm does when normalizing, so a
    channel that is dead on ImageNet does not divide by zero.
    """
    eps = float(getattr(module, "eps", 1e-5))
    ref_mean = module.running_mean.detach().double().to(moments.mean.device)
    ref_var = module.running_var.detach().double().to(moments.mean.device) + eps
    kl = gaussian_kl(moments.mean, moments.variance + eps, ref_mean, ref_var)
    return float(kl.mean())


def summarize(rows: list[tuple[str, int, float]], num_stages: int) -> BNDivergence:
    """Per-stage averages and the overall mean from per-layer divergences."""
    per_stage: list[float | None] = []
    for stage in range(num_stages):
        values = [kl for _, s, kl in rows if s == stage]
        per_stage.append(sum(values) / len(values) if values else None)
    mean = sum(kl for _, _, kl in rows) / len(rows) if rows else None
    if mean is not None and not math.isfinite(mean):
        mean = None
    return BNDivergence(layers=rows, per_stage=per_stage, mean=mean)


def unavailable(norm_type: str = "LayerNorm") -> BNDivergence:
    """The result for a backbone without BatchNorm statistics."""
    return BNDivergence(
        available=False,
        message=f"BN divergence is not available for {norm_type} backbones (no running "
        "statistics); the matrix uses your own choice of cell",
    )


def first_tensor(batch: object) -> torch.Tensor:
    """The images of a batch: a tensor, or the first item of a (images, labels, ...) tuple."""
    return batch if isinstance(batch, torch.Tensor) else batch[0]


def iter_bn_divergence(
    model: nn.Module, loader: Iterable, stop: threading.Event | None = None
) -> Iterator[AdviceProgress | BNDivergence]:
    """One eval-mode, no-grad pass over `loader`; yields progress per batch, then the result.

    Stops early (with the result so far) when `stop` is set.
    """
    collector = BNStatsCollector(model)
    if not collector.layers:
        yield unavailable(getattr(model, "norm_type", "LayerNorm"))
        return
    device = next(model.parameters()).device
    total = len(loader) if hasattr(loader, "__len__") else 0
    was_training = model.training
    model.eval()
    try:
        with collector, torch.no_grad():
            for done, batch in enumerate(loader, start=1):
                if stop is not None and stop.is_set():
                    break
                model(first_tensor(batch).to(device))
                yield AdviceProgress("bn", done, total)
    finally:
        model.train(was_training)
    yield collector.result()
