"""The learning-rate schedule, stepped once per batch: linear warm-up then cosine decay (the
default), or Smith's one-cycle (torch's `OneCycleLR`).

Both apply to every parameter group's own learning rate, so the per-stage rates of
discriminative fine-tuning keep their ratios throughout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from workbench.config import Schedule
from workbench.errors import UserError

# OneCycleLR's structure, recomputed for the run's own length on resume (more epochs, say)
_ONE_CYCLE_SHAPE = ("total_steps", "_schedule_phases")


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """The LR factor at step s: rises linearly to 1 over `warmup_steps`, then a cosine to 0."""
    total = max(1, total_steps)
    warmup = min(max(0, warmup_steps), total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
    kind: str = Schedule.WARMUP_COSINE,
) -> LRScheduler:
    """The schedule `kind` over `total_steps` batches.

    "warmup_cosine": a LambdaLR applying `warmup_cosine` to every group's base LR.
    "one_cycle": `OneCycleLR` peaking at every group's LR after `warmup_steps` (at least one;
    the warm-up is the rising part), from a 25th of it down to a 10,000th; momentum (SGD) or
    Adam's beta1 cycles inversely between 0.85 and 0.95 as Smith (2018) recommends.
    """
    if kind == Schedule.ONE_CYCLE:
        total = max(2, total_steps)
        rise = min(max(1, warmup_steps), total - 1) / total
        return OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                          total_steps=total, pct_start=rise, anneal_strategy="cos",
                          cycle_momentum=_cycles_momentum(optimizer))
    return LambdaLR(optimizer, warmup_cosine(total_steps, warmup_steps))


def _cycles_momentum(optimizer: torch.optim.Optimizer) -> bool:
    """AdamW's beta1 cycles; SGD's momentum only when it has one (0 stays plain SGD)."""
    group = optimizer.param_groups[0]
    return "betas" in group or group.get("momentum", 0) > 0


def restore_scheduler(scheduler: LRScheduler, state: dict[str, Any]) -> None:
    """Continue `scheduler` from a checkpoint's `state` (the step it reached).

    A one-cycle schedule keeps the shape built for this run (a resume may ask for more epochs);
    a checkpoint made under the other schedule is refused with one line.
    """
    one_cycle = isinstance(scheduler, OneCycleLR)
    if state and one_cycle != ("total_steps" in state):
        saved = Schedule.ONE_CYCLE if "total_steps" in state else Schedule.WARMUP_COSINE
        raise UserError(f"the run was trained with train.schedule = \"{saved}\": resume it with "
                        "the same schedule")
    if one_cycle:
        fresh = scheduler.state_dict()
        state = {**state, **{key: fresh[key] for key in _ONE_CYCLE_SHAPE}}
    scheduler.load_state_dict(state)
