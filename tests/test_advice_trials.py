"""Trials on held-out training images: folds, scores, probes, the pick, the cache, bad input.

Real components throughout: mobilenet_v2's offline weights, tiny PNG sets drawn here at 32 px.
"""

import re
import threading

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import balanced_accuracy_score

from workbench.advice.holdout import C_GRID, make_folds, probe_predictions, score
from workbench.advice.trials import (
    Budget,
    Trial,
    TrialsReport,
    apply_settings,
    choose,
    iter_trials,
    step_budget,
)
from workbench.config import RunConfig
from workbench.errors import Cancelled, UserError


def _write_set(root, counts, val=2, seed=0):
    """Class-per-folder PNGs: each class a colour and stripe direction, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    for c, n in enumerate(counts):
        colour = np.array([(c * 97) % 256, (c * 53 + 80) % 256, (c * 31 + 160) % 256])
        for split, m in (("train", n), ("val", val)):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(m):
                wave = np.sin((xx if c % 2 else yy) * (0.4 + 0.2 * c) + rng.uniform(0, 6))
                img = colour * (0.6 + 0.4 * wave[..., None]) + rng.normal(0, 20, (32, 32, 3))
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                    folder / f"{i}.png")
    return root


def _config(root):
    config = RunConfig()
    config.data.path, config.data.input_size = str(root), 32
    config.model.backbone, config.model.weights = "mobilenet_v2", "IMAGENET1K_V1"
    config.train.device = "cpu"
    return config


def _open(root):
    from workbench.data.scan import open_dataset

    return open_dataset(str(root), min_class_count=0)


def _report(events):
    reports = [e for e in events if isinstance(e, TrialsReport)]
    assert len(reports) == 1
    return reports[0]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return _write_set(tmp_path_factory.mktemp("trials") / "set", [8, 8, 8])


@pytest.fixture(scope="module")
def quick_report(small_set):
    return _report(list(iter_trials(_open(small_set), _config(small_set), Budget.QUICK)))


# -- folds and scores ------------------------------------------------------------------------

def test_folds_are_stratified_and_a_single_image_class_is_never_held_out():
    labels = np.array([0] * 10 + [1] * 4 + [2])
    folds = make_folds(labels, max_folds=5, seed=3)
    assert folds.k == 5 and folds.kept_in_training == (2,)
    assert folds.assignment[-1] == -1
    for fold in range(folds.k):
        held = labels[folds.held_out(fold)]
        assert (held == 0).sum() == 2  # 10 images over 5 folds: two each
        assert 2 not in held
        assert set(labels[folds.training(fold)]) == {0, 1, 2}
    assert folds.num_held_out == 14


def test_folds_shrink_to_the_largest_class_down_to_one_image_per_class():
    folds = make_folds(np.array([0, 0, 1, 1]), max_folds=5)
    assert folds.k == 2
    assert all(sorted(np.array([0, 0, 1, 1])[folds.held_out(f)]) == [0, 1] for f in range(2))


def test_a_set_too_small_for_any_trial_is_a_user_error():
    with pytest.raises(UserError, match="too small for any trial"):
        make_folds(np.array([0, 1, 2, 2]))


def test_score_is_balanced_accuracy_with_a_bootstrap_spread():
    y = np.array([0] * 30 + [1] * 10)
    pred = np.array([0] * 25 + [1] * 5 + [1] * 8 + [0] * 2)
    value, spread = score(y, pred)
    assert value == pytest.approx(balanced_accuracy_score(y, pred))
    assert 0 < spread < 0.2
    assert score(y, y) == (1.0, 0.0)


def test_probe_chooses_c_inside_each_fold_and_separates_separable_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(size=(60, 300)) + 3 * np.eye(3)[y] @ rng.normal(size=(3, 300))
    folds = make_folds(y, 3)
    pred, chosen = probe_predictions(x, y, folds)
    assert len(chosen) == 3 and set(chosen) <= set(C_GRID)
    assert balanced_accuracy_score(y, pred) > 0.9


# -- the pick --------------------------------------------------------------------------------

def _trial(name, kind, value, spread, pickable=True, stage=4):
    return Trial(name, kind, 5 if kind == "probe" else 0, stage, "logreg", 32, value, spread,
                 1.0, pickable=pickable)


def test_pick_is_the_best_score_and_the_cautious_rule_keeps_a_cheaper_one_within_the_spread():
    probe, ft = _trial("probe", "probe", 0.80, 0.02), _trial("ft", "finetune", 0.90, 0.03)
    assert choose([probe, ft]).name == "ft"
    close = _trial("probe", "probe", 0.88, 0.02)
    assert choose([close, ft]).name == "ft"  # the higher score
    assert choose([close, ft], within_spread=True).name == "probe"  # 0.88 >= 0.90 - 0.03
    grid = _trial("grid", "probe", 0.99, 0.01, pickable=False)
    assert choose([grid, ft]).name == "ft"  # evidence only, never picked
    assert choose([grid]) is None and choose([]) is None


def test_settings_of_a_trial_apply_to_a_config():
    trial = Trial("probe", "probe", 5, 2, "logreg", 64, 0.9, 0.01, 1.0, lr=0.02, lr_decay=0.5,
                  norm_policy="frozen_bn")
    config = apply_settings(trial.settings(), RunConfig())
    assert (config.model.freeze_stages, config.model.feature_stage, config.model.head) == \
        (5, 2, "logreg")
    assert config.train.lr == 0.02 and config.model.lr_decay == 0.5
    assert config.data.input_size == 64 and config.model.norm_policy == "frozen_bn"


def test_step_budget_is_short_and_checks_the_held_out_part_often():
    assert step_budget(10) == (30, 5)
    steps, every = step_budget(100_000)
    assert steps == 60 and every == 10


# -- trials on real images ---------------------------------------------------------------------

def test_quick_budget_probes_every_stage_with_both_poolings(quick_report):
    report = quick_report
    probes = [t for t in report.trials if t.kind == "probe"]
    assert {(t.feature_stage, t.pooling) for t in probes} == \
        {(s, p) for s in range(5) for p in ("gap", "grid2x2")}
    assert report.folds == 5 and report.images == 24 and report.input_size == 32
    assert all(0 <= t.score <= 1 and t.spread >= 0 and t.seconds >= 0 for t in probes)
    assert report.pick is not None and report.pick.pooling == "gap" and report.pick.pickable
    # colour and stripes: frozen ImageNet features separate three such classes well
    assert max(t.score for t in probes) > 0.8
    entry = report.pick.to_dict()
    for key in ("name", "freeze_stages", "feature_stage", "head", "input_size", "score",
                "spread", "seconds"):
        assert key in entry


def test_asking_again_is_instant_from_the_cache(small_set, quick_report):
    events = list(iter_trials(_open(small_set), _config(small_set), Budget.QUICK))
    again = _report(events)
    assert events == [again]  # no feature pass, no probe: the stored report
    assert again.cached and again.pick.name == quick_report.pick.name
    assert [t.score for t in again.trials] == pytest.approx([t.score for t in  # 4 digits
                                                             quick_report.trials], abs=1e-4)


def test_quick_budget_predicts_fine_tuning_from_a_low_fidelity_trial(quick_report):
    (ft,) = [t for t in quick_report.trials if t.kind != "probe"]
    assert ft.name == "fine-tune all, one LR" and ft.kind == "finetune" and ft.lr_decay == 1.0
    assert ft.input_size == 32 and ft.pickable and ft.norm_policy == "train_bn"
    assert ft.note.startswith("predicted:") and 0 <= ft.score <= 1 and ft.spread >= 0
    # the quick budget picks by the scores alone: the best probe or the trial, whichever is higher
    best_probe = max(t.score for t in quick_report.trials if t.kind == "probe" and t.pickable)
    assert quick_report.pick.name == (ft.name if ft.score > best_probe else
                                      choose([t for t in quick_report.trials
                                              if t.kind == "probe"]).name)


def _stages(events):
    return {e.stage for e in events if not isinstance(e, TrialsReport)}


def test_features_do_not_depend_on_the_lr_or_the_loss_weighting(small_set, quick_report):
    """Another LR and loss weighting: a new report (the trials report the LR), from the cached
    features: the backbone runs no pass."""
    config = _config(small_set)
    config.train.lr, config.data.loss_weighting = 0.05, "inverse"
    events = list(iter_trials(_open(small_set), config, Budget.QUICK))
    report = _report(events)
    assert not report.cached and report.pick.lr == 0.05
    assert "trial features" not in _stages(events) and "probes" in _stages(events)
    probes = [t.score for t in report.trials if t.kind == "probe"]
    assert probes == pytest.approx([t.score for t in quick_report.trials if t.kind == "probe"],
                                   abs=1e-4)


def test_another_trial_seed_is_another_report_with_the_same_probes(small_set, quick_report,
                                                                  monkeypatch):
    """`benchmarks/advisor.py --trial-seeds`: a fine-tuning trial with another seed is not
    answered from the report cached for seed 0; the probes, which have no such seed, agree."""
    from workbench.advice.trials import finetune

    monkeypatch.setattr(finetune, "TRIAL_SEED", 1)
    events = list(iter_trials(_open(small_set), _config(small_set), Budget.QUICK))
    report = _report(events)
    assert not report.cached and "trial features" not in _stages(events)
    assert [t.score for t in report.trials if t.kind == "probe"] == pytest.approx(
        [t.score for t in quick_report.trials if t.kind == "probe"], abs=1e-4)
    assert [t.name for t in report.trials] == [t.name for t in quick_report.trials]


def test_feature_key_is_files_backbone_weights_size_and_version_only(small_set):
    from workbench.advice.trials import cache
    from workbench.advice.trials.run import trial_plan

    index, config = _open(small_set), _config(small_set)
    base = cache.feature_key(index, [0, 1, 2], trial_plan(index, config))
    config.train.lr, config.train.optimizer, config.train.loss = 0.1, "adamw", "ldam_drw"
    config.data.loss_weighting = "effective_number"
    plan = trial_plan(index, config)
    assert cache.feature_key(index, [0, 1, 2], plan) == base
    assert cache.result_key(index, [0, 1, 2], plan, "quick") != \
        cache.result_key(index, [0, 1, 2], trial_plan(index, _config(small_set)), "quick")
    assert cache.feature_key(index, [0, 1, 3], plan) != base
    config.data.input_size = 48
    assert cache.feature_key(index, [0, 1, 2], trial_plan(index, config)) != base


def test_thorough_budget_adds_fine_tuning_trials_with_trained_bn(small_set):
    events = list(iter_trials(_open(small_set), _config(small_set), "thorough"))
    report = _report(events)
    assert "trial images" in _stages(events)  # features cached by the quick ask: images only
    kinds = {t.kind: t for t in report.trials}
    assert {"probe", "finetune", "partial", "lpft"} <= set(kinds)
    tuned = [t for t in report.trials if t.kind != "probe"]
    assert all(t.note.startswith("predicted:") and t.input_size == 32 for t in tuned)
    # successive halving: every candidate on one of the 3 folds, the best gain on all three
    folds = [re.search(r"(\d) of 3 folds\)", t.note).group(1) for t in tuned]
    assert sorted(folds) == ["1"] * (len(tuned) - 1) + ["3"], folds
    confirmed = tuned[folds.index("3")]
    assert "on 24 held-out images" in confirmed.note  # every sampled image
    # the first round's losers are evidence only: the pick is a probe or the winner
    assert confirmed.pickable
    assert all(not t.pickable and t.note.endswith(f"gained less than {confirmed.name} on the "
                                                  "first fold, which was then measured on "
                                                  "every fold: evidence only")
               for t in tuned if t is not confirmed)
    assert report.pick is not None
    assert report.pick.kind == "probe" or report.pick.name == confirmed.name
    # by the scores, as the quick budget: no pickable trial scores higher than the pick
    assert all(t.score <= report.pick.score for t in report.trials if t.pickable)
    assert "scratch" not in kinds  # 24 images: from scratch has no chance
    assert kinds["finetune"].freeze_stages == 0 and kinds["partial"].freeze_stages == 2
    assert all(kinds[k].norm_policy == "train_bn" for k in ("finetune", "partial", "lpft"))
    assert kinds["lpft"].unfreeze_after_epochs == 1
    assert report.size_hint and any(t.input_size == 64 for t in report.trials)


def test_one_image_classes_and_more_classes_than_held_out_images(tmp_path):
    root = _write_set(tmp_path / "few", [3, 2, 1, 1])
    report = _report(list(iter_trials(_open(root), _config(root), "quick")))
    assert report.pick is not None
    assert "never held out" in report.message and "class2" in report.message


def test_a_set_too_small_for_trials_has_no_evidence_and_no_traceback(tmp_path):
    root = _write_set(tmp_path / "tiny", [1, 1, 2])
    report = _report(list(iter_trials(_open(root), _config(root), "quick")))
    assert report.pick is None and not report.trials
    assert report.message.startswith("no evidence: textbook cell")


def test_random_weights_give_no_evidence(small_set):
    config = _config(small_set)
    config.model.weights = "random"
    report = _report(list(iter_trials(_open(small_set), config, "quick")))
    assert report.pick is None and "pretrained" in report.message


def test_a_cancelled_trial_raises_cancelled(tmp_path):
    root = _write_set(tmp_path / "stop", [4, 4])
    stop = threading.Event()
    events = iter_trials(_open(root), _config(root), "thorough", stop)
    next(events)  # the first progress event
    stop.set()
    with pytest.raises(Cancelled):
        list(events)


# -- the verdict: the textbook cell against the pick -----------------------------------------

def _advice_report(cell):
    from workbench.advice.advisor import AdviceReport
    from workbench.advice.matrix import strategy_for
    from workbench.advice.probe import ProbeResult
    from workbench.advice.similarity import unavailable

    return AdviceReport("mobilenet_v2", {"min": 5.0, "median": 5.0, "max": 5.0}, {},
                        unavailable("LayerNorm"), ProbeResult(), cell, "measured",
                        strategy_for(cell, 5), 5)


def _probes(best_stage):
    return [Trial(f"probe s{s}", "probe", 5, s, "logreg", 64, 0.9 if s == best_stage else 0.6,
                  0.02, 1.0) for s in range(5)]


def test_the_pick_overrules_a_measured_textbook_cell_in_one_sentence():
    from workbench.advice.verdict import recommend

    report = _advice_report("similar-small")  # the textbook: a linear head on the last stage
    trials = TrialsReport("quick", tuple(_probes(1)), _probes(1)[1], 3, 100, 64)
    advised = recommend(report, trials, RunConfig())
    assert advised.recommended["source"] == "trials"
    assert advised.recommended["feature_stage"] == 1 and advised.freeze_stages == 5
    assert advised.verdict.startswith("The trials overrule the textbook cell: probe s1 "
                                      "scored 90% ± 2")
    assert "60% ± 2 for the cell's probe s4" in advised.verdict
    assert "earlier-stage features" in advised.verdict
    assert advised.to_json()["strategy_detail"]["feature_stage"] == 1


def test_a_fine_tuning_cell_stands_when_the_quick_budget_did_not_measure_it():
    from workbench.advice.verdict import recommend

    report = _advice_report("dissimilar-large")
    trials = TrialsReport("quick", tuple(_probes(2)), _probes(2)[2], 3, 100, 64)
    advised = recommend(report, trials, RunConfig())
    assert advised.recommended["source"] == "textbook cell"
    assert advised.freeze_stages == 0 and advised.recommended["lr_decay"] == 1.0
    assert "not tried with the quick budget" in advised.verdict


def test_agreement_and_no_evidence_are_said_too():
    from workbench.advice.verdict import recommend

    report = _advice_report("dissimilar-small")  # logreg on stage 3 (two thirds up)
    agree = recommend(report, TrialsReport("quick", tuple(_probes(3)), _probes(3)[3], 3, 9, 64),
                      RunConfig())
    assert agree.verdict.startswith("The trials agree with the textbook cell: probe s3")
    none = recommend(report, TrialsReport("quick", message="no evidence: textbook cell (x)"),
                     RunConfig())
    assert none.recommended["source"] == "textbook cell"
    assert none.verdict.startswith("no evidence: textbook cell (x): the textbook cell's")
