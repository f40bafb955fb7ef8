"""What a training run holds while it trains: built once by the engine, read by its callbacks.

`RunSetup`, `Feed` and `Optimisation` are frozen (built in one place each); `Progress` is the one
mutable record (epochs and steps done, the best score and when it was reached).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from workbench.data.index import DatasetIndex
from workbench.models.transfer import TransferModel
from workbench.plan import RunPlan
from workbench.train import features as fx


@dataclass(frozen=True)
class RunSetup:
    """What the run trains on and with."""

    plan: RunPlan
    index: DatasetIndex
    train_idx: list[int]
    val_idx: list[int]
    train_counts: list[int]
    device: torch.device
    model: TransferModel
    generator: torch.Generator | None
    amp: bool
    channels_last: bool

    @property
    def class_names(self) -> list[str]:
        """The dataset's classes, in label order."""
        return list(self.plan.class_names)

    def prepare_batch(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch on the run's device, in its memory format."""
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        return x.to(self.device, non_blocking=True, memory_format=fmt)


@dataclass(frozen=True)
class Feed:
    """How batches reach the model: images through the whole network, or cached features
    through the head (the fast path)."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    trainable: torch.nn.Module
    train_loader: Any
    val_loader: Any
    steps_per_epoch: int
    train_features: fx.FeatureSet | None = None


@dataclass(frozen=True)
class Optimisation:
    """Loss, optimizer, schedule and gradient scaler of a trained head or network."""

    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler


@dataclass
class Progress:
    """How far the run is; saved in every checkpoint and restored on resume."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps completed
    best: float = -1.0  # best validation balanced accuracy so far
    best_epoch: int = 0  # the epoch that reached `best`
    skipped: int = 0  # images that failed to load
    first_loss: float | None = None  # the first finite batch loss, the divergence yardstick

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> Progress:
        """The progress a checkpoint recorded (older ones lack `best_epoch`: their last epoch)."""
        epoch = int(state["epoch"])
        return cls(epoch, int(state["step"]), float(state["best_metric"]),
                   int(state.get("best_epoch", epoch)))
