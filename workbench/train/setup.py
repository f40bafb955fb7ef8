"""Building blocks the engine assembles: seeds, dataset, loaders, loss, optimizer, schedule.

Kept apart from the training loop so each piece can be reused (the advisor's trials, the LR
finder, the benchmarks) and read on its own. The public builders take the run plan:
`build_optimizer(plan, model)`, `build_criterion(plan, train_counts)`,
`build_schedule(plan, optimizer, steps_per_epoch)`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, Dataset, Sampler

from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.errors import UserError
from workbench.plan import RunPlan
from workbench.train.schedule import build_scheduler

log = logging.getLogger(__name__)


def seed_everything(seed: int, deterministic: bool) -> torch.Generator | None:
    """Seed Python, NumPy and torch (seed -1: not seeded); returns a generator for the loaders."""
    if deterministic:
        # cuBLAS needs this to be deterministic; it must be set before the first CUDA matmul
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # set both ways: the GUI trains many runs in one process. warn_only: a few CUDA kernels
    # (adaptive pooling's backward) have no deterministic version, which must not end the run.
    # Only when it changes: the first call imports torch._inductor (1-2 s that stall the GUI).
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    # fixed input sizes: let cuDNN pick the fastest kernels, unless results must repeat
    torch.backends.cudnn.benchmark = not deterministic
    if seed < 0:
        return None
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def load_index(config: RunConfig, index: DatasetIndex | None) -> DatasetIndex:
    """The given index, or the dataset named by `config.data.path` scanned now."""
    if index is not None:
        return index
    if not config.data.path:
        raise UserError("no dataset: set data.path in the config (a folder, a CSV or \"demo\")")
    from workbench.data.scan import open_configured

    return open_configured(config.data)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    sampler: Sampler | None = None,
    workers: int = 0,
    pin_memory: bool = False,
    generator: torch.Generator | None = None,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """A DataLoader with the engine's conventions (persistent workers, skip-bad collation)."""
    if collate_fn is None:
        from workbench.data.torch_dataset import collate_skip_bad as collate_fn
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0,
        generator=generator, collate_fn=collate_fn,
    )


def build_optimizer(plan: RunPlan, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum (Nesterov) or AdamW over `model`'s per-stage LR groups
    (`TransferModel.param_groups`: the head at `train.lr`, each trainable stage less by
    `model.lr_decay` per stage); UserError when nothing is trainable."""
    c = plan.config
    return optimizer_for(c, model.param_groups(c.train.lr, c.model.lr_decay))


def optimizer_for(config: RunConfig, groups: Sequence[dict]) -> torch.optim.Optimizer:
    """`train.optimizer` over explicit parameter groups (`build_optimizer` for a model)."""
    t = config.train
    if not groups or not any(p.requires_grad for g in groups for p in g["params"]):
        raise UserError("nothing to train: every parameter is frozen")
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay,
                           nesterov=t.momentum > 0)


def build_criterion(plan: RunPlan, train_counts: Sequence[int]) -> torch.nn.Module:
    """The training loss `train.loss` for a training split with `train_counts` images per class,
    with the class weights `data.loss_weighting` asks for (`losses.build_criterion`)."""
    from workbench.train.losses import build_criterion as criterion_for
    from workbench.train.losses import class_weights

    c = plan.config
    weights = class_weights(train_counts, c.data.loss_weighting, c.data.beta)
    return criterion_for(c.train, train_counts, weights)


def build_schedule(plan: RunPlan, optimizer: torch.optim.Optimizer,
                   steps_per_epoch: int) -> LRScheduler:
    """`train.schedule` over `train.epochs` epochs of `steps_per_epoch` steps, warming up
    over `train.warmup_epochs` (`schedule.build_scheduler`)."""
    t = plan.config.train
    return build_scheduler(optimizer, t.epochs * steps_per_epoch,
                           round(t.warmup_epochs * steps_per_epoch), t.schedule)


def gpu_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated so far, in MiB (0 off CUDA)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
