"""BatchNorm folded into convolutions for no-grad passes: the same outputs, the original kept."""

import pytest
import torch
from torch import nn

from workbench.models.fusion import fused_for_inference
from workbench.models.transfer import build_model


def _with_real_statistics(model: nn.Module) -> nn.Module:
    """Random init leaves BN as the identity (mean 0, variance 1): give it statistics to fold."""
    gen = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=gen) * 2 - 1)
            module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
    return model


def _bns(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_every_pair_folds_and_every_stage_gives_the_same_features(name):
    model = _with_real_statistics(build_model(name, weights="random")).train()
    before = _bns(model)
    fused = fused_for_inference(model)
    assert _bns(fused) == 0 and _bns(model) == before > 0  # the original keeps its BatchNorms
    assert model.training and not fused.training
    # the copy in the channels-last layout (a CPU's fast path), the original untouched
    conv = next(m for m in fused.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(p.is_contiguous() for p in model.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        stages = list(range(model.num_stages))
        want = model.eval().stage_outputs(x, stages)
        got = fused.stage_outputs(x, stages)
        for s in stages:
            torch.testing.assert_close(got[s], want[s], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fused.forward_features(x), model.forward_features(x),
                                   rtol=1e-4, atol=1e-4)


class _BnFirst(nn.Module):
    """A BatchNorm registered after a conv but applied before it: not a foldable pair."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.conv(self.bn(x))


def test_pairs_wired_in_a_custom_forward_are_left_alone():
    model = _with_real_statistics(nn.Sequential(_BnFirst(), nn.Conv2d(3, 4, 3),
                                                nn.BatchNorm2d(4, track_running_stats=False)))
    fused = fused_for_inference(model)
    assert isinstance(fused[0].bn, nn.BatchNorm2d)  # unknown module: its order proves nothing
    assert isinstance(fused[2], nn.BatchNorm2d)  # no running statistics: batch statistics
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model.eval()(x))
