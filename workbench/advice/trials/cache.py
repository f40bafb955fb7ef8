"""The trials' caches under `paths.cache_dir()/advice/`: the sample's pooled features and the
finished reports, each under a key of what it depends on."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench import paths
from workbench.advice.trials.report import TrialsReport
from workbench.data.index import DatasetIndex, file_stamps
from workbench.plan import RunPlan

VERSION = 11  # bump when what a cached result means changes (the trials run, their names,
# the pick rule: 11, both budgets by the scores)
FEATURES_VERSION = 2  # bump when what cached features mean changes


@dataclass
class Sample:
    """The sampled training images as the backbone saw them: pooled features per (stage,
    pooling), labels, and (for fine-tuning trials) the input tensors."""

    features: dict[tuple[int, str], np.ndarray]
    labels: np.ndarray
    images: torch.Tensor | None = None
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def feature_key(index: DatasetIndex, positions: list[int], plan: RunPlan) -> str:
    """What pooled features depend on: the files, the backbone, its weights, the input size and
    the version of the feature pass; not the learning rate, the loss or its weighting."""
    return _digest({"files": file_stamps(index, positions), "backbone": plan.backbone,
                    "weights": plan.weights_spec, "file": plan.weights_file,
                    "size": plan.input_size, "what": "features", "version": FEATURES_VERSION})


# the training settings a trial's score (or the settings it reports) depends on
TRAIN_KEYS = ("lr", "optimizer", "momentum", "weight_decay", "loss", "label_smoothing",
              "loss_tau", "ldam_margin", "drw_start", "schedule")


def result_key(index: DatasetIndex, positions: list[int], plan: RunPlan, budget: str) -> str:
    """What a report depends on: the features' key, the budget, and the training settings the
    fine-tuning trials train with (and every trial reports)."""
    t, d = plan.config.train, plan.config.data
    return _digest({"features": feature_key(index, positions, plan), "what": budget,
                    "version": VERSION, "train": {k: getattr(t, k, None) for k in TRAIN_KEYS},
                    "weighting": d.loss_weighting, "beta": d.beta})


def _digest(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()
                          ).hexdigest()[:32]


def _cache(name: str) -> os.PathLike[str]:
    return paths.cache_dir() / "advice" / name


def load_features(key: str) -> Sample | None:
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


def save_features(key: str, sample: Sample) -> None:
    file = _cache(f"{key}.npz")
    os.makedirs(os.path.dirname(file), exist_ok=True)
    arrays = {f"f_{s}_{p}": v for (s, p), v in sample.features.items()}
    tmp = f"{file}.tmp.npz"
    np.savez(tmp, labels=sample.labels, skipped=sample.skipped, **arrays)
    os.replace(tmp, file)


def load_result(key: str) -> TrialsReport | None:
    file = _cache(f"{key}.json")
    try:
        with open(file, encoding="utf-8") as f:
            return TrialsReport.from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_result(key: str, report: TrialsReport) -> None:
    file = _cache(f"{key}.json")
    os.makedirs(os.path.dirname(file), exist_ok=True)
    tmp = f"{file}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report.to_dict(), f)
    os.replace(tmp, file)

