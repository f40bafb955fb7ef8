"""The trials' parts in isolation: the fine-tuning trial builds its optimizer and criterion with
the engine's builders, the feature cache's key, and the pick rule with exact numbers."""

import math
import warnings

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


def test_a_trial_warms_up_over_the_runs_warmup_epochs_of_its_images(stripes):
    """As the engine does (`train.warmup_epochs` of steps per epoch), at most half the steps:
    warming up over a tenth of the steps, some seeds' trials did not train."""
    index, config = stripes
    plan = trial_plan(index, config)
    model = plan.build_model()

    def lrs(labels, steps, epochs=1.0):
        plan.config.train.warmup_epochs = epochs
        opt, sched, _ = optimisation(plan, model, labels, steps)
        out = []
        for _ in range(steps):
            out.append(opt.param_groups[-1]["lr"] / opt.param_groups[-1]["initial_lr"])
            opt.step()
            sched.step()
        return out

    # 200 images: 7 steps an epoch, so the factor rises over 7 steps, (s + 1) / 8
    assert lrs(np.zeros(200, dtype=int), 40)[:8] == pytest.approx([i / 8 for i in range(1, 9)])
    # 2000 images, 63 steps an epoch: capped at half the trial's 60 steps
    rising = lrs(np.zeros(2000, dtype=int), 60)
    assert rising[29] == pytest.approx(30 / 31) and rising[30] == pytest.approx(1.0)
    assert lrs(np.zeros(200, dtype=int), 40, epochs=0.0)[0] == pytest.approx(1.0)


# -- the pick rule, with exact numbers (binary fractions: no rounding at the bound) -------------

def _t(name, kind, value, spread=0.0, stage=4):
    return Trial(name, kind, 5 if kind == "probe" else 0, stage, "logreg", 32, value, spread, 1.0)


def test_a_cheaper_candidate_exactly_on_the_bound_is_picked_within_the_spread():
    ft = _t("ft", "finetune", 0.75, 0.125)  # the bound: 0.75 - 0.125 = 0.625
    assert choose([_t("probe", "probe", 0.625), ft], within_spread=True).name == "probe"


def test_a_cheaper_candidate_just_below_the_bound_is_not():
    ft = _t("ft", "finetune", 0.75, 0.125)
    assert choose([_t("probe", "probe", 0.6249), ft], within_spread=True).name == "ft"


def test_the_bound_is_the_best_ones_spread_not_the_cheaper_ones():
    ft = _t("ft", "finetune", 0.75, 0.0625)  # bound 0.6875
    assert choose([_t("probe", "probe", 0.625, spread=0.5), ft], within_spread=True).name == "ft"


def test_within_the_spread_the_cheapest_kind_wins_then_the_higher_score():
    ft = _t("ft", "finetune", 0.75, 0.25)  # bound 0.5
    partial = _t("partial", "partial", 0.74)
    low, high = _t("low", "probe", 0.5, stage=1), _t("high", "probe", 0.625, stage=2)
    assert choose([ft, partial, low, high], within_spread=True).name == "high"  # probe: 1 < 2
    assert choose([ft, partial], within_spread=True).name == "partial"
    assert choose([ft, partial, low, high]).name == "ft"  # by the scores


def test_by_the_scores_a_higher_score_wins_however_small_its_lead():
    # the advisor's rule, both budgets: the spread (0.125) does not keep the cheaper probe
    ft = _t("ft", "finetune", 0.75, 0.125)
    assert choose([_t("probe", "probe", 0.7499), ft]).name == "ft"
    assert choose([_t("probe", "probe", 0.7499), ft], within_spread=True).name == "probe"
    assert choose([_t("probe", "probe", 0.75), ft]).name == "probe"  # a tie: the cheaper
    assert choose([_t("probe", "probe", 0.75001), ft]).name == "probe"


def test_a_candidate_the_halving_eliminated_is_never_picked():
    from workbench.advice.trials.fidelity import eliminated

    ft = _t("ft", "finetune", 0.75, 0.125)  # confirmed on every fold; bound 0.625
    partial = _t("partial", "partial", 0.6875)  # one fold, within the bound, cheaper
    assert choose([_t("probe", "probe", 0.5), ft, partial], within_spread=True).name == "partial"
    out = eliminated(partial, "ft")
    assert not out.pickable and out.score == 0.6875 and "evidence only" in out.note
    assert choose([_t("probe", "probe", 0.5), ft, out], within_spread=True).name == "ft"
    assert choose([_t("probe", "probe", 0.625), ft, out], within_spread=True).name == "probe"
    # by the scores, even a higher one-fold score stays evidence
    assert choose([ft, eliminated(_t("partial", "partial", 0.875), "ft")]).name == "ft"


def test_equal_best_scores_go_to_the_cheaper_kind_then_the_earlier_stage():
    assert choose([_t("ft", "finetune", 0.75), _t("probe", "probe", 0.75)]).name == "probe"
    assert choose([_t("b4", "probe", 0.75, stage=4), _t("b2", "probe", 0.75, stage=2),
                   _t("b3", "probe", 0.75, stage=3)]).name == "b2"


def test_lp_ft_applies_as_a_head_first_run_and_other_trials_reset_it():
    from workbench.advice.trials import apply_settings
    from workbench.config import RunConfig

    lpft = Trial("LP-FT", "lpft", 0, 4, "linear", 64, 0.9, 0.01, 1.0, unfreeze_after_epochs=1)
    config = apply_settings(lpft.settings(), RunConfig())
    assert config.train.unfreeze_after_epochs == 1 and config.model.freeze_stages == 0
    probe = _t("probe", "probe", 0.8)
    assert apply_settings(probe.settings(), config).train.unfreeze_after_epochs == 0


def test_evidence_only_and_unscored_trials_are_never_picked():
    lpft = Trial("grid", "probe", 5, 4, "logreg", 32, 0.99, 0.0, 1.0, pickable=False)
    nan = _t("nan", "probe", float("nan"))
    none = _t("none", "probe", None)
    assert choose([lpft, nan, none, _t("probe", "probe", 0.5)]).name == "probe"
    assert choose([lpft, nan, none]) is None


# -- multi-fidelity fine-tuning evidence ----------------------------------------------------------

HELD = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # the held-out labels of the tests below
PROBE = np.array([0, 0, 0, 1, 1, 1, 1, 0])  # the probe's predictions there: 6 of 8 right


def _low(probe=PROBE, input_size=64, k=1):
    from types import SimpleNamespace

    from workbench.advice.holdout import Folds
    from workbench.advice.trials.cache import Sample
    from workbench.advice.trials.fidelity import LowFidelity

    folds = Folds(np.arange(len(HELD)) % k, k)
    return LowFidelity(SimpleNamespace(input_size=input_size), Sample({}, HELD, None, 0), folds,
                       probe, 3)


def _measured(pred, value, held=None):
    from workbench.advice.trials.finetune import Measured

    held = np.arange(len(HELD)) if held is None else held
    return Measured(Trial("fine-tune all, one LR", "finetune", 0, 4, "linear", 64, value, 0.09,
                          9.0, lr_decay=1.0, note="30 steps at most"), held, pred)


def test_a_gain_is_scored_paired_on_the_same_images():
    from workbench.advice.holdout import paired_gain, score

    assert paired_gain(HELD, PROBE, PROBE) == (0.0, 0.0)  # the same answers: no gain, no doubt
    right = np.array([0, 0, 0, 0, 1, 1, 1, 0])  # the probe's answers, one more right
    gain, spread = paired_gain(HELD, right, PROBE)
    assert gain == 0.125  # 7/8 against 6/8, balanced (4/4 and 3/4 against 3/4 and 3/4)
    # one image differs: the gain's own error is well below the two scores' errors taken apart
    assert 0 < spread < 0.6 * math.hypot(score(HELD, right)[1], score(HELD, PROBE)[1])


def test_the_prediction_is_the_full_size_probe_plus_the_low_size_gain():
    from types import SimpleNamespace

    from workbench.advice.holdout import paired_gain
    from workbench.advice.trials.fidelity import _prediction

    base = _t("probe block3 (average)", "probe", 0.5, 0.01, stage=3)
    right = np.array([0, 0, 0, 0, 1, 1, 1, 0])
    trial = _prediction(SimpleNamespace(input_size=160), _low(), base, _measured(right, 0.875))
    assert trial.score == 0.625  # 0.5 + (0.875 - 0.75)
    assert trial.spread == paired_gain(HELD, right, PROBE)[1]
    assert trial.input_size == 160 and trial.seconds == 9.0 and trial.pickable
    assert trial.lr_decay == 1.0 and trial.kind == "finetune"
    assert "at 64 px" in trial.note and "+12" in trial.note and "1 of 1 folds" in trial.note
    # the same answers as the probe: a gain of 0 with no spread, and the cheaper probe stands
    same = _prediction(SimpleNamespace(input_size=160), _low(), base, _measured(PROBE, 0.75))
    assert (same.score, same.spread) == (0.5, 0.0) and choose([base, same]).name == base.name
    # every answer right: +25 points, past its spread: fine-tuning
    best = _prediction(SimpleNamespace(input_size=160), _low(), base, _measured(HELD, 1.0))
    assert best.score == 0.75 and best.spread < 0.25
    assert choose([base, best]).name == "fine-tune all, one LR"


def test_a_prediction_stays_a_score():
    from types import SimpleNamespace

    from workbench.advice.trials.fidelity import _prediction

    base = _t("probe", "probe", 0.875)
    wrong = np.array([1, 1, 1, 1, 0, 0, 0, 0])  # every answer wrong: the probe's low-size 0
    trial = _prediction(SimpleNamespace(input_size=160), _low(wrong), base, _measured(HELD, 1.0))
    assert trial.score == 1.0  # 0.875 + 1.0, clipped
    failed = _prediction(SimpleNamespace(input_size=160), _low(), base, _measured(None, None))
    assert failed.score is None and choose([failed]) is None


def test_folds_pool_into_one_paired_measurement():
    from workbench.advice.holdout import paired_gain
    from workbench.advice.trials.fidelity import _gain, pool

    low = _low(k=2)  # images 0, 2, 4, 6 held out in fold 0; 1, 3, 5, 7 in fold 1
    first = _measured(HELD[[0, 2, 4, 6]], 1.0, held=np.array([0, 2, 4, 6]))
    second = _measured(np.array([0, 0, 1, 0]), 0.75, held=np.array([1, 3, 5, 7]))
    both = pool([first, second])
    assert both.folds == 2 and both.trial.seconds == 18.0
    assert list(both.held) == [0, 2, 4, 6, 1, 3, 5, 7]
    assert list(both.predictions) == [0, 0, 1, 1, 0, 0, 1, 0]
    # the pooled gain is over all eight images: 7/8 right (4/4, 3/4) against the probe's
    # 6/8 (3/4, 3/4) on them, with the paired spread of those eight
    assert _gain(low, both) == (0.125, paired_gain(HELD[both.held], both.predictions,
                                                   PROBE[both.held])[1])
    failed = pool([first, _measured(None, None, held=np.array([1, 3, 5, 7]))])
    assert failed.predictions is None and failed.trial.score is None


def test_the_low_fidelity_size_is_64_px_or_the_users_when_smaller(stripes):
    from workbench.advice.trials.fidelity import low_plan

    index, config = stripes
    plan = trial_plan(index, config)  # 32 px
    assert low_plan(plan, index) is plan
    config.data.input_size = 160
    assert low_plan(trial_plan(index, config), index).input_size == 64


def test_balanced_accuracy_is_scikit_learns_on_the_classes_held_out():
    from sklearn.metrics import balanced_accuracy_score

    from workbench.advice.holdout import _balanced

    y = np.array([0, 0, 0, 1, 2, 2])
    pred = np.array([0, 1, -1, 1, 2, 3])  # -1: never predicted; 3: a class not held out
    assert _balanced(y, pred) == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
    rng = np.random.default_rng(0)
    for _ in range(200):
        y, pred = rng.integers(0, 5, 30), rng.integers(-1, 6, 30)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "y_pred contains classes not in y_true"
            expected = balanced_accuracy_score(y, pred)
        assert _balanced(y, pred) == pytest.approx(expected, abs=1e-12)


def test_fewer_images_than_dimensions_project_without_loss():
    """The L2 fit on the training rows' span is the fit on every dimension: same scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from workbench.advice.holdout import _project

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 300)), np.repeat([0, 1, 2], 20)
    x[:, :5] += y[:, None]  # some signal
    train, test = np.arange(0, 60, 2), np.arange(1, 60, 2)
    small_train, small_test = _project(x[train], x[test], seed=0)
    assert small_train.shape == (30, 30) and small_test.shape == (30, 30)
    scaler = StandardScaler().fit(x[train])

    def scores(a, b):
        model = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000).fit(a, y[train])
        return model.decision_function(b)

    full = scores(scaler.transform(x[train]), scaler.transform(x[test]))
    np.testing.assert_allclose(scores(small_train, small_test), full, atol=1e-4)
