"""The learning-rate schedule: linear warm-up, then cosine decay, stepped once per batch."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR


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
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> LambdaLR:
    """A LambdaLR applying `warmup_cosine` to every parameter group's own base LR."""
    return LambdaLR(optimizer, warmup_cosine(total_steps, warmup_steps))
