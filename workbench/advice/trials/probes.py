"""Probe trials: one no-grad pass of the backbone over the sample (every stage's pooled output),
then a linear probe per (stage, pooling) scored on held-out folds; and the same probe at a
larger input, for the size hint."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator

import numpy as np
import torch

import workbench.advice.trials.cache as cache
from workbench.advice.events import AdviceProgress
from workbench.advice.holdout import Folds, probe_predictions, score
from workbench.advice.probe import StageFeatureCollector
from workbench.advice.sampling import relay, sample_loader
from workbench.advice.trials.cache import Sample
from workbench.advice.trials.report import Trial
from workbench.config import Head, NormPolicy
from workbench.data.index import DatasetIndex
from workbench.errors import Cancelled, UserError
from workbench.models.fusion import fused_for_inference
from workbench.plan import RunPlan, plan_run


def feature_pass(model: torch.nn.Module | None, index: DatasetIndex, positions: list[int],
                 plan: RunPlan, keep_images: bool, stop: threading.Event | None
                 ) -> Iterator[AdviceProgress | Sample]:
    """Pooled outputs of every stage (and the input tensors when asked), in one no-grad pass;
    without a model, the input tensors alone (the features came from the cache)."""
    loader = sample_loader(index, positions, plan, plan.input_size)
    labels, images, skipped = [], [], 0
    stages = [] if model is None else list(range(model.num_stages))
    what = "trial features" if model is not None else "trial images"
    with StageFeatureCollector(model, stages) as feats, torch.inference_mode():
        for done, (x, y, bad) in enumerate(loader, start=1):
            if stop is not None and stop.is_set():
                raise Cancelled("trials stopped")
            skipped += int(bad)
            if len(y):
                if model is not None:
                    model.eval().forward_features(x.to(plan.device))
                labels.append(y)
                if keep_images:
                    images.append(x.half())
            yield AdviceProgress(what, done, len(loader))
    if not labels:
        raise UserError("none of the sampled images could be loaded")
    yield Sample(feats.features() if model is not None else {}, torch.cat(labels).numpy(),
                 torch.cat(images) if keep_images else None, skipped)


# -- probes ---------------------------------------------------------------------------------------
def probe_trials(sample: Sample, folds: Folds, plan: RunPlan, stop: threading.Event | None
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



def sample_features(index: DatasetIndex, plan: RunPlan, positions: list[int], keep_images: bool,
                    stop: threading.Event | None) -> Iterator[AdviceProgress | Sample]:
    """The sample's features, from the cache when measured before (with the input tensors too
    when `keep_images`: one pass that only loads images), else one pass of the backbone."""
    key = cache.feature_key(index, positions, plan)
    found = cache.load_features(key)
    if found is not None and keep_images:
        loaded = yield from relay(feature_pass(None, index, positions, plan, True, stop), Sample)
        if np.array_equal(loaded.labels, found.labels):
            found.images = loaded.images
        else:  # an image loads differently now: measure again
            found = None
    if found is not None:
        yield found
        return
    model = fused_for_inference(plan.build_model(num_classes=None).to(plan.device))
    for event in feature_pass(model, index, positions, plan, keep_images, stop):
        if isinstance(event, Sample):
            cache.save_features(key, event)
        yield event


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


def larger_size_trial(index: DatasetIndex, plan: RunPlan, positions: list[int], folds: Folds,
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
    sample = yield from relay(sample_features(index, big, positions, False, stop), Sample)
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
