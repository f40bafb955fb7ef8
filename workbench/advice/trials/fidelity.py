"""Multi-fidelity fine-tuning evidence: fine-tune at a reduced input size, predict the run.

Fine-tuning at 160 or 224 px costs minutes a trial on a CPU; at 64 px it costs seconds. What a
low-fidelity trial measures is the *gain* of fine-tuning over the frozen probe, both trained and
scored at the low size on the same held-out images. The prediction for the run at the user's size
is the full-size probe's score plus that gain; its spread is the gain's own (a paired bootstrap
over those images: `holdout.paired_gain`), so the pick rule chooses fine-tuning only when the
gain clears its own uncertainty.

`quick` runs one such trial (the whole network, one LR: the candidate that wins where frozen
features fall short) on a subset of the sample; `thorough` runs every fine-tuning candidate on
the whole sample.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from workbench.advice.events import AdviceProgress
from workbench.advice.holdout import Folds, make_folds, paired_gain, probe_predictions, score
from workbench.advice.sampling import relay
from workbench.advice.trials.cache import Sample
from workbench.advice.trials.finetune import Candidate, Measured, candidate_plan, finetune_trial
from workbench.advice.trials.probes import sample_features
from workbench.advice.trials.report import Trial
from workbench.data.index import DatasetIndex
from workbench.errors import UserError
from workbench.plan import RunPlan, plan_run

LOW_SIZE = 64  # the low-fidelity input size (the user's, when that is smaller)
QUICK_IMAGES = 400  # images of the sample the quick budget fine-tunes on


@dataclass(frozen=True)
class LowFidelity:
    """The sample at the low size, its one held-out fold, and the frozen probe's predictions
    there."""

    plan: RunPlan
    sample: Sample
    folds: Folds
    probe: np.ndarray  # the probe's predictions of the held-out images (`folds.held_out(0)`)
    stage: int

    @property
    def held_labels(self) -> np.ndarray:
        """The held-out images' labels."""
        return self.sample.labels[self.folds.held_out(0)]


def low_size(input_size: int) -> int:
    """The input size the fine-tuning trials train at for a run at `input_size`."""
    return min(input_size, LOW_SIZE)


def low_plan(plan: RunPlan, index: DatasetIndex) -> RunPlan:
    """The user's plan at the low-fidelity size (the plan itself when it is that small)."""
    size = low_size(plan.input_size)
    if size == plan.input_size:
        return plan
    config = copy.deepcopy(plan.config)
    config.data.input_size = size
    return plan_run(config, index, fix=True, stages=plan.stage_names, image_side=0)


def subset(positions: list[int], labels: list[int], images: int) -> list[int]:
    """Up to `images` of `positions`, stratified (the sample's own classes, seeded)."""
    from workbench.advice.sampling import stratified_sample

    if len(positions) <= images:
        return positions
    picked = stratified_sample(labels, images, seed=0, floor=1)
    return [positions[i] for i in picked]


def prepare(index: DatasetIndex, plan: RunPlan, positions: list[int], stage: int,
            stop: threading.Event | None) -> Iterator[AdviceProgress | LowFidelity]:
    """The low-size pass (images kept), one held-out fold, and the probe on `stage` there;
    yields progress, then the `LowFidelity` (none when the subset is too small to hold any
    image out)."""
    low = low_plan(plan, index)
    sample = yield from relay(sample_features(index, low, positions, True, stop), Sample)
    try:
        folds = make_folds(sample.labels, max_folds=3)
    except UserError:
        return
    one = Folds(np.where(folds.assignment == 0, 0, -1), 1)  # fold 0 held out, the rest trains
    pred, _ = probe_predictions(sample.features[(stage, "gap")], sample.labels, one)
    held = one.held_out(0)
    yield LowFidelity(low, sample, one, pred[held], stage)


def predicted_trial(index: DatasetIndex, plan: RunPlan, low: LowFidelity, base: Trial,
                    cand: Candidate, stop: threading.Event | None
                    ) -> Iterator[AdviceProgress | Trial]:
    """Fine-tune `cand` at the low size; yield progress, then the trial it predicts at the user's
    size: `base` (the full-size probe on the same stage) plus the low-size gain."""
    started = time.perf_counter()
    measured = yield from relay(finetune_trial(candidate_plan(low.plan, index, cand),
                                               low.sample, low.folds, cand, stop), Measured)
    assert measured is not None
    yield _prediction(plan, low, base, measured, time.perf_counter() - started)


def _prediction(plan: RunPlan, low: LowFidelity, base: Trial, measured: Measured,
                seconds: float) -> Trial:
    trial, labels = measured.trial, low.held_labels
    probe, _ = score(labels, low.probe)
    if (trial.score is None or base.score is None or measured.predictions is None
            or not math.isfinite(probe)):
        return replace(trial, score=None, seconds=seconds, input_size=plan.input_size)
    gain, spread = paired_gain(labels, measured.predictions, low.probe)
    size = low.plan.input_size
    words = ("" if size == plan.input_size else f" at {size} px")
    note = (f"predicted: the {base.name} {100 * base.score:.0f}% plus fine-tuning's gain over "
            f"that probe{words} on {len(low.folds.held_out(0))} held-out images "
            f"({100 * trial.score:.0f}% against {100 * probe:.0f}%: {100 * gain:+.0f} "
            f"± {100 * spread:.0f} points)")
    return replace(trial, score=float(np.clip(base.score + gain, 0.0, 1.0)), spread=spread,
                   seconds=seconds, input_size=plan.input_size, note=note)
