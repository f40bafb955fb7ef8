"""The frozen-backbone fast path: pooled features computed once, cached, the head trained on them.

When no backbone stage trains and no augmentation changes the images, every epoch would push the
same images through the same frozen network. Instead the pooled features are computed once,
stored under `paths.cache_dir()/features/` keyed by a hash of everything that determines them
(the image files with their sizes and modification times, backbone, weights, transform, stage),
and the head trains on them: a torch linear head with the usual optimizer and schedule, or a
scikit-learn LinearSVC / LogisticRegression ("SVM on lower-level features").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from workbench import paths
from workbench.data.index import DatasetIndex, file_stamps
from workbench.errors import UserError
from workbench.models.fusion import fused_for_inference
from workbench.plan import RunPlan
from workbench.train.checkpoints import load_checkpoint, save_checkpoint
from workbench.train.events import FeaturesProgress

log = logging.getLogger(__name__)



class FeatureSet(NamedTuple):
    """Pooled features `[N, D]` (float32, CPU) and their labels `[N]`; `skipped` failed to load."""

    features: torch.Tensor
    labels: torch.Tensor
    skipped: int = 0


def feature_key(index: DatasetIndex, indices: list[int], plan: RunPlan,
                transform: Any) -> str | None:
    """A hash of everything the features depend on (a changed image file changes the key);
    None when they cannot be reproduced: a random backbone without a seed."""
    seed = plan.config.train.seed
    if not plan.pretrained and seed < 0:
        return None
    files = file_stamps(index, indices)
    weights = plan.pretrained_weights.name if plan.pretrained_weights is not None else "random"
    if plan.weights_file:
        st = os.stat(plan.weights_file)
        weights = f"{os.path.abspath(plan.weights_file)}:{st.st_size}:{st.st_mtime_ns}"
    recipe = {"files": files, "backbone": plan.backbone, "weights": weights,
              "norm": plan.config.model.norm_policy, "transform": repr(transform),
              "stage": plan.feature_stage, "input_size": plan.input_size, "version": 2,
              "seed": seed if not plan.pretrained else None}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:32]


def cache_path(key: str) -> os.PathLike[str]:
    """Where the features with this key are stored."""
    return paths.cache_dir() / "features" / f"{key}.pt"


@torch.no_grad()
def iter_features(
    model: Any,
    loader: DataLoader,
    key: str | None,
    *,
    split: str,
    stage: int,
    device: torch.device,
    stop: threading.Event | None = None,
) -> Generator[FeaturesProgress, None, FeatureSet | None]:
    """Yield progress while computing (or loading) pooled features; return them (None: stopped)."""
    file = cache_path(key) if key else None
    total = len(loader.dataset)  # type: ignore[arg-type]
    cached = _load_cached(file, total) if file is not None else None
    if cached is not None:
        yield FeaturesProgress(split, total, total, cached=True)
        return cached
    model.eval()
    net = fused_for_inference(model)  # BN folded into the convolutions: the same features, faster
    feats, labels, done, skipped = [], [], 0, 0
    amp = device.type == "cuda"
    for images, batch_labels, bad in loader:
        if stop is not None and stop.is_set():
            return None
        done += len(batch_labels) + bad
        skipped += bad
        if len(batch_labels):
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                out = pooled(net, images.to(device, non_blocking=True), stage)
            feats.append(out.float().cpu())
            labels.append(batch_labels.clone())
        yield FeaturesProgress(split, done, total)
    result = FeatureSet(_cat(feats, 2), _cat(labels, 1).long(), skipped)
    if file is not None:
        save_checkpoint({"model": {}, "features": result.features, "labels": result.labels,
                         "skipped": skipped}, file)
    return result


def _load_cached(file: os.PathLike[str], total: int) -> FeatureSet | None:
    """The cached features in `file`, or None when there are none or they cannot be used.

    A cache is disposable: a truncated, garbage or mismatched file (a killed writer, a full disk,
    an older format) is logged, deleted and recomputed, never an error that blocks every later
    run until someone finds and deletes it.
    """
    if not os.path.isfile(file):
        return None
    try:
        cached = load_checkpoint(file)
        result = FeatureSet(cached["features"], cached["labels"], int(cached["skipped"]))
        if not (isinstance(result.features, torch.Tensor) and result.features.dim() == 2
                and len(result.features) == len(result.labels) == total - result.skipped):
            raise ValueError("its shapes do not match the images")
    except (UserError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        log.warning("feature cache %s is unusable (%s); recomputing it", file, exc)
        try:
            os.unlink(file)
        except OSError as gone:
            log.warning("could not delete %s: %s", file, gone)
        return None
    return result


def _cat(parts: list[torch.Tensor], dims: int) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.zeros((0,) * dims)


def pooled(model: Any, images: torch.Tensor, stage: int) -> torch.Tensor:
    """Global-average-pooled output of `stage` (the backbone's own pooled features for the last)."""
    if stage == model.num_stages - 1:
        return model.forward_features(images)
    fmap = model.stage_outputs(images, [stage])[stage]
    return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(fmap, 1), 1)


def feature_loader(
    fs: FeatureSet,
    batch_size: int,
    *,
    shuffle: bool = False,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """Batches `(features, labels, 0)` from memory, in the same shape as image batches."""
    dataset: Dataset = TensorDataset(fs.features, fs.labels)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, generator=generator, collate_fn=_collate_features)


def _collate_features(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple:
    features, labels = zip(*batch, strict=True)
    return torch.stack(features), torch.stack(labels), 0


def fit_sklearn_head(
    kind: str, train: FeatureSet, num_classes: int, class_weight: torch.Tensor | None, seed: int
) -> torch.nn.Linear:
    """Fit LinearSVC ("svm") or LogisticRegression ("logreg") on standardised features and return
    the equivalent torch linear layer (scaling folded in), so evaluation and export are shared."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    x, y = train.features.numpy().astype(np.float64), train.labels.numpy()
    if len(np.unique(y)) < 2:
        raise UserError("a linear classifier needs training images of at least two classes")
    weights = None if class_weight is None else {
        int(c): float(class_weight[c]) for c in np.unique(y)}
    rs = seed if seed >= 0 else None
    clf = (LinearSVC(C=1.0, class_weight=weights, random_state=rs, max_iter=5000)
           if kind == "svm" else
           LogisticRegression(C=1.0, class_weight=weights, random_state=rs, max_iter=2000))
    scaler = StandardScaler().fit(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(scaler.transform(x), y)
    if caught:
        log.warning("%s did not fully converge: %s", kind, caught[0].message)
    return _as_linear(clf.coef_, clf.intercept_, clf.classes_, scaler, num_classes)


def _as_linear(coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, scaler: Any,
               num_classes: int) -> torch.nn.Linear:
    if coef.shape[0] == 1:  # binary: sklearn keeps one score for the positive class
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    weight = np.zeros((num_classes, coef.shape[1]))
    # a class never seen in training must never win
    bias = np.full(num_classes, -1e4)
    weight[classes] = coef / scale
    bias[classes] = intercept - (coef / scale) @ scaler.mean_
    layer = torch.nn.Linear(coef.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return layer
