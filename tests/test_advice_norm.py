"""The normalization hint: small batches ask for frozen BN, a far dataset warns against it."""

from workbench.advice.norm import norm_hint


def test_small_batch_asks_to_freeze_bn_and_approves_when_frozen():
    assert norm_hint("batchnorm", "train_bn", 8, True).warning
    hint = norm_hint("batchnorm", "frozen_bn", 8, True)
    assert not hint.warning and "as it should be" in hint.text


def test_enough_batch_trains_bn():
    hint = norm_hint("batchnorm", "train_bn", 32, True, divergence=0.5, threshold=0.12)
    assert not hint.warning and "enough to train BN" in hint.text


def test_frozen_bn_on_a_far_dataset_while_fine_tuning_warns():
    hint = norm_hint("batchnorm", "frozen_bn", 32, True, divergence=0.54, threshold=0.12)
    assert hint.warning and "0.54" in hint.text and "Train BN" in hint.text
    small = norm_hint("batchnorm", "frozen_bn", 8, True, divergence=0.54, threshold=0.12)
    assert "16 or more" in small.text


def test_frozen_bn_is_fine_when_the_backbone_is_frozen_or_the_data_is_close():
    assert not norm_hint("batchnorm", "frozen_bn", 32, False, 0.54, 0.12).warning
    assert not norm_hint("batchnorm", "frozen_bn", 8, True, 0.05, 0.12).warning


def test_layernorm_backbones_have_nothing_to_freeze():
    assert "LayerNorm backbone" in norm_hint("layernorm", "train_bn", 4, True).text
