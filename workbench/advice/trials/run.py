"""The whole set of trials: sample the training split, measure the budget's candidates (from the
result cache when asked before), pick, and report."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Iterator

import torch

import workbench.advice.trials.cache as cache
import workbench.advice.trials.fidelity as fidelity
import workbench.advice.trials.finetune as finetune
from workbench.advice.events import AdviceProgress
from workbench.advice.holdout import Folds, make_folds
from workbench.advice.sampling import relay, stratified_sample
from workbench.advice.trials.cache import Sample
from workbench.advice.trials.finetune import QUICK_CANDIDATE, finetune_candidates
from workbench.advice.trials.probes import (
    larger_size_trial,
    probe_trials,
    sample_features,
    size_hint,
)
from workbench.advice.trials.report import Budget, Trial, TrialsReport, choose
from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.devices import cpu_threads
from workbench.errors import UserError
from workbench.plan import RunPlan, plan_run

TRIAL_IMAGES = 1000  # training images the trials look at, whatever the budget
# ... or four times `advice.sample_size` (the similarity sample) when that is fewer: 1000 for
# the default 256, a few dozen for the tests' 16
TRIALS_PER_SAMPLE = 4


def trial_plan(index: DatasetIndex, config: RunConfig) -> RunPlan:
    """The user's plan at the input size they will train at (fixes applied): the one they set,
    else the plan's suggestion for small images (what applying the advice sets), else the
    weights' own."""
    plan = plan_run(config, index, fix=True)
    if not plan.size_to_apply:
        return plan
    config = copy.deepcopy(config)
    config.data.input_size = plan.size_to_apply
    return plan_run(config, index, fix=True, stages=plan.stage_names)


def _positions(index: DatasetIndex, config: RunConfig, images: int | None = None) -> list[int]:
    """Stratified positions of the training images the trials sample (every class kept)."""
    train_idx = index.indices(index.training_split())
    images = images or min(TRIAL_IMAGES, TRIALS_PER_SAMPLE * config.advice.sample_size)
    picked = stratified_sample([index.labels[i] for i in train_idx], images,
                               seed=config.data.split_seed, floor=1)
    return [train_idx[i] for i in picked]


def _recipe() -> str:
    """The trials' settings a cached report depends on beyond the run's own (its key)."""
    return (f"seed {finetune.TRIAL_SEED}, warm-up {finetune.WARMUP}, quick on "
            f"{fidelity.QUICK_IMAGES} images")


def _no_evidence(budget: Budget, plan: RunPlan | None, message: str) -> TrialsReport:
    return TrialsReport(str(budget), input_size=plan.input_size if plan else 0,
                        message=f"no evidence: textbook cell ({message})")


def iter_trials(index: DatasetIndex, config: RunConfig, budget: Budget | str = Budget.QUICK,
                stop: threading.Event | None = None, *, plan: RunPlan | None = None,
                median_per_class: float = 0.0, images: int | None = None
                ) -> Iterator[AdviceProgress | TrialsReport]:
    """Run the budget's trials on `images` sampled training images (default: `TRIAL_IMAGES`, at
    most `TRIALS_PER_SAMPLE` times `advice.sample_size`);
    yield progress, then the `TrialsReport` (raises `Cancelled` when `stop` is set). A dataset
    or backbone no trial can measure gives a report without a pick whose message says why
    ("no evidence: textbook cell ...")."""
    budget = Budget(budget)
    started = time.perf_counter()
    plan = plan or trial_plan(index, config)
    if not plan.pretrained:
        yield _no_evidence(budget, plan, "the trials compare ways to reuse pretrained weights")
        return
    positions = _positions(index, config, images)
    key = cache.result_key(index, positions, plan,
                           f"{budget}, fine-tuning at {fidelity.low_size(plan.input_size)} px, "
                           f"{_recipe()}")
    cached = cache.load_result(key)
    if cached is not None:
        yield cached
        return

    with cpu_threads(torch.device(plan.device)):
        report = yield from _measure(index, plan, positions, budget, stop, median_per_class)
    report = dataclasses.replace(report, seconds=time.perf_counter() - started)
    if report.trials:
        cache.save_result(key, report)
    yield report


def _measure(index: DatasetIndex, plan: RunPlan, positions: list[int], budget: Budget,
             stop: threading.Event | None, median_per_class: float
             ) -> Iterator[AdviceProgress | TrialsReport]:

    sample = yield from relay(sample_features(index, plan, positions, False, stop), Sample)
    try:
        folds = make_folds(sample.labels, max_folds=5 if len(sample.labels) <= 500 else 3)
    except UserError as exc:
        return _no_evidence(budget, plan, str(exc))
    trials: list[Trial] = []
    for event in probe_trials(sample, folds, plan, stop):
        yield from _collect(event, trials)
    base = choose([t for t in trials if t.kind == "probe"])
    if base is not None:
        for event in _fine_tuning(index, plan, positions, base, budget, stop, median_per_class):
            yield from _collect(event, trials)
    # the higher score loses the fewest points on average (the halving's losers are evidence
    # only, so the thorough budget's best of many is one candidate confirmed on every fold)
    pick, hint = choose(trials), ""
    if budget == Budget.THOROUGH and pick is not None:
        larger = yield from larger_size_trial(index, plan, positions, folds, pick, stop)
        base = next((t for t in trials if t.kind == "probe" and t.pooling == "gap"
                     and larger is not None and t.feature_stage == larger.feature_stage), None)
        if larger is not None and base is not None:
            trials.append(larger)
            hint = size_hint(base, larger)
    return TrialsReport(str(budget), tuple(trials), pick, folds.k, len(sample.labels),
                        plan.input_size, _left_out(folds, sample, plan), hint)



def _fine_tuning(index: DatasetIndex, plan: RunPlan, positions: list[int], base: Trial,
                 budget: Budget, stop: threading.Event | None, median_per_class: float
                 ) -> Iterator[AdviceProgress | Trial]:
    """Fine-tuning evidence at low fidelity (`fidelity`): quick, the whole network with one LR
    on up to `fidelity.QUICK_IMAGES` of the sample; thorough, every candidate on the whole
    sample, the best confirmed on every fold."""
    train_images = len(index.indices(index.training_split()))
    cands = finetune_candidates(plan, train_images, median_per_class)
    if budget == Budget.QUICK:
        cands = [c for c in cands if c.name == QUICK_CANDIDATE]
        labels = [index.labels[p] for p in positions]
        positions = fidelity.subset(positions, labels, fidelity.QUICK_IMAGES)
    low = yield from relay(fidelity.prepare(index, plan, positions, base.feature_stage, stop),
                           fidelity.LowFidelity)
    if low is None:
        return
    yield from fidelity.fine_tuning_trials(index, plan, low, base, cands,
                                           budget == Budget.THOROUGH, stop)


def _collect(event: AdviceProgress | Trial, trials: list[Trial]) -> Iterator[AdviceProgress]:
    if isinstance(event, Trial):
        trials.append(event)
    else:
        yield event

def _left_out(folds: Folds, sample: Sample, plan: RunPlan) -> str:
    parts = []
    if folds.kept_in_training:
        names = ", ".join(plan.class_names[c] for c in folds.kept_in_training[:5])
        parts.append(f"classes with one training image are never held out ({names})")
    if sample.skipped:
        parts.append(f"{sample.skipped} images could not be loaded")
    return "; ".join(parts)
