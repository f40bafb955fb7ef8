"""The trials' report: a candidate's held-out score (`Trial`), all of them and the pick
(`TrialsReport`), the pick rule (`choose`) and the settings a trial stands for."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from workbench.config import DEFAULT_LR_DECAY, NormPolicy, RunConfig

# Candidates' relative cost of the run they stand for (a cheaper one wins a tie).
COST = {"probe": 1.0, "partial": 2.0, "finetune": 3.0, "lpft": 3.5, "scratch": 4.0}


class Budget(StrEnum):
    """How much the advisor may spend: probes only, or probes and short fine-tuning runs."""

    QUICK = "quick"
    THOROUGH = "thorough"


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
    pickable: bool = True  # a run can follow it (2x2 pooling is evidence only)
    note: str = ""
    unfreeze_after_epochs: int = 0  # LP-FT: the head trains alone that long, then the stages

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
                "weights": self.weights, "note": self.note,
                "unfreeze_after_epochs": self.unfreeze_after_epochs}

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
                "weights": self.weights, "unfreeze_after_epochs": self.unfreeze_after_epochs}


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


def choose(trials: tuple[Trial, ...] | list[Trial], *, within_spread: bool = False
           ) -> Trial | None:
    """The best held-out score (a cheaper candidate wins exact ties, then the earlier stage).
    Only trials a run can follow are picked. Regret is linear in the points lost, so the higher
    expected score loses the fewest: both budgets pick this way.

    `within_spread=True` is the cautious rule the advisor does not follow: a cheaper candidate
    within the best one's spread wins (the cheapest such, then the higher score). Averaged over
    three trial seeds it cost the thorough budget 0.6 points of mean regret at 160 px (worst 6
    against 4), 0.02 at 64 px, nothing at 224 px; `benchmarks/advisor.py` still measures it
    (docs/advice-validation.md)."""
    scored = [t for t in trials if t.pickable and t.score is not None and math.isfinite(t.score)]
    if not scored:
        return None
    best = max(scored, key=lambda t: (t.score, -t.cost, -t.feature_stage))
    close = [t for t in scored if t.cost < best.cost and t.score >= best.score - best.spread]
    if not within_spread or not close:
        return best
    return min(close, key=lambda t: (t.cost, -t.score))


def apply_settings(settings: dict[str, Any], config: RunConfig) -> RunConfig:
    """A copy of `config` with the recommended settings applied (model, LR, input size, and
    the head-first epochs of LP-FT: 0 for every other trial)."""
    config = copy.deepcopy(config)
    m = config.model
    m.freeze_stages, m.feature_stage = settings["freeze_stages"], settings["feature_stage"]
    m.head, m.norm_policy = settings["head"], settings["norm_policy"]
    m.lr_decay = settings["lr_decay"]
    if settings.get("weights") == "random":
        m.weights = "random"
    config.train.lr = settings["lr"]
    config.train.unfreeze_after_epochs = int(settings.get("unfreeze_after_epochs", 0))
    config.data.input_size = settings["input_size"]
    return config.validate()

