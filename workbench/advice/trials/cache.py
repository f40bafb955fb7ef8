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

VERSION = 3  # bump when what a cached result means changes (the trials run, their names)
FEATURES_VERSION = 1  # bump when what cached features mean changes


@dataclass
class Sample:
    """The sampled training images as the backbone saw them: pooled features per (stage,
    pooling), labels, and (for fine-tuning trials) the input tensors."""

    features: dict[tuple[int, str], np.ndarray]
    labels: np.ndarray
    images: torch.Tensor | None = None
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def key(index: DatasetIndex, positions: list[int], plan: RunPlan, what: str) -> str:
    files = file_stamps(index, positions)
    recipe = {"files": files, "backbone": plan.backbone, "weights": plan.weights_spec,
              "file": plan.weights_file, "size": plan.input_size, "what": what,
              "version": FEATURES_VERSION if what == "features" else VERSION,
              "lr": plan.config.train.lr,
              "weighting": plan.config.data.loss_weighting}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:32]


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

