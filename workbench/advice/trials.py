"""Trials: the advisor's candidates scored on held-out training images, and the pick.

A trial is a run plan with a budget. The advisor samples the training split (stratified, seeded),
runs the pretrained backbone over it once at the input size the user will train at, and scores:

- linear probes (logistic regression, C chosen inside each fold) on the pooled output of every
  stage, averaged (GAP) and on a 2x2 grid, k-fold over the sample (`quick` and `thorough`);
- short fine-tuning runs on one fold (`thorough` only): the whole network, the textbook partial
  freeze, LP-FT (the probe's head first), from scratch when the set is large enough; a step budget,
  early stopping on the held-out fold, BatchNorm trained.

The pick is the best held-out score unless a cheaper candidate is within its uncertainty. Pooled
features and results are cached (`paths.cache_dir()/advice/`): asking again is instant.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import torch

from workbench import paths
from workbench.advice.events import AdviceProgress
from workbench.advice.holdout import Folds, make_folds, probe_predictions, score
from workbench.advice.probe import StageFeatureCollector
from workbench.advice.sampling import relay, sample_loader, stratified_sample
from workbench.config import DEFAULT_LR_DECAY, Head, NormPolicy, RunConfig
from workbench.data.index import DatasetIndex, file_stamps
from workbench.devices import cpu_threads
from workbench.errors import Cancelled, UserError
from workbench.plan import RunPlan, plan_run

VERSION = 3  # bump when what a cached result means changes (the trials run, their names)
FEATURES_VERSION = 1  # bump when what cached features mean changes
BATCH = 32
# Candidates' relative cost of the run they stand for (a cheaper one wins within the spread).
COST = {"probe": 1.0, "partial": 2.0, "finetune": 3.0, "lpft": 3.5, "scratch": 4.0}
SCRATCH_MIN_IMAGES, SCRATCH_MIN_PER_CLASS = 2000, 200


class Budget(StrEnum):
    """How much the advisor may spend: probes only, or probes and short fine-tuning runs."""

    QUICK = "quick"
    THOROUGH = "thorough"


SAMPLE = {Budget.QUICK: 1000, Budget.THOROUGH: 1000}  # training images the trials look at
# ... or four times `advice.sample_size` (the similarity sample) when that is fewer: 1000 for
# the default 256, a few dozen for the tests' 16
TRIALS_PER_SAMPLE = 4


@dataclass(frozen=True)
class Trial:
    """One candidate and its held-out score (balanced accuracy, 0..1) with a bootstrap spread."""

    name: str
    kind: str  # "probe", "partial", "finetune", "lpft", "scratch"
    freeze_stages: int
    feature_stage: int
    head: str
    input_size: int
    score: float | None
    spread: float
    seconds: float
    pooling: str = "gap"
    norm_policy: str = str(NormPolicy.TRAIN_BN)
    lr: float = 0.01
    lr_decay: float = DEFAULT_LR_DECAY
    weights: str = "pretrained"
    pickable: bool = True  # a run can follow it (2x2 pooling and LP-FT are evidence only)
    note: str = ""

    @property
    def cost(self) -> float:
        """Relative cost of the run it stands for."""
        return COST[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """The `trials` entry of `advise --json` (the contract's keys first)."""
        return {"name": self.name, "freeze_stages": self.freeze_stages,
                "feature_stage": self.feature_stage, "head": self.head,
                "input_size": self.input_size,
                "score": None if self.score is None else round(self.score, 4),
                "spread": round(self.spread, 4), "seconds": round(self.seconds, 2),
                "kind": self.kind, "pooling": self.pooling, "pickable": self.pickable,
                "norm_policy": self.norm_policy, "lr": self.lr, "lr_decay": self.lr_decay,
                "weights": self.weights, "note": self.note}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Trial:
        """Back from `to_dict` (the result cache)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def settings(self) -> dict[str, Any]:
        """The run settings this trial stands for (what `apply_settings` writes)."""
        return {"freeze_stages": self.freeze_stages, "feature_stage": self.feature_stage,
                "head": self.head, "norm_policy": self.norm_policy, "lr": self.lr,
                "lr_decay": self.lr_decay, "input_size": self.input_size,
                "weights": self.weights}


@dataclass(frozen=True)
class TrialsReport:
    """Every trial, the pick, and how the held-out part was drawn."""

    budget: str
    trials: tuple[Trial, ...] = ()
    pick: Trial | None = None
    folds: int = 0
    images: int = 0  # training images sampled for the trials
    input_size: int = 0
    message: str = ""  # what was left out, or why there is no evidence
    size_hint: str = ""  # when a larger input would pay
    seconds: float = 0.0
    cached: bool = False

    @property
    def has_evidence(self) -> bool:
        """True when at least one trial scored and a pick was made."""
        return self.pick is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (also what the result cache stores)."""
        return {"budget": self.budget, "trials": [t.to_dict() for t in self.trials],
                "pick": self.pick.name if self.pick else None, "folds": self.folds,
                "images": self.images, "input_size": self.input_size, "message": self.message,
                "size_hint": self.size_hint, "seconds": round(self.seconds, 2)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialsReport:
        """Back from `to_dict` (marked cached)."""
        trials = tuple(Trial.from_dict(t) for t in raw["trials"])
        pick = next((t for t in trials if t.name == raw.get("pick")), None)
        return cls(raw["budget"], trials, pick, raw["folds"], raw["images"], raw["input_size"],
                   raw["message"], raw.get("size_hint", ""), raw["seconds"], cached=True)


def choose(trials: tuple[Trial, ...] | list[Trial]) -> Trial | None:
    """The best held-out score, unless a cheaper candidate is within its spread (the cheapest
    such, then the higher score). Only trials a run can follow are picked."""
    scored = [t for t in trials if t.pickable and t.score is not None and math.isfinite(t.score)]
    if not scored:
        return None
    best = max(scored, key=lambda t: (t.score, -t.cost, -t.feature_stage))
    close = [t for t in scored if t.cost < best.cost and t.score >= best.score - best.spread]
    if not close:
        return best
    return min(close, key=lambda t: (t.cost, -t.score))


def apply_settings(settings: dict[str, Any], config: RunConfig) -> RunConfig:
    """A copy of `config` with the recommended settings applied (model, LR, input size)."""
    config = copy.deepcopy(config)
    m = config.model
    m.freeze_stages, m.feature_stage = settings["freeze_stages"], settings["feature_stage"]
    m.head, m.norm_policy = settings["head"], settings["norm_policy"]
    m.lr_decay = settings["lr_decay"]
    if settings.get("weights") == "random":
        m.weights = "random"
    config.train.lr = settings["lr"]
    config.data.input_size = settings["input_size"]
    return config.validate()


# -- the sample, its features and the cache ------------------------------------------------------

@dataclass
class Sample:
    """The sampled training images as the backbone saw them: pooled features per (stage,
    pooling), labels, and (for fine-tuning trials) the input tensors."""

    features: dict[tuple[int, str], np.ndarray]
    labels: np.ndarray
    images: torch.Tensor | None = None
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _key(index: DatasetIndex, positions: list[int], plan: RunPlan, what: str) -> str:
    files = file_stamps(index, positions)
    recipe = {"files": files, "backbone": plan.backbone, "weights": plan.weights_spec,
              "file": plan.weights_file, "size": plan.input_size, "what": what,
              "version": FEATURES_VERSION if what == "features" else VERSION,
              "lr": plan.config.train.lr,
              "weighting": plan.config.data.loss_weighting}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:32]


def _cache(name: str) -> os.PathLike[str]:
    return paths.cache_dir() / "advice" / name


def _load_features(key: str) -> Sample | None:
    file = _cache(f"{key}.npz")
    if not os.path.isfile(file):
        return None
    try:
        with np.load(file) as data:
            feats = {(int(k.split("_")[1]), k.split("_", 2)[2]): data[k]
                     for k in data.files if k.startswith("f_")}
            return Sample(feats, data["labels"], skipped=int(data["skipped"]))
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache file is recomputed


def _save_features(key: str, sample: Sample) -> None:
    file = _cache(f"{key}.npz")
    os.makedirs(os.path.dirname(file), exist_ok=True)
    arrays = {f"f_{s}_{p}": v for (s, p), v in sample.features.items()}
    tmp = f"{file}.tmp.npz"
    np.savez(tmp, labels=sample.labels, skipped=sample.skipped, **arrays)
    os.replace(tmp, file)


def _load_result(key: str) -> TrialsReport | None:
    file = _cache(f"{key}.json")
    try:
        with open(file, encoding="utf-8") as f:
            return TrialsReport.from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_result(key: str, report: TrialsReport) -> None:
    file = _cache(f"{key}.json")
    os.makedirs(os.path.dirname(file), exist_ok=True)
    tmp = f"{file}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report.to_dict(), f)
    os.replace(tmp, file)


def _feature_pass(model: torch.nn.Module, index: DatasetIndex, positions: list[int],
                  plan: RunPlan, keep_images: bool, stop: threading.Event | None
                  ) -> Iterator[AdviceProgress | Sample]:
    """Pooled outputs of every stage (and the input tensors when asked), in one no-grad pass."""

    loader = sample_loader(index, positions, plan, plan.input_size)
    model.eval()
    labels, images, skipped = [], [], 0
    stages = list(range(model.num_stages))
    with StageFeatureCollector(model, stages) as feats, torch.inference_mode():
        for done, (x, y, bad) in enumerate(loader, start=1):
            if stop is not None and stop.is_set():
                raise Cancelled("trials stopped")
            skipped += int(bad)
            if len(y):
                model.forward_features(x.to(plan.device))
                labels.append(y)
                if keep_images:
                    images.append(x.half())
            yield AdviceProgress("trial features", done, len(loader))
    if not labels:
        raise UserError("none of the sampled images could be loaded")
    yield Sample(feats.features(), torch.cat(labels).numpy(),
                 torch.cat(images) if keep_images else None, skipped)


# -- probes ---------------------------------------------------------------------------------------

def _probe_trials(sample: Sample, folds: Folds, plan: RunPlan, stop: threading.Event | None
                  ) -> Iterator[AdviceProgress | Trial]:
    keys = sorted(sample.features)
    held = folds.assignment >= 0
    for done, (stage, pooling) in enumerate(keys, start=1):
        if stop is not None and stop.is_set():
            raise Cancelled("trials stopped")
        started = time.perf_counter()
        pred, _ = probe_predictions(sample.features[(stage, pooling)], sample.labels, folds)
        value, spread = score(sample.labels[held], pred[held])
        words = "average" if pooling == "gap" else "2x2 grid"
        yield Trial(
            name=f"probe {plan.stage_names[stage]} ({words})", kind="probe",
            freeze_stages=plan.num_stages, feature_stage=stage, head=str(Head.LOGREG),
            input_size=plan.input_size, score=value, spread=spread,
            seconds=time.perf_counter() - started, pooling=pooling,
            norm_policy=str(NormPolicy.FROZEN_BN), lr=plan.config.train.lr,
            pickable=pooling == "gap",
            note="" if pooling == "gap" else "evidence only: runs pool features by averaging")
        yield AdviceProgress("probes", done, len(keys))


# -- fine-tuning trials ---------------------------------------------------------------------------

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
             Candidate("fine-tune all, one LR", "finetune", 0, 1.0),
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


def _trial_plan(plan: RunPlan, index: DatasetIndex, cand: Candidate) -> RunPlan:
    config = copy.deepcopy(plan.config)
    config.model.freeze_stages, config.model.lr_decay = cand.freeze_stages, cand.lr_decay
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


def _predict(model: Any, images: torch.Tensor, device: str) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), 2 * BATCH):
            out.append(model(images[start:start + 2 * BATCH].float().to(device)).argmax(1).cpu())
    return torch.cat(out).numpy()


def finetune_trial(plan: RunPlan, sample: Sample, folds: Folds, cand: Candidate,
                   stop: threading.Event | None = None) -> Iterator[AdviceProgress | Trial]:
    """Train on fold 0's training part for a step budget, check the held-out part every few
    steps, stop early when it stops improving; yields progress, then the `Trial`."""
    from workbench.train.losses import class_weights
    from workbench.train.schedule import build_scheduler

    started = time.perf_counter()
    test, train = folds.held_out(0), folds.training(0)
    y = torch.as_tensor(sample.labels).long()
    torch.manual_seed(0)
    model = plan.build_model().to(plan.device)
    if cand.kind == "lpft":
        _head_from_probe(model, sample, train, plan.num_classes)
    lr = plan.config.train.lr * cand.lr_scale
    opt = torch.optim.SGD(model.param_groups(lr, cand.lr_decay), lr=lr, momentum=0.9,
                          nesterov=True, weight_decay=plan.config.train.weight_decay)
    steps, every = step_budget(len(train))
    sched = build_scheduler(opt, steps, steps // 10)
    counts = np.bincount(sample.labels[train], minlength=plan.num_classes).tolist()
    weights = class_weights(counts, plan.config.data.loss_weighting, plan.config.data.beta)
    loss_fn = torch.nn.CrossEntropyLoss(weight=None if weights is None else
                                        weights.to(plan.device))
    rng = np.random.default_rng(0)
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
    yield Trial(
        name=cand.name, kind=cand.kind, freeze_stages=cand.freeze_stages,
        feature_stage=plan.num_stages - 1, head=str(Head.LINEAR), input_size=plan.input_size,
        score=value, spread=spread, seconds=time.perf_counter() - started,
        norm_policy=str(NormPolicy.TRAIN_BN), lr=lr, lr_decay=cand.lr_decay,
        weights=cand.weights, pickable=cand.kind != "lpft",
        note=("evidence only: a run starts fine-tuning from a new head" if cand.kind == "lpft"
              else f"{steps} steps at most, one fold"))


# -- the whole set of trials ----------------------------------------------------------------------

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


def _positions(index: DatasetIndex, config: RunConfig, budget: Budget,
               images: int | None = None) -> list[int]:

    train_idx = index.indices(index.training_split())
    images = images or min(SAMPLE[budget], TRIALS_PER_SAMPLE * config.advice.sample_size)
    picked = stratified_sample([index.labels[i] for i in train_idx], images,
                               seed=config.data.split_seed, floor=1)
    return [train_idx[i] for i in picked]


def _no_evidence(budget: Budget, plan: RunPlan | None, message: str) -> TrialsReport:
    return TrialsReport(str(budget), input_size=plan.input_size if plan else 0,
                        message=f"no evidence: textbook cell ({message})")


def iter_trials(index: DatasetIndex, config: RunConfig, budget: Budget | str = Budget.QUICK,
                stop: threading.Event | None = None, *, plan: RunPlan | None = None,
                median_per_class: float = 0.0, images: int | None = None
                ) -> Iterator[AdviceProgress | TrialsReport]:
    """Run the budget's trials on `images` sampled training images (default: the budget's, at
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
    positions = _positions(index, config, budget, images)
    key = _key(index, positions, plan, str(budget))
    cached = _load_result(key)
    if cached is not None:
        yield cached
        return

    with cpu_threads(torch.device(plan.device)):
        report = yield from _measure(index, plan, positions, budget, stop, median_per_class)
    report = dataclasses.replace(report, seconds=time.perf_counter() - started)
    if report.trials:
        _save_result(key, report)
    yield report


def _measure(index: DatasetIndex, plan: RunPlan, positions: list[int], budget: Budget,
             stop: threading.Event | None, median_per_class: float
             ) -> Iterator[AdviceProgress | TrialsReport]:

    sample = yield from relay(_sample(index, plan, positions, budget, stop), Sample)
    try:
        folds = make_folds(sample.labels, max_folds=5 if len(sample.labels) <= 500 else 3)
    except UserError as exc:
        return _no_evidence(budget, plan, str(exc))
    trials: list[Trial] = []
    for event in _probe_trials(sample, folds, plan, stop):
        yield from _collect(event, trials)
    if budget == Budget.THOROUGH:
        train_images = len(index.indices(index.training_split()))
        for cand in finetune_candidates(plan, train_images, median_per_class):
            for event in finetune_trial(_trial_plan(plan, index, cand), sample, folds, cand,
                                        stop):
                yield from _collect(event, trials)
    pick, hint = choose(trials), ""
    if budget == Budget.THOROUGH and pick is not None:
        larger = yield from _larger_size(index, plan, positions, folds, pick, stop)
        base = next((t for t in trials if t.kind == "probe" and t.pooling == "gap"
                     and larger is not None and t.feature_stage == larger.feature_stage), None)
        if larger is not None and base is not None:
            trials.append(larger)
            hint = size_hint(base, larger)
    return TrialsReport(str(budget), tuple(trials), pick, folds.k, len(sample.labels),
                        plan.input_size, _left_out(folds, sample, plan), hint)


def larger_size(plan: RunPlan) -> int | None:
    """The input size worth trying next: twice the planned one, at most the weights' own."""
    size = min(plan.native_input_size, 2 * plan.input_size)
    return size if size > plan.input_size else None


def size_hint(base: Trial, larger: Trial) -> str:
    """One sentence from the numbers: what the larger input gave the same frozen probe."""
    gain = 100 * ((larger.score or 0.0) - (base.score or 0.0))
    if larger.score is not None and larger.score - larger.spread > (base.score or 0.0):
        return (f"a larger input would pay: at {larger.input_size} px the {base.name} scores "
                f"{gain:+.0f} points on the held-out images (about "
                f"{(larger.input_size / base.input_size) ** 2:.0f}x the compute)")
    return (f"{larger.input_size} px input gave the {base.name} {gain:+.0f} points: "
            f"{base.input_size} px is enough")


def _larger_size(index: DatasetIndex, plan: RunPlan, positions: list[int], folds: Folds,
                 pick: Trial, stop: threading.Event | None
                 ) -> Iterator[AdviceProgress | Trial | None]:
    """The best average-pooled probe again at a larger input (the features of one more pass)."""

    size = larger_size(plan)
    if size is None:
        return None
    config = copy.deepcopy(plan.config)
    config.data.input_size = size
    big = plan_run(config, index, fix=True, stages=plan.stage_names, image_side=0)
    stage = pick.feature_stage if pick.kind == "probe" else plan.num_stages - 1
    started = time.perf_counter()
    sample = yield from relay(_sample(index, big, positions, Budget.QUICK, stop), Sample)
    held = folds.assignment >= 0
    if len(sample.labels) != len(folds.assignment):
        return None  # an image failed to load at one size only: the folds no longer line up
    pred, _ = probe_predictions(sample.features[(stage, "gap")], sample.labels, folds)
    value, spread = score(sample.labels[held], pred[held])
    return Trial(f"probe {plan.stage_names[stage]} (average) at {size} px",
                 "probe", plan.num_stages, stage, str(Head.LOGREG), size, value, spread,
                 time.perf_counter() - started, norm_policy=str(NormPolicy.FROZEN_BN),
                 lr=plan.config.train.lr, pickable=False,
                 note="evidence only: how much a larger input gives the frozen features")


def _collect(event: AdviceProgress | Trial, trials: list[Trial]) -> Iterator[AdviceProgress]:
    if isinstance(event, Trial):
        trials.append(event)
    else:
        yield event


def _sample(index: DatasetIndex, plan: RunPlan, positions: list[int], budget: Budget,
            stop: threading.Event | None) -> Iterator[AdviceProgress | Sample]:
    """The sample's features: from the cache for probes alone, else one pass (kept images)."""
    key = _key(index, positions, plan, "features")
    keep = budget == Budget.THOROUGH
    if not keep:
        found = _load_features(key)
        if found is not None:
            yield found
            return
    model = plan.build_model(num_classes=None).to(plan.device)
    for event in _feature_pass(model, index, positions, plan, keep, stop):
        if isinstance(event, Sample):
            _save_features(key, event)
        yield event


def _left_out(folds: Folds, sample: Sample, plan: RunPlan) -> str:
    parts = []
    if folds.kept_in_training:
        names = ", ".join(plan.class_names[c] for c in folds.kept_in_training[:5])
        parts.append(f"classes with one training image are never held out ({names})")
    if sample.skipped:
        parts.append(f"{sample.skipped} images could not be loaded")
    return "; ".join(parts)
