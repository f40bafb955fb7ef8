"""The advisor: measure where a dataset sits on the rule-of-thumb matrix, and what to do there.

`iter_advice(index, config)` samples training images (stratified, seeded), runs ONE forward pass
of the pretrained backbone over them with hooks that collect, at the same time, the BatchNorm
input statistics (similarity), pooled stage outputs (linear probe) and the ImageNet logits (NCE,
LEEP); then cross-validates the probe, places the dataset in a cell and picks its strategy.

The pass runs at the weights' own input size whatever `data.input_size` says: ImageNet's BN
statistics were gathered at that size, and a smaller input shifts them for every dataset (see
docs/advice-calibration.md), which would confound resolution with domain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from workbench.advice.events import AdviceProgress
from workbench.advice.matrix import (
    LINEAR_HEADS,
    Strategy,
    cell_for_config,
    classify,
    size_label,
    strategy_for,
)
from workbench.advice.probe import (
    ProbeResult,
    StageFeatureCollector,
    iter_probe,
    probe_stages,
)
from workbench.advice.sampling import relay, sample_loader, stratified_sample
from workbench.advice.similarity import BNDivergence, BNStatsCollector, unavailable
from workbench.advice.transferability import leep, nce, softmax
from workbench.advice.trials import Budget, TrialsReport, iter_trials
from workbench.advice.verdict import recommend, recommended_strategy
from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.devices import cpu_threads
from workbench.errors import Cancelled, UserError
from workbench.models.fusion import inference_layout
from workbench.plan import RunPlan, plan_run

__all__ = ["AdviceProgress", "AdviceReport", "iter_advice", "run_advice", "stratified_sample"]



@dataclass(frozen=True)
class AdviceReport:
    """Everything the advisor measured and what it recommends."""

    backbone: str
    images_per_class: dict[str, float]
    similarity: dict[str, float | None]  # bn_divergence, nce, leep, probe_best_acc
    bn_profile: BNDivergence
    probe: ProbeResult
    cell: str
    cell_source: str  # "measured", or "your settings" when similarity cannot be measured
    strategy: Strategy
    num_stages: int
    stage_names: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    sample: dict[str, int] = field(default_factory=dict)  # images, classes, skipped, input_size
    seconds: float = 0.0
    trials: TrialsReport | None = None  # the measured evidence; None: not asked for
    recommended: dict[str, object] = field(default_factory=dict)  # the settings to apply
    verdict: str = ""  # the textbook cell against the measured pick, in one sentence

    @property
    def freeze_stages(self) -> int:
        """How many bottom stages the recommendation freezes (the pick, else the cell's)."""
        return int(self.recommended.get("freeze_stages", self.strategy.freeze_stages))

    @property
    def recommended_strategy(self) -> Strategy:
        """The recommendation as a `Strategy`: the measured pick, else the textbook cell's."""
        return recommended_strategy(self.strategy, self.trials, self.recommended, self.verdict)

    def to_json(self) -> dict[str, object]:
        """The `workbench advise --json` object (docs/cli.md contract, plus the evidence)."""
        return {
            "backbone": self.backbone,
            "images_per_class": self.images_per_class,
            "similarity": self.similarity,
            "cell": self.cell,
            "cell_source": self.cell_source,
            "strategy": self.recommended_strategy.title,
            "strategy_detail": {**self.recommended_strategy.to_dict(),
                                "input_size": self.recommended.get("input_size")},
            "freeze_stages": self.freeze_stages,
            "num_stages": self.num_stages,
            "stage_names": self.stage_names,
            "bn_profile": self.bn_profile.per_stage,
            "bn_divergence": self.bn_profile.to_dict(),
            "probe": self.probe.to_dict(),
            "thresholds": self.thresholds,
            "sample": self.sample,
            "seconds": round(self.seconds, 2),
            "textbook": self.strategy.to_dict(),
            "verdict": self.verdict,
            "trials": [t.to_dict() for t in self.trials.trials] if self.trials else [],
            "trials_summary": self.trials.to_dict() | {"trials": None} if self.trials else None,
            "recommended": self.recommended,
        }


def _check_classes(index: DatasetIndex, train_idx: list[int]) -> None:
    present = {index.labels[i] for i in train_idx}
    if len(present) < 2:
        raise UserError(
            f"{index.root}: the advisor needs at least two classes with training images, "
            f"found {len(present)}"
        )


def _pretrained_plan(index: DatasetIndex, config: RunConfig) -> RunPlan:
    """The plan the advisor measures with; refused unless the backbone starts pretrained."""
    plan = plan_run(config, index, fix=True)
    if not plan.pretrained:
        raise UserError(
            f"advice needs pretrained weights for {plan.backbone}, not {plan.weights_spec!r}: "
            "similarity is measured against what the weights learned on ImageNet"
        )
    return plan


@dataclass
class FeaturePass:
    """What the single shared forward pass collected."""

    bn: BNDivergence
    features: dict[tuple[int, str], np.ndarray]
    logits: np.ndarray
    labels: np.ndarray
    skipped: int


def iter_feature_pass(
    model: torch.nn.Module, batches: Iterable, device: torch.device, stages: list[int],
    total: int = 0, stop: threading.Event | None = None,
) -> Iterator[AdviceProgress | FeaturePass]:
    """One eval-mode, no-grad pass collecting BN input moments, pooled stage outputs and logits.

    `batches` yields `(images, labels[, skipped])`. Raises `Cancelled` when `stop` is set.
    """
    model.eval()
    logits, labels, skipped = [], [], 0
    bn = BNStatsCollector(model)
    with bn, StageFeatureCollector(model, stages) as feats, torch.inference_mode():
        for done, batch in enumerate(batches, start=1):
            if stop is not None and stop.is_set():
                raise Cancelled("advice stopped")
            skipped += int(batch[2]) if len(batch) > 2 else 0
            if len(batch[0]) == 0:
                continue
            logits.append(model(batch[0].to(device, non_blocking=True)).float().cpu())
            labels.append(batch[1])
            yield AdviceProgress("features", done, total)
    if not labels:
        raise UserError("none of the sampled images could be loaded")
    yield FeaturePass(
        bn=bn.result() if bn.layers else unavailable(getattr(model, "norm_type", "LayerNorm")),
        features=feats.features(), logits=torch.cat(logits).numpy(),
        labels=torch.cat(labels).numpy(), skipped=skipped,
    )


def iter_advice(
    index: DatasetIndex, config: RunConfig, stop: threading.Event | None = None, *,
    input_size: int = 0, budget: Budget | str = Budget.QUICK, trial_images: int | None = None,
) -> Iterator[AdviceProgress | AdviceReport]:
    """Measure size, similarity, transferability and the probe, then run the budget's trials;
    yield progress, then the report.

    `input_size` 0 measures similarity at the weights' own size, which the threshold is
    calibrated for, and runs the trials at the size the user will train at
    (`data.input_size`); a smaller size (quicker, for tests) is used for both when
    `data.input_size` is 0. `trial_images`: training images the trials sample (default: the
    budget's). Raises `UserError` for a dataset with fewer than two classes or a backbone
    without pretrained weights on disk; returns without a report when `stop` is set.
    """
    from workbench.data.stats import dataset_stats

    started = time.perf_counter()
    config.validate()
    if stop is not None and stop.is_set():
        return
    sample_idx = _sample(index, config)
    plan = _pretrained_plan(index, config)
    device = torch.device(plan.device)
    model = plan.build_model(num_classes=None)  # the ImageNet head, for NCE and LEEP
    size = input_size or plan.native_input_size
    loader = sample_loader(index, sample_idx, plan, size)
    stages = probe_stages(model.num_stages)
    try:
        with cpu_threads(device):
            passed = yield from relay(
                iter_feature_pass(inference_layout(model.to(device)), loader, device, stages,
                                  len(loader), stop),
                FeaturePass)
            probe = yield from relay(iter_probe(passed.features, passed.labels, stop=stop),
                                      ProbeResult)
        ipc = dataset_stats(index).images_per_class
        trials = yield from relay(iter_trials(
            index, _trial_config(config, input_size), budget, stop,
            median_per_class=ipc["median"], images=trial_images), TrialsReport)
    except Cancelled:
        return
    if probe is None or trials is None or (stop is not None and stop.is_set()):
        return
    report = _report(model, config, ipc, passed, probe, time.perf_counter() - started, size)
    yield recommend(report, trials, config)


def _trial_config(config: RunConfig, input_size: int) -> RunConfig:
    """The config the trials plan with: the user's size, else the measuring size if given."""
    import copy

    if config.data.input_size or not input_size:
        return config
    config = copy.deepcopy(config)
    config.data.input_size = input_size
    return config


def _sample(index: DatasetIndex, config: RunConfig) -> list[int]:
    """Positions (in the index) of the stratified, seeded sample of training images."""
    train_idx = index.indices(index.training_split())
    _check_classes(index, train_idx)
    picked = stratified_sample([index.labels[i] for i in train_idx], config.advice.sample_size,
                               seed=config.data.split_seed)
    return [train_idx[i] for i in picked]


def _report(model, config: RunConfig, ipc: dict[str, float], passed: FeaturePass,
            probe: ProbeResult, seconds: float, input_size: int = 0) -> AdviceReport:
    """The report from what was measured; the cell falls back to the user's without BN."""
    bn = passed.bn
    cell, source = _choose_cell(ipc["median"], bn.mean, config, model.num_stages)
    head = config.model.head if config.model.head in LINEAR_HEADS else "logreg"
    strategy = strategy_for(cell, model.num_stages, probe=probe, head=head)
    return AdviceReport(
        backbone=config.model.backbone, images_per_class=ipc,
        similarity=_similarity(passed, probe),
        bn_profile=bn, probe=probe, cell=cell, cell_source=source, strategy=strategy,
        num_stages=model.num_stages, stage_names=list(model.stage_names),
        thresholds={"small_images_per_class": config.advice.small_images_per_class,
                    "similarity_threshold": config.advice.similarity_threshold},
        sample={"images": int(len(passed.labels)), "skipped": passed.skipped,
                "classes": int(len(np.unique(passed.labels))), "input_size": input_size},
        seconds=seconds,
    )


def _similarity(passed: FeaturePass, probe: ProbeResult) -> dict[str, float | None]:
    """Every measure by name: the similarity axis first, then the evidence beside it."""
    probs = softmax(passed.logits)
    best = probe.best
    return {
        "bn_divergence": passed.bn.mean,
        "nce": nce(probs, passed.labels),
        "leep": leep(probs, passed.labels),
        "probe_best_acc": best.accuracy if best else None,
    }


def _choose_cell(median: float, divergence: float | None, config: RunConfig,
                 num_stages: int) -> tuple[str, str]:
    """(cell, where it came from): measured, or the user's settings when BN is unavailable."""
    if divergence is not None:
        return classify(median, divergence, config.advice), "measured"
    # no BN statistics: keep the user's own cell when the settings are one; otherwise assume
    # "similar" (they chose ImageNet weights) on the measured size axis; the report says so
    mine = cell_for_config(config.model, num_stages)
    return mine or f"similar-{size_label(median, config.advice)}", "your settings"


def run_advice(index: DatasetIndex, config: RunConfig, on_progress=None, *,
               budget: Budget | str = Budget.QUICK, trial_images: int | None = None,
               input_size: int = 0) -> AdviceReport:
    """`iter_advice` run to the end; `on_progress(event)` sees each progress event."""
    for event in iter_advice(index, config, budget=budget, trial_images=trial_images,
                             input_size=input_size):
        if isinstance(event, AdviceReport):
            return event
        if on_progress is not None:
            on_progress(event)
    raise Cancelled("advice stopped")
