"""The trials' parts in isolation: the fine-tuning trial builds its optimizer and criterion with
the engine's builders, the feature cache's key, and the pick rule with exact numbers."""

import numpy as np
import pytest
import torch

from tests.test_advice_trials import _config, _open, _write_set
from workbench.advice.trials import Candidate, Trial, choose
from workbench.advice.trials.finetune import candidate_plan, optimisation
from workbench.advice.trials.run import trial_plan
from workbench.train.losses import LogitAdjustedLoss


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    root = _write_set(tmp_path_factory.mktemp("units") / "set", [6, 6, 6])
    return _open(root), _config(root)


def test_a_trial_trains_with_the_engines_optimizer_and_criterion(stripes):
    index, config = stripes
    config.train.optimizer, config.train.weight_decay = "adamw", 0.05
    config.train.loss, config.train.label_smoothing = "logit_adjusted", 0.1
    config.data.loss_weighting = "inverse"
    cand = Candidate("fine-tune all, one LR", "finetune", 0, 1.0, lr_scale=2.0)
    plan = candidate_plan(trial_plan(index, config), index, cand)
    model = plan.build_model()
    opt, _, criterion = optimisation(plan, model, np.array([0, 0, 0, 1, 2]), 30)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[-1]["initial_lr"] == pytest.approx(2.0 * config.train.lr)
    assert opt.param_groups[-1]["weight_decay"] == 0.05
    assert isinstance(criterion, LogitAdjustedLoss) and criterion.label_smoothing == 0.1
    # inverse weighting of counts 3, 1, 1, normalised to mean 1
    assert criterion.weight.tolist() == pytest.approx([3 / 7, 9 / 7, 9 / 7])


# -- the pick rule, with exact numbers (binary fractions: no rounding at the bound) -------------

def _t(name, kind, value, spread=0.0, stage=4):
    return Trial(name, kind, 5 if kind == "probe" else 0, stage, "logreg", 32, value, spread, 1.0)


def test_a_cheaper_candidate_exactly_on_the_bound_is_picked():
    ft = _t("ft", "finetune", 0.75, 0.125)  # the bound: 0.75 - 0.125 = 0.625
    assert choose([_t("probe", "probe", 0.625), ft]).name == "probe"


def test_a_cheaper_candidate_just_below_the_bound_is_not():
    ft = _t("ft", "finetune", 0.75, 0.125)
    assert choose([_t("probe", "probe", 0.6249), ft]).name == "ft"


def test_the_bound_is_the_best_ones_spread_not_the_cheaper_ones():
    ft = _t("ft", "finetune", 0.75, 0.0625)  # bound 0.6875
    assert choose([_t("probe", "probe", 0.625, spread=0.5), ft]).name == "ft"


def test_within_the_spread_the_cheapest_kind_wins_then_the_higher_score():
    ft = _t("ft", "finetune", 0.75, 0.25)  # bound 0.5
    partial = _t("partial", "partial", 0.74)
    low, high = _t("low", "probe", 0.5, stage=1), _t("high", "probe", 0.625, stage=2)
    assert choose([ft, partial, low, high]).name == "high"  # probes cost 1 < partial's 2
    assert choose([ft, partial]).name == "partial"


def test_equal_best_scores_go_to_the_cheaper_kind_then_the_earlier_stage():
    assert choose([_t("ft", "finetune", 0.75), _t("probe", "probe", 0.75)]).name == "probe"
    assert choose([_t("b4", "probe", 0.75, stage=4), _t("b2", "probe", 0.75, stage=2),
                   _t("b3", "probe", 0.75, stage=3)]).name == "b2"


def test_lp_ft_and_unscored_trials_are_never_picked():
    lpft = Trial("lpft", "lpft", 0, 4, "linear", 32, 0.99, 0.0, 1.0, pickable=False)
    nan = _t("nan", "probe", float("nan"))
    none = _t("none", "probe", None)
    assert choose([lpft, nan, none, _t("probe", "probe", 0.5)]).name == "probe"
    assert choose([lpft, nan, none]) is None
