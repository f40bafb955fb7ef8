"""The learning-rate range test (Smith 2017; fastai's `lr_find`) on the current run plan.

A short run of the plan's own model, frozen stages, per-stage LR groups, loss, augmentation and
optimizer, with the learning rate growing exponentially from `start_lr` to `end_lr` over `steps`
batches. The loss is smoothed (an exponential moving average with bias correction, beta 0.98, as
fastai does) and the test stops early once the smoothed loss is above 4x its minimum: past that
point the network is diverging and later readings say nothing.

The suggestion is **the minimum's learning rate divided by 10** (Smith's and fastai v1's rule:
an order of magnitude below where the loss is lowest, before it turns up). The steepest descent
(the LR where the smoothed loss falls fastest against log LR) is reported beside it; on a few
noisy batches it jumps around more than the minimum does, which is why it is not the pick.

The model's weights and buffers (BatchNorm statistics included) are restored bit for bit
afterwards, and the global random state is left as it was: the test changes nothing a following
run would see. `iter_lr_find` is a generator of events, like the engine; `stop` cancels it.
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.config import LIMITS, RunConfig
from workbench.data.index import DatasetIndex
from workbench.errors import UserError

START_LR = 1e-7
END_LR = 10.0
STEPS = 100
SMOOTHING = 0.98  # fastai's beta for the loss's moving average
DIVERGED = 4.0  # stop once the smoothed loss is this many times its minimum
SUGGESTION_DIVISOR = 10.0
# the first readings' slope is the moving average settling, not the network learning (fastai's
# plot skips them too)
SKIP_START = 5


@dataclass(frozen=True)
class LrFindProgress:
    """One step of the range test: the head's learning rate and the smoothed loss."""

    step: int  # 1-based
    total: int
    lr: float
    loss: float


@dataclass(frozen=True)
class LrFindResult:
    """The curve and the suggestion. `lrs` are the head's learning rates (the config's
    `train.lr`); lower stages ran at their usual fraction of it."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]  # smoothed
    raw_losses: tuple[float, ...]
    suggested: float  # the minimum's LR / 10, within the config's learning-rate limits
    minimum: float  # the LR of the lowest smoothed loss
    steepest: float | None  # the LR of the steepest descent (None: too few points)
    stopped_early: bool  # the loss passed 4x its minimum before the last step
    rule: str = "minimum / 10"

    def to_json(self) -> dict[str, Any]:
        """What `workbench lr-find --json` prints."""
        return {"suggested_lr": self.suggested, "rule": self.rule, "min_loss_lr": self.minimum,
                "steepest_lr": self.steepest, "steps": len(self.lrs),
                "stopped_early": self.stopped_early, "lrs": list(self.lrs),
                "losses": list(self.losses), "raw_losses": list(self.raw_losses)}

    def write_csv(self, path: str | Path) -> Path:
        """The curve as CSV (lr, loss, raw_loss)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["lr", "loss", "raw_loss"])
            out.writerows(zip(self.lrs, self.losses, self.raw_losses, strict=True))
        return path


LrFindEvent = LrFindProgress | LrFindResult


# -- the arithmetic (pure: pinned by tests on hand-computed curves) ----------------------------

def lr_schedule(steps: int, start_lr: float = START_LR, end_lr: float = END_LR) -> np.ndarray:
    """`steps` learning rates growing exponentially from `start_lr` to `end_lr`."""
    if steps < 2 or not 0 < start_lr < end_lr:
        raise UserError(f"the LR range test needs at least 2 steps and 0 < start ({start_lr:g}) "
                        f"< end ({end_lr:g})")
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))


def smooth(losses: Sequence[float], beta: float = SMOOTHING) -> list[float]:
    """The bias-corrected exponential moving average of `losses` (fastai's smoothing)."""
    average, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta**i))
    return out


def suggest(lrs: Sequence[float], losses: Sequence[float], skip_start: int = SKIP_START
            ) -> tuple[float, float, float | None]:
    """(suggested LR, the minimum's LR, the steepest descent's LR) of a smoothed curve.

    suggested = the minimum's LR / 10, clipped to `train.lr`'s limits; steepest: where the
    central-difference slope of loss against log10 LR is lowest, among the readings after the
    first `skip_start` and before the minimum (None with fewer than 2 of them).
    """
    if not lrs:
        raise UserError("the LR range test recorded no loss")
    y = np.asarray(losses, dtype=np.float64)
    at_min = int(np.nanargmin(y))
    low, high = LIMITS["train.lr"]
    suggested = float(min(max(lrs[at_min] / SUGGESTION_DIVISOR, low), high))
    steepest = None
    if at_min - skip_start >= 2:
        end = min(at_min + 2, len(y))  # one reading past the minimum: central differences
        slope = np.gradient(y[skip_start:end], np.log10(np.asarray(lrs[skip_start:end])))
        steepest = float(lrs[skip_start + int(np.argmin(slope[:at_min - skip_start]))])
    return suggested, float(lrs[at_min]), steepest


def diverged(loss: float, best: float) -> bool:
    """Whether the smoothed loss has left the useful range (not finite, or > 4x the best)."""
    return not math.isfinite(loss) or loss > DIVERGED * best


def result_of(lrs: Sequence[float], raw: Sequence[float], planned: int) -> LrFindResult:
    """The result of a range test that recorded `raw` losses at `lrs` (of `planned` steps)."""
    smoothed = smooth(raw)
    suggested, minimum, steepest = suggest(lrs, smoothed)
    return LrFindResult(tuple(float(v) for v in lrs), tuple(smoothed),
                        tuple(float(v) for v in raw), suggested, minimum, steepest,
                        stopped_early=len(lrs) < planned)


# -- the run -------------------------------------------------------------------------------------

def iter_lr_find(config: RunConfig, index: DatasetIndex | None = None, *, plan: Any = None,
                 model: Any = None, steps: int = STEPS, start_lr: float = START_LR,
                 end_lr: float = END_LR, stop: threading.Event | None = None
                 ) -> Generator[LrFindEvent, None, None]:
    """Run the range test on `plan` (or `config` planned on `index`), yielding an
    `LrFindProgress` per step, then one `LrFindResult` (none when stopped).

    `model`: a `TransferModel` of the plan to test (its state is restored afterwards); None
    builds one.
    """
    import torch

    from workbench.plan import plan_run
    from workbench.train import setup

    index = setup.load_index(config, index)
    plan = plan if plan is not None else plan_run(config, index)
    if plan.head.fitted_once:
        raise UserError(f"the {plan.head} head is fitted once by scikit-learn: it has no "
                        "learning rate to find")
    schedule = lr_schedule(steps, start_lr, end_lr)
    model = model if model is not None else plan.build_model()
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training, home = model.training, next(model.parameters()).device
    try:
        with torch.random.fork_rng(devices=_cuda_devices(plan.device)):
            if plan.config.train.seed >= 0:  # the same config suggests the same LR
                torch.manual_seed(plan.config.train.seed)
            yield from _range_test(plan, index, model, schedule, stop)
    finally:
        model.load_state_dict(saved)
        model.to(home)
        model.train(was_training)


def _cuda_devices(device: str) -> list[int]:
    """The CUDA device whose random state `fork_rng` must keep (none off CUDA)."""
    import torch

    if not device.startswith("cuda"):
        return []
    return [torch.device(device).index or 0]


def _range_test(plan: Any, index: DatasetIndex, model: Any, schedule: np.ndarray,
                stop: threading.Event | None) -> Iterator[LrFindEvent]:
    import torch

    c = plan.config
    device = torch.device(plan.device)
    model.to(device)
    step = _Stepper(plan, index, model, device)
    lrs: list[float] = []
    raw: list[float] = []
    best = math.inf
    for i, (lr, loss) in enumerate(step.losses(schedule), start=1):
        if stop is not None and stop.is_set():
            return
        lrs.append(float(lr))
        raw.append(loss)
        smoothed = smooth(raw)[-1]
        yield LrFindProgress(i, len(schedule), float(lr), smoothed)
        if i > 1 and diverged(smoothed, best):
            break
        best = min(best, smoothed)
    if lrs and not math.isfinite(raw[-1]):  # a NaN reading tells nothing: drop it
        lrs, raw = lrs[:-1], raw[:-1]
    if not lrs:
        raise UserError(f"the loss was not finite from the first step at {schedule[0]:g} "
                        f"(learning rate), with {c.train.optimizer}: check the data and loss")
    yield result_of(lrs, raw, len(schedule))


class _Stepper:
    """The plan's optimisation (loader, loss, optimizer with per-stage LR groups, AMP), taking
    one step per learning rate."""

    def __init__(self, plan: Any, index: DatasetIndex, model: Any, device: Any) -> None:
        import torch

        from workbench.train import setup

        c = plan.config
        counts = index.class_counts(index.training_split())
        train_counts = [counts[n] for n in index.class_names]
        self.criterion = setup.build_criterion(plan, train_counts).to(device)
        self.optimizer = setup.build_optimizer(plan, model)
        # each group keeps its share of the head's LR (discriminative fine-tuning)
        self.shares = [g["lr"] / c.train.lr for g in self.optimizer.param_groups]
        self.amp = device.type == "cuda" and c.train.amp
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.plan, self.index, self.model, self.device = plan, index, model, device

    def losses(self, schedule: np.ndarray) -> Iterator[tuple[float, float]]:
        """(lr, the batch's loss) per learning rate of `schedule`, cycling over the loader."""
        batches = self._batches()
        self._train_mode()
        for lr in schedule:
            for group, share in zip(self.optimizer.param_groups, self.shares, strict=True):
                group["lr"] = float(lr) * share
            images, labels = next(batches)
            yield float(lr), self._step(images, labels)

    def _train_mode(self) -> None:
        if self.plan.fast_path:  # the engine trains the head alone, the backbone in eval
            self.model.eval()
            self.model.head.train()
        else:
            self.model.train()

    def _batches(self) -> Iterator[tuple[Any, Any]]:
        from workbench.data.torch_dataset import ImageDataset
        from workbench.devices import choose_num_workers
        from workbench.train import setup
        from workbench.train.augment import batch_collate
        from workbench.train.samplers import build_sampler

        c, idx = self.plan.config, self.index.indices(self.index.training_split())
        dataset = ImageDataset(self.index, idx, self.plan.transform(train=True))
        labels = [self.index.labels[i] for i in idx]
        loader = setup.make_loader(
            dataset, self.plan.batch_size, shuffle=True,
            sampler=build_sampler(labels, c.data.sampling, None),
            workers=min(choose_num_workers(c.data.num_workers), 2),
            collate_fn=batch_collate(c, len(self.index.class_names)))
        while True:
            empty = True
            for images, targets, _skipped in loader:
                if len(targets):
                    empty = False
                    yield images, targets
            if empty:
                raise UserError("no training image could be loaded for the LR range test")

    def _step(self, images: Any, labels: Any) -> float:
        import torch

        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16,
                            enabled=self.amp):
            loss = self.criterion(self.model(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.item())


def run_lr_find(config: RunConfig, index: DatasetIndex | None = None,
                **kwargs: Any) -> LrFindResult:
    """`iter_lr_find` to the end: the result."""
    result = None
    for event in iter_lr_find(config, index, **kwargs):
        if isinstance(event, LrFindResult):
            result = event
    if result is None:
        raise UserError("the LR range test was stopped")
    return result
