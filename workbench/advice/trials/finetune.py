"""Fine-tuning trials: short runs on one fold's training part, scored on its
held-out part: the whole network (LRs decaying per stage, and one LR), the textbook partial
freeze, LP-FT (the probe's head first), from scratch when the set is large enough."""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workbench.advice.events import AdviceProgress
from workbench.advice.holdout import Folds, score
from workbench.advice.trials.cache import Sample
from workbench.advice.trials.report import Trial
from workbench.config import DEFAULT_LR_DECAY, Head, NormPolicy
from workbench.data.index import DatasetIndex
from workbench.errors import Cancelled
from workbench.plan import RunPlan, plan_run

BATCH = 32
SCRATCH_MIN_IMAGES, SCRATCH_MIN_PER_CLASS = 2000, 200
LPFT_HEAD_EPOCHS = 1  # a run following LP-FT trains the head alone this long, then everything
QUICK_CANDIDATE = "fine-tune all, one LR"  # the one the quick budget tries (at low fidelity)
# the seed of a trial's initial head and batches: a short run's score moves with it by several
# points (docs/advice-validation.md); `benchmarks/advisor.py --trial-seeds` varies it
TRIAL_SEED = 0
# how long a trial warms its LR up: "run" (the run's `train.warmup_epochs` of the trial's own
# images, at most half its steps, as the engine does) or "tenth" (of its steps: some seeds'
# trials then did not train; docs/advice-validation.md)
WARMUP = "run"


@dataclass(frozen=True)
class Measured:
    """A fine-tuning trial, the held-out images it was scored on (positions in the sample) and
    its best checkpoint's predictions of them (what a paired comparison with the probe needs;
    None when no check ran)."""

    trial: Trial
    held: np.ndarray
    predictions: np.ndarray | None
    folds: int = 1  # how many folds' held-out images `held` pools


@dataclass(frozen=True)
class Candidate:
    """A fine-tuning trial to run: its name, kind and the model settings it changes."""

    name: str
    kind: str
    freeze_stages: int
    lr_decay: float
    weights: str = "pretrained"
    lr_scale: float = 1.0


def finetune_candidates(plan: RunPlan, train_images: int, median_per_class: float
                        ) -> list[Candidate]:
    """The whole network (LRs decaying per stage, and one LR: the textbook's two large cells),
    the textbook partial freeze (the lower half), LP-FT, and from scratch when the training
    split is large enough for it to have a chance."""
    n = plan.num_stages
    partial = max(1, n // 2)
    found = [Candidate("fine-tune all", "finetune", 0, DEFAULT_LR_DECAY),
             Candidate(QUICK_CANDIDATE, "finetune", 0, 1.0),
             Candidate(f"fine-tune above {plan.stage_names[partial - 1]}", "partial", partial,
                       DEFAULT_LR_DECAY),
             Candidate("LP-FT (probe, then fine-tune all)", "lpft", 0,
                       DEFAULT_LR_DECAY)]
    if train_images >= SCRATCH_MIN_IMAGES and median_per_class >= SCRATCH_MIN_PER_CLASS:
        found.append(Candidate("from scratch", "scratch", 0, 1.0, "random", 5.0))
    return found


def step_budget(train_images: int) -> tuple[int, int]:
    """(maximum steps, steps between held-out checks): about 5 epochs, 30 to 60 steps.

    Short on purpose: the trials rank the ways to train, they do not train the model; on two
    CPU cores 60 steps at 160 px take about a minute a trial, on a GPU a few seconds."""
    per_epoch = max(1, math.ceil(train_images / BATCH))
    steps = int(min(60, max(30, 5 * per_epoch)))
    return steps, max(5, steps // 6)


def candidate_plan(plan: RunPlan, index: DatasetIndex, cand: Candidate) -> RunPlan:
    """The run the candidate stands for: the user's plan (optimizer, loss, weighting, weight
    decay) with the candidate's freeze, LR decay and LR, a linear head and trained BatchNorm."""
    config = copy.deepcopy(plan.config)
    config.model.freeze_stages, config.model.lr_decay = cand.freeze_stages, cand.lr_decay
    config.train.lr = plan.config.train.lr * cand.lr_scale
    config.model.head, config.model.norm_policy = str(Head.LINEAR), str(NormPolicy.TRAIN_BN)
    if cand.weights == "random":
        config.model.weights = "random"
    return plan_run(config, index, fix=True, stages=plan.stage_names, image_side=0)


def _head_from_probe(model: Any, sample: Sample, train: np.ndarray, num_classes: int) -> None:
    """LP-FT: the new head starts as a logistic regression fitted on the last stage's pooled
    features as they are (no standardisation: folding a scaler into the weights blows up the
    ones of near-constant features, and fine-tuning from such a head diverges)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = sample.features[(model.num_stages - 1, "gap")][train].astype(np.float64)
    y = sample.labels[train]
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=0.1, max_iter=300).fit(x, y)
    coef, bias = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # binary: one score for the positive class
        coef, bias = np.vstack([-coef / 2, coef / 2]), np.r_[-bias / 2, bias / 2]
    weight = np.zeros((num_classes, x.shape[1]))
    offset = np.full(num_classes, -10.0)  # a class absent from the fold starts unlikely
    weight[clf.classes_], offset[clf.classes_] = coef, bias
    last = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.copy_(torch.as_tensor(weight, dtype=last.weight.dtype))
        last.bias.copy_(torch.as_tensor(offset, dtype=last.bias.dtype))


def optimisation(plan: RunPlan, model: Any, labels: np.ndarray, steps: int
                 ) -> tuple[torch.optim.Optimizer, Any, torch.nn.Module]:
    """Optimizer, schedule and criterion for `steps` steps on `labels`, built by the engine's
    own builders (`train.setup.build_optimizer`, `build_criterion`; `train.schedule` warming up
    as `warmup_steps` says)."""
    from workbench.train.schedule import build_scheduler
    from workbench.train.setup import build_criterion, build_optimizer

    opt = build_optimizer(plan, model)
    counts = np.bincount(labels, minlength=plan.num_classes).tolist()
    criterion = build_criterion(plan, counts).to(plan.device)
    sched = build_scheduler(opt, steps, warmup_steps(plan, len(labels), steps),
                            plan.config.train.schedule)
    return opt, sched, criterion


def warmup_steps(plan: RunPlan, train_images: int, steps: int) -> int:
    """The trial's LR warm-up in steps (`WARMUP`)."""
    if WARMUP == "run":
        per_epoch = math.ceil(train_images / BATCH)
        return min(steps // 2, round(plan.config.train.warmup_epochs * per_epoch))
    return steps // 10


def _predict(model: Any, images: torch.Tensor, device: str) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), 2 * BATCH):
            out.append(model(images[start:start + 2 * BATCH].float().to(device)).argmax(1).cpu())
    return torch.cat(out).numpy()


def finetune_trial(plan: RunPlan, sample: Sample, folds: Folds, cand: Candidate,
                   stop: threading.Event | None = None, fold: int = 0
                   ) -> Iterator[AdviceProgress | Measured]:
    """Train on `fold`'s training part for a step budget, check its held-out part every few
    steps, stop early when it stops improving; yields progress, then the `Measured` trial.

    `plan` is the candidate's (`candidate_plan`): the optimizer and the criterion come from the
    engine's own builders, so the trial trains the way the run it predicts would."""
    started = time.perf_counter()
    test, train = folds.held_out(fold), folds.training(fold)
    y = torch.as_tensor(sample.labels).long()
    torch.manual_seed(TRIAL_SEED)
    model = plan.build_model().to(plan.device)
    if cand.kind == "lpft":
        _head_from_probe(model, sample, train, plan.num_classes)
    lr = plan.config.train.lr
    steps, every = step_budget(len(train))
    opt, sched, loss_fn = optimisation(plan, model, sample.labels[train], steps)
    rng = np.random.default_rng(TRIAL_SEED)
    best, best_pred, stale = -1.0, None, 0
    for step in range(1, steps + 1):
        if stop is not None and stop.is_set():
            raise Cancelled("trials stopped")
        model.train()
        batch = rng.choice(train, size=min(BATCH, len(train)), replace=len(train) < BATCH)
        loss = loss_fn(model(sample.images[batch].float().to(plan.device)),
                       y[batch].to(plan.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if not math.isfinite(loss.item()):
            break  # diverged: the best held-out score so far stands
        if step % every == 0 or step == steps:
            pred = _predict(model, sample.images[test], plan.device)
            value, _ = score(sample.labels[test], pred)
            best, best_pred, stale = ((value, pred, 0) if value > best else
                                      (best, best_pred, stale + 1))
            yield AdviceProgress(f"trial: {cand.name}", step, steps)
            if stale >= 3:
                break
    value, spread = (score(sample.labels[test], best_pred) if best_pred is not None
                     else (None, 0.0))
    yield Measured(Trial(
        name=cand.name, kind=cand.kind, freeze_stages=cand.freeze_stages,
        feature_stage=plan.num_stages - 1, head=str(Head.LINEAR), input_size=plan.input_size,
        score=value, spread=spread, seconds=time.perf_counter() - started,
        norm_policy=str(NormPolicy.TRAIN_BN), lr=lr, lr_decay=cand.lr_decay,
        weights=cand.weights,
        unfreeze_after_epochs=LPFT_HEAD_EPOCHS if cand.kind == "lpft" else 0,
        note=(f"{steps} steps at most" + (
            f"; the trial's head starts as a fitted probe, a run trains it alone for "
            f"{LPFT_HEAD_EPOCHS} epoch (train.unfreeze_after_epochs)" if cand.kind == "lpft"
            else ""))), test, best_pred)


