"""The rule-of-thumb matrix: cells, strategies, and the slider's inverse."""

import pytest

from workbench.advice.matrix import (
    CELLS,
    apply_strategy,
    cell_for_config,
    cell_for_slider,
    classify,
    strategy_for,
)
from workbench.advice.probe import ProbeResult, ProbeRow
from workbench.config import AdviceConfig, ModelConfig, RunConfig
from workbench.errors import UserError


@pytest.mark.parametrize(
    "median, divergence, cell",
    [
        (20, 0.1, "similar-small"),
        (5000, 0.1, "similar-large"),
        (20, 50.0, "dissimilar-small"),
        (5000, 50.0, "dissimilar-large"),
    ],
)
def test_classify_places_each_corner(median, divergence, cell):
    assert classify(median, divergence, AdviceConfig(similarity_threshold=1.0)) == cell


def test_thresholds_are_the_users_to_change():
    config = AdviceConfig(small_images_per_class=10, similarity_threshold=100.0)
    assert classify(20, 50.0, config) == "similar-large"
    assert classify(9, 101.0, config) == "dissimilar-small"


def test_strategies_set_what_each_cell_promises():
    s = strategy_for("similar-small", 7)
    assert (s.freeze_stages, s.head, s.norm_policy) == (7, "linear", "frozen_bn")
    s = strategy_for("similar-large", 7)
    assert (s.freeze_stages, s.head) == (0, "linear")
    assert s.lr_decay == pytest.approx(1 / 2.6, rel=1e-3)
    s = strategy_for("dissimilar-small", 7)
    assert (s.freeze_stages, s.head, s.feature_stage) == (7, "logreg", 4)  # two thirds up
    assert strategy_for("dissimilar-small", 7, head="svm").head == "svm"
    s = strategy_for("dissimilar-large", 7)
    assert (s.freeze_stages, s.norm_policy, s.lr_decay) == (0, "train_bn", 1.0)
    for cell in CELLS:
        assert len(strategy_for(cell, 7).explanation) > 80  # a real explanation, in words


def test_dissimilar_small_uses_the_probes_best_stage():
    probe = ProbeResult(rows=[ProbeRow(2, "gap", 0.9, 0.0, 32), ProbeRow(6, "gap", 0.6, 0.0, 64)])
    s = strategy_for("dissimilar-small", 7, probe=probe)
    assert s.feature_stage == 2 and "probe" in s.explanation


def test_dissimilar_small_says_so_when_the_probe_picks_the_last_stage():
    probe = ProbeResult(rows=[ProbeRow(2, "gap", 0.6, 0.0, 32), ProbeRow(6, "gap", 0.9, 0.0, 64)])
    s = strategy_for("dissimilar-small", 7, probe=probe)
    assert s.feature_stage == 6 and "last stage" in s.explanation
    assert "more generic" not in s.explanation  # not called "earlier" when it is the top


def test_dissimilar_small_follows_the_pooling_training_uses():
    # the 2x2 grid scores best at stage 6, but training pools with a global average
    probe = ProbeResult(rows=[ProbeRow(3, "gap", 0.8, 0.0, 32), ProbeRow(6, "gap", 0.7, 0.0, 64),
                              ProbeRow(6, "grid2x2", 0.95, 0.0, 256)])
    assert strategy_for("dissimilar-small", 7, probe=probe).feature_stage == 3


def test_apply_strategy_gives_a_valid_model_config():
    for cell in CELLS:
        strategy = strategy_for(cell, 5)
        model = apply_strategy(strategy, ModelConfig(backbone="resnet18"))
        assert model.backbone == "resnet18"
        assert (model.freeze_stages, model.head, model.norm_policy, model.lr_decay) == (
            strategy.freeze_stages, strategy.head, strategy.norm_policy, strategy.lr_decay)
        RunConfig(model=model).validate()


def test_slider_positions_map_back_to_their_cells():
    for cell in CELLS:
        model = apply_strategy(strategy_for(cell, 5), ModelConfig())
        assert cell_for_config(model, 5) == cell
    assert cell_for_slider(2, "linear", 5) is None  # between cells
    assert cell_for_slider(5, "svm", 5) == "dissimilar-small"


def test_unknown_cell_is_a_user_error():
    with pytest.raises(UserError, match="unknown matrix cell"):
        strategy_for("similar-medium", 5)
