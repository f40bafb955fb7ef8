"""The linear probe finds the depth whose features separate the classes."""

import numpy as np
import pytest
import torch
from torch import nn

from workbench.advice.probe import (
    StageFeatureCollector,
    iter_probe,
    pool_features,
    probe_stages,
    run_probe,
)


def _features(seed=0, n_per_class=12, classes=3):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    noise = rng.normal(size=(len(labels), 8))
    separable = rng.normal(size=(len(labels), 8)) * 0.1
    separable[np.arange(len(labels)), labels] += 3.0
    return {(0, "gap"): noise, (3, "gap"): separable}, labels


def test_probe_finds_the_separable_stage():
    features, labels = _features()
    result = run_probe(features, labels, folds=3)
    table = {(r.stage, r.pooling): r.accuracy for r in result.rows}
    assert table[(3, "gap")] == pytest.approx(1.0)
    assert table[(0, "gap")] < 0.7
    assert result.best.stage == 3 and result.folds == 3


def test_a_one_image_class_is_never_held_out_and_is_reported():
    features, labels = _features()
    labels = labels.copy()
    labels[0] = 7  # a class with one image
    result = run_probe(features, labels, folds=3)
    assert result.dropped_classes == [7]
    assert result.num_images == len(labels) - 1


def test_too_few_images_gives_an_empty_table_with_a_reason():
    features = {(0, "gap"): np.zeros((3, 2))}
    result = run_probe(features, np.array([0, 1, 2]))
    assert result.rows == [] and result.best is None and "two classes" in result.message


def test_the_probe_table_uses_the_trials_recipe_exactly():
    """One probe recipe: the table's number is the trials' held-out balanced accuracy, with C
    chosen in inner folds, on the same folds."""
    from workbench.advice.holdout import make_folds, probe_predictions, score

    features, labels = _features(seed=4)
    features = {(0, "gap"): features[(0, "gap")] + 0.8 * features[(3, "gap")]}
    row = run_probe(features, labels, folds=3).rows[0]
    folds = make_folds(labels, max_folds=3)
    pred, _ = probe_predictions(features[(0, "gap")], labels, folds)
    assert (row.accuracy, row.std) == score(labels, pred)
    assert 0.4 < row.accuracy < 1.0  # a case where the recipe's details matter


def test_the_probe_scores_balanced_accuracy():
    """A probe that only ever says the majority class scores 1/classes, not the majority's
    share: noise features, 90 images of one class and 10 of the other."""
    rng = np.random.default_rng(0)
    labels = np.array([0] * 90 + [1] * 10)
    row = run_probe({(0, "gap"): rng.normal(size=(100, 4))}, labels, folds=5).rows[0]
    assert row.accuracy <= 0.6  # plain accuracy of "always 0" would be 0.9


def test_progress_then_result():
    features, labels = _features()
    events = list(iter_probe(features, labels))
    assert [e.done for e in events[:-1]] == [1, 2]


def test_probe_stages_include_the_last_and_earlier_ones():
    assert probe_stages(8) == [2, 4, 5, 7]
    assert probe_stages(1) == [0]


def test_pooling_gap_and_grid():
    fmap = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    pooled = pool_features(fmap)
    assert pooled["gap"].shape == (2, 3) and pooled["grid2x2"].shape == (2, 12)
    torch.testing.assert_close(pooled["grid2x2"].view(2, 3, 4).mean(dim=2), pooled["gap"])


def test_stage_collector_pools_outputs_of_chosen_stages():
    model = nn.Module()
    model.stages = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 5, 3, stride=2)])
    with StageFeatureCollector(model, [0, 1]) as collector:
        for _ in range(2):
            x = torch.randn(3, 3, 8, 8)
            model.stages[1](model.stages[0](x))
    features = collector.features()
    assert features[(0, "gap")].shape == (6, 4) and features[(1, "grid2x2")].shape == (6, 20)


def test_token_and_nhwc_stage_outputs_are_pooled_as_maps():
    from workbench.advice.probe import as_map

    tokens = torch.randn(2, 1 + 16, 8)  # class token + a 4x4 grid of 8-dim tokens
    fmap = as_map(tokens, "tokens")
    assert fmap.shape == (2, 8, 4, 4)
    torch.testing.assert_close(pool_features(fmap)["gap"], tokens[:, 1:].mean(dim=1))
    nhwc = torch.randn(2, 4, 4, 8)
    assert as_map(nhwc, "nhwc").shape == (2, 8, 4, 4)
