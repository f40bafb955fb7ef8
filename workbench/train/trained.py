"""A finished run's model, rebuilt from its run directory: the plan, the weights, one classifier.

`load_trained(run_dir, checkpoint="best")` reads the run's `config.toml` and checkpoint, plans
the run again (same preprocessing, same stages; the class names come from the checkpoint, so no
dataset is needed) and returns a `TrainedModel` whose `classifier` is ONE `nn.Module` from a
normalized image batch to logits, whatever the head was:

- a linear head (fine-tuned or trained on cached features): the `TransferModel` itself;
- a scikit-learn head (logistic regression / SVM, stored as the equivalent Linear layer,
  `probe_head`): the stages up to `feature_stage`, global average pooling, then that Linear.

Predict, evaluate and export all go through it, so they cannot disagree about what a run is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import UserError
from workbench.plan import RunPlan, plan_run
from workbench.train.checkpoints import load_checkpoint
from workbench.train.runpaths import CHECKPOINTS, CONFIG_NAME, RunPaths


class PooledStageClassifier(nn.Module):
    """Stages 0..`stage` of a `TransferModel`, global average pooling, then a Linear layer."""

    def __init__(self, model: nn.Module, stage: int, head: nn.Linear) -> None:
        super().__init__()
        self.stages = nn.ModuleList(model.stages[: stage + 1])
        self.layout = model.layout
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a normalized image batch `[N, 3, H, W]`."""
        from workbench.models.adapters import as_map

        for stage in self.stages:
            x = stage(x)
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(as_map(x, self.layout), 1), 1)
        return self.head(pooled)


@dataclass(frozen=True)
class TrainedModel:
    """A run's classifier (eval mode, CPU unless asked), its plan and what it was trained on."""

    run_dir: Path
    checkpoint: Path
    plan: RunPlan
    classifier: nn.Module
    state: dict[str, Any]  # the checkpoint (epoch, best_metric, ...)

    @property
    def class_names(self) -> list[str]:
        """The classes, in the order of the logits."""
        return list(self.plan.class_names)

    def transform(self) -> Any:
        """The run's evaluation preprocessing (PIL image -> normalized tensor)."""
        return self.plan.transform(train=False)


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """`checkpoints/best.pt` or `last.pt` of a run; UserError when it is not there."""
    if which not in CHECKPOINTS:
        raise UserError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, not {which!r}")
    paths = RunPaths.of(run_dir)
    path = paths.root
    if not paths.config.is_file():
        raise UserError(f"{path} is not a run folder (no {CONFIG_NAME})")
    file = paths.checkpoint(which)
    if not file.is_file():
        raise UserError(f"{path} has no {which}.pt checkpoint (no epoch finished)")
    return file


def load_trained(run_dir: str | Path, which: str = "best", device: str = "cpu") -> TrainedModel:
    """Rebuild a run's classifier from its folder (weights loaded with weights_only=True)."""
    from workbench.config import load_config

    file = checkpoint_path(run_dir, which)
    config = load_config(RunPaths.of(run_dir).config)
    state = load_checkpoint(file, map_location="cpu")
    names = [str(n) for n in state.get("class_names", [])]
    if len(names) < 2:
        raise UserError(f"{file} does not record its class names")
    plan = plan_run(config, None, fix=True, check_device=False)
    plan = dataclasses.replace(plan, class_names=tuple(names), device=device)
    # the pretrained weights were only the starting point: everything is in the checkpoint
    model = dataclasses.replace(plan, pretrained_weights=None, weights_file=None).build_model()
    _load(model, state["model"], file)
    classifier: nn.Module = model
    if plan.head.fitted_once:
        probe = state.get("probe_head") or {}
        if "weight" not in probe:
            raise UserError(f"{file} has no fitted {plan.head} head")
        head = nn.Linear(probe["weight"].shape[1], len(names))
        _load(head, probe, file)
        classifier = PooledStageClassifier(model, plan.feature_stage, head)
    return TrainedModel(RunPaths.of(run_dir).root, file, plan, classifier.to(device).eval(), state)


def _load(module: nn.Module, weights: dict[str, torch.Tensor], file: Path) -> None:
    try:
        module.load_state_dict(weights, strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{file} does not fit the run's model: {first}") from None
