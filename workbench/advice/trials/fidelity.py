"""Multi-fidelity fine-tuning evidence: fine-tune at a reduced input size, predict the run.

Fine-tuning at 160 or 224 px costs minutes a trial on a CPU; at 64 px it costs seconds. What a
low-fidelity trial measures is the *gain* of fine-tuning over the frozen probe, both trained and
scored at the low size on the same held-out images. The prediction for the run at the user's size
is the full-size probe's score plus that gain; its spread is the gain's own (a paired bootstrap
over those images: `holdout.paired_gain`). A trial at the user's size instead was measured on the
suite (docs/advice-validation.md): one seed looked better, three seeds worse; a short trial's
own seed moves its gain by about 5 points, at either size.

`quick` runs one such trial (the whole network, one LR: the candidate that wins where frozen
features fall short) on one held-out fold of the sample (up to `QUICK_IMAGES` of it; over five
trial seeds the demo's predicted gain ranged from +7 to -52 points on 400 images, from -14 to
-63 on its 1000, where the run it predicts loses 25), picked by the scores.
`thorough` runs every fine-tuning candidate on one fold of the whole sample, then the one that
gained most on every other fold too (successive halving: one fold scores a few dozen images, a
gain of a few points is within its noise; all folds score every sampled image); the candidates
the first round eliminated stay in the report as evidence only (the best of several noisy
candidates on one fold is biased upwards), and the pick among the probes and the winner goes by
the scores.
"""

from __future__ import annotations

import copy
import math
import threading
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
QUICK_IMAGES = 1000  # images of the sample the quick budget fine-tunes on (all, by default)


@dataclass(frozen=True)
class LowFidelity:
    """The sample at the low size, its folds, and the frozen probe's out-of-fold predictions
    there."""

    plan: RunPlan
    sample: Sample
    folds: Folds
    probe: np.ndarray  # the probe's prediction of each image when held out (-1: never)
    stage: int


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
    """The low-size pass (images kept), up to 3 folds, and the probe on `stage` there; yields
    progress, then the `LowFidelity` (none when the subset is too small to hold any image out)."""
    low = low_plan(plan, index)
    sample = yield from relay(sample_features(index, low, positions, True, stop), Sample)
    try:
        folds = make_folds(sample.labels, max_folds=3)
    except UserError:
        return
    pred, _ = probe_predictions(sample.features[(stage, "gap")], sample.labels, folds)
    yield LowFidelity(low, sample, folds, pred, stage)


def measure(index: DatasetIndex, low: LowFidelity, cand: Candidate, folds: list[int],
            stop: threading.Event | None) -> Iterator[AdviceProgress | Measured]:
    """Fine-tune `cand` at the low size on each of `folds` in turn; yield progress, then one
    `Measured` pooling their held-out images and predictions (the first fold's trial as the
    template, its seconds the sum)."""
    plan = candidate_plan(low.plan, index, cand)
    parts: list[Measured] = []
    for fold in folds:
        part = yield from relay(finetune_trial(plan, low.sample, low.folds, cand, stop, fold),
                                Measured)
        assert part is not None
        parts.append(part)
    yield pool(parts)


def pool(parts: list[Measured]) -> Measured:
    """Several folds' measurements of one candidate as one (no predictions if any fold had
    none)."""
    if len(parts) == 1:
        return parts[0]
    trial = replace(parts[0].trial, seconds=sum(p.trial.seconds for p in parts))
    held, folds = np.concatenate([p.held for p in parts]), sum(p.folds for p in parts)
    if any(p.predictions is None for p in parts):
        return Measured(replace(trial, score=None), held, None, folds)
    return Measured(trial, held, np.concatenate([p.predictions for p in parts]), folds)


def fine_tuning_trials(index: DatasetIndex, plan: RunPlan, low: LowFidelity, base: Trial,
                       cands: list[Candidate], confirm: bool, stop: threading.Event | None
                       ) -> Iterator[AdviceProgress | Trial]:
    """Every candidate on the first fold; with `confirm`, the one that gained most over the
    probe on every other fold too. Yields progress, then each candidate's predicted trial."""
    measured: list[Measured] = []
    for cand in cands:
        one = yield from relay(measure(index, low, cand, [0], stop), Measured)
        measured.append(one)
    gains = [_gain(low, m)[0] for m in measured]
    best = None
    if confirm and low.folds.k > 1 and any(math.isfinite(g) for g in gains):
        best = int(np.nanargmax(gains))
        rest = yield from relay(measure(index, low, cands[best], list(range(1, low.folds.k)),
                                        stop), Measured)
        measured[best] = pool([measured[best], rest])
    for i, m in enumerate(measured):
        trial = _prediction(plan, low, base, m)
        if best is not None and i != best:
            trial = eliminated(trial, cands[best].name)
        yield trial


def eliminated(trial: Trial, winner: str) -> Trial:
    """A candidate that lost the first round of the successive halving: evidence only (its
    one fold's score is no rival to the winner's on every fold, nor, through its spread, to
    the probes)."""
    return replace(trial, pickable=False,
                   note=f"{trial.note}; it gained less than {winner} on the first fold, "
                   "which was then measured on every fold: evidence only")


def _gain(low: LowFidelity, measured: Measured) -> tuple[float, float]:
    """Fine-tuning's gain over the low-size probe on the images it was scored on, and its
    spread (nan when it has no predictions)."""
    if measured.predictions is None or measured.trial.score is None:
        return float("nan"), float("nan")
    labels = low.sample.labels[measured.held]
    return paired_gain(labels, measured.predictions, low.probe[measured.held])


def _prediction(plan: RunPlan, low: LowFidelity, base: Trial, measured: Measured) -> Trial:
    """The trial `measured` predicts at the user's size: `base` (the full-size probe on the
    same stage) plus the low-size gain, with the gain's spread."""
    trial = measured.trial
    gain, spread = _gain(low, measured)
    if base.score is None or not math.isfinite(gain):
        return replace(trial, score=None, input_size=plan.input_size)
    labels = low.sample.labels[measured.held]
    tuned, _ = score(labels, measured.predictions)
    probe, _ = score(labels, low.probe[measured.held])
    size = low.plan.input_size
    words = ("" if size == plan.input_size else f" at {size} px")
    note = (f"predicted: the {base.name} {100 * base.score:.0f}% plus fine-tuning's gain over "
            f"that probe{words} on {len(measured.held)} held-out images "
            f"({100 * tuned:.0f}% against {100 * probe:.0f}%: {100 * gain:+.0f} "
            f"± {100 * spread:.0f} points; {trial.note}, {measured.folds} of {low.folds.k} "
            "folds)")
    return replace(trial, score=float(np.clip(base.score + gain, 0.0, 1.0)), spread=spread,
                   input_size=plan.input_size, note=note)
