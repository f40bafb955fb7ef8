"""BN-statistics divergence, NCE and LEEP against hand computations."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from workbench.advice.similarity import (
    ChannelMoments,
    gaussian_kl,
    iter_bn_divergence,
)
from workbench.advice.transferability import leep, nce, softmax


def test_gaussian_kl_matches_hand_computation():
    # KL(N(1, 4) || N(0, 1)) = 0.5 * (ln(1/4) + (4 + 1^2) / 1 - 1)
    expected = 0.5 * (math.log(0.25) + 5.0 - 1.0)
    got = gaussian_kl(*(torch.tensor([v], dtype=torch.float64) for v in (1.0, 4.0, 0.0, 1.0)))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    same = gaussian_kl(*(torch.tensor([v], dtype=torch.float64) for v in (0.3, 2.0, 0.3, 2.0)))
    assert same.item() == pytest.approx(0.0, abs=1e-12)


def test_moments_merged_across_batches_equal_one_pass():
    torch.manual_seed(0)
    data = torch.randn(37, 3, 5, 4) * torch.tensor([1.0, 3.0, 0.1]).view(1, 3, 1, 1) + 2.0
    moments = ChannelMoments()
    for part in data.split([5, 20, 12]):
        moments.update(part)
    flat = data.permute(1, 0, 2, 3).reshape(3, -1).double()
    # float32 partial sums, float64 totals: equal to a one-pass computation to float32 rounding
    torch.testing.assert_close(moments.mean, flat.mean(dim=1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(moments.variance, flat.var(dim=1, correction=0), rtol=1e-5,
                               atol=1e-6)


def test_moments_of_a_channels_last_batch_equal_the_default_layouts():
    torch.manual_seed(0)
    data = torch.randn(6, 4, 7, 5) * torch.tensor([1.0, 3.0, 0.1, 2.0]).view(1, 4, 1, 1) - 1.0
    plain, last = ChannelMoments(), ChannelMoments()
    for part in data.split([4, 2]):
        plain.update(part)
        last.update(part.contiguous(memory_format=torch.channels_last))
    assert last.count == plain.count == 6 * 7 * 5
    torch.testing.assert_close(last.mean, plain.mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(last.variance, plain.variance, rtol=1e-5, atol=1e-6)


def test_bn_divergence_of_a_layer_is_the_hand_kl_averaged_over_channels():
    bn = nn.BatchNorm2d(2, eps=1e-5)
    bn.running_mean.copy_(torch.tensor([0.0, 1.0]))
    bn.running_var.copy_(torch.tensor([1.0, 4.0]))
    model = nn.Sequential(bn)
    torch.manual_seed(1)
    images = torch.randn(10, 2, 3, 3) * 2 + 0.5
    loader = [images[:4], (images[4:], torch.zeros(6))]  # plain tensors and (images, labels)
    events = list(iter_bn_divergence(model, loader))
    result = events[-1]
    x = images.permute(1, 0, 2, 3).reshape(2, -1).double().numpy()
    mu, var = x.mean(axis=1), x.var(axis=1) + 1e-5
    ref_mu, ref_var = np.array([0.0, 1.0]), np.array([1.0, 4.0]) + 1e-5
    hand = 0.5 * (np.log(ref_var / var) + (var + (mu - ref_mu) ** 2) / ref_var - 1)
    assert result.available
    assert result.mean == pytest.approx(hand.mean(), rel=1e-6)  # float32 batch moments
    assert result.per_stage == [pytest.approx(hand.mean(), rel=1e-6)]
    assert [e.done for e in events[:-1]] == [1, 2]
    assert model.training  # the mode is restored


def test_imagenet_like_statistics_give_near_zero_divergence():
    bn = nn.BatchNorm2d(4)
    bn.running_mean.copy_(torch.tensor([0.0, 1.0, -2.0, 0.5]))
    bn.running_var.copy_(torch.tensor([1.0, 0.25, 9.0, 2.0]))
    torch.manual_seed(2)
    noise = torch.randn(400, 4, 4, 4)
    like = noise * bn.running_var.sqrt().view(1, 4, 1, 1) + bn.running_mean.view(1, 4, 1, 1)
    unlike = noise * 5 + 3
    near = list(iter_bn_divergence(nn.Sequential(bn), [like]))[-1].mean
    far = list(iter_bn_divergence(nn.Sequential(bn), [unlike]))[-1].mean
    assert near < 0.01 < 1.0 < far


def test_model_without_batchnorm_says_not_available():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.LayerNorm([4, 2, 2]))
    (result,) = list(iter_bn_divergence(model, [torch.zeros(1, 3, 2, 2)]))
    assert not result.available and result.mean is None
    assert "not available" in result.message


def test_nce_hand_example():
    # z = [0, 0, 1, 1], y = [0, 1, 1, 1]: P(y, z) = {(0,0): .25, (1,0): .25, (1,1): .5}
    # NCE = .25 ln .5 + .25 ln .5 + .5 ln 1 = 0.5 ln 0.5
    probs = np.eye(3)[[0, 0, 1, 1]]
    assert nce(probs, np.array([0, 1, 1, 1])) == pytest.approx(0.5 * math.log(0.5))


def test_nce_and_leep_are_zero_when_source_labels_determine_target_labels():
    z = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])  # a many-to-one map of source classes
    probs = np.eye(5)[z]
    assert nce(probs, y) == pytest.approx(0.0, abs=1e-12)
    assert leep(probs, y) == pytest.approx(0.0, abs=1e-9)


def test_uninformative_source_gives_minus_label_entropy():
    y = np.array([0, 0, 0, 1])
    uniform = np.full((4, 10), 0.1)
    minus_entropy = 0.75 * math.log(0.75) + 0.25 * math.log(0.25)
    assert nce(uniform, y) == pytest.approx(minus_entropy)
    assert leep(uniform, y) == pytest.approx(minus_entropy)


def test_softmax_rows_sum_to_one_for_large_logits():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, -1000.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [0.5, 0.5])
