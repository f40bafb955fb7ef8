"""Linear probe: k-fold accuracy of logistic regression on frozen features at several depths.

What freezing the backbone at a given stage would give, measured: features are pooled after a
few stages (the last and two or three earlier ones), with global average pooling and a 2x2 grid
(which keeps coarse layout, useful when the domain differs from ImageNet), then a scaled logistic
regression is cross-validated on each.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from workbench.advice.events import AdviceProgress
from workbench.models.adapters import as_map

POOLINGS = ("gap", "grid2x2")
DEFAULT_FOLDS = 3
MAX_ITER = 300


@dataclass(frozen=True)
class ProbeRow:
    """Cross-validated accuracy of a linear probe on one stage's pooled features."""

    stage: int
    pooling: str
    accuracy: float
    std: float
    dims: int

    def to_dict(self) -> dict[str, object]:
        """JSON form of one row of the probe table."""
        return {"stage": self.stage, "pooling": self.pooling, "accuracy": self.accuracy,
                "std": self.std, "dims": self.dims}


@dataclass(frozen=True)
class ProbeResult:
    """The probe table, its best row, and what was left out (classes too small for the folds)."""

    rows: list[ProbeRow] = field(default_factory=list)
    folds: int = 0
    num_images: int = 0
    dropped_classes: list[int] = field(default_factory=list)
    message: str = ""

    @property
    def best(self) -> ProbeRow | None:
        """The most accurate row (the earlier stage wins a tie: cheaper and more generic)."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: (round(r.accuracy, 6), -r.stage))

    def best_for(self, pooling: str) -> ProbeRow | None:
        """The most accurate row with one pooling (training pools with "gap")."""
        rows = [r for r in self.rows if r.pooling == pooling]
        return max(rows, key=lambda r: (round(r.accuracy, 6), -r.stage)) if rows else None

    def to_dict(self) -> dict[str, object]:
        """JSON form: the table, the best row, the folds and the dropped classes."""
        best = self.best
        return {"table": [r.to_dict() for r in self.rows], "best": best and best.to_dict(),
                "folds": self.folds, "num_images": self.num_images,
                "dropped_classes": self.dropped_classes, "message": self.message}


def probe_stages(num_stages: int) -> list[int]:
    """The last stage and up to three earlier ones (a third, half and two thirds up)."""
    last = num_stages - 1
    picks = {last, round(2 * last / 3), round(last / 2), round(last / 3)}
    return sorted(s for s in picks if s >= 0)


def pool_features(fmap: torch.Tensor) -> dict[str, torch.Tensor]:
    """Global average pooling `[N, C]` and a 2x2 grid of averages `[N, 4C]` of a feature map."""
    if fmap.dim() == 2:  # already pooled (a vector per image)
        return {"gap": fmap, "grid2x2": fmap}
    return {
        "gap": fmap.mean(dim=(2, 3)),
        "grid2x2": F.adaptive_avg_pool2d(fmap, 2).flatten(1),
    }


class StageFeatureCollector:
    """Forward hooks on chosen stages that pool each output as it is computed.

    Pooling inside the hook keeps memory to a few vectors per image, whatever the map size.
    """

    def __init__(self, model: nn.Module, stages: Sequence[int]) -> None:
        self.model = model
        self.layout = getattr(model, "layout", "nchw")
        self.stages = list(stages)
        self.pooled: dict[tuple[int, str], list[np.ndarray]] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> StageFeatureCollector:
        for stage in self.stages:
            module = self.model.stages[stage]
            self._handles.append(module.register_forward_hook(self._hook(stage)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, stage: int):
        def capture(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            for pooling, vec in pool_features(as_map(output.detach(), self.layout)).items():
                self.pooled.setdefault((stage, pooling), []).append(vec.float().cpu().numpy())

        return capture

    def features(self) -> dict[tuple[int, str], np.ndarray]:
        """(stage, pooling) -> `[n images, dims]` over every batch seen."""
        return {key: np.concatenate(parts) for key, parts in self.pooled.items()}


def _usable(labels: np.ndarray, folds: int) -> tuple[np.ndarray, list[int]]:
    classes, counts = np.unique(labels, return_counts=True)
    dropped = [int(c) for c, n in zip(classes, counts, strict=True) if n < folds]
    return ~np.isin(labels, dropped), dropped


def choose_folds(labels: np.ndarray, folds: int) -> tuple[int, np.ndarray, list[int]]:
    """Fold count and the mask of images kept: classes with fewer images than folds are dropped.

    Falls back to fewer folds (down to 2) when that would leave fewer than two classes.
    """
    for k in range(folds, 1, -1):
        keep, dropped = _usable(labels, k)
        if len(np.unique(labels[keep])) >= 2:
            return k, keep, dropped
    return 0, np.zeros(len(labels), dtype=bool), sorted(int(c) for c in np.unique(labels))


def probe_accuracy(x: np.ndarray, y: np.ndarray, folds: int, seed: int = 0) -> tuple[float, float]:
    """Mean and std of stratified k-fold accuracy of a scaled logistic regression."""
    # The L2-regularized solution lies in the span of the training images (representer
    # theorem), so projecting onto it (a full-rank PCA, no whitening) leaves the probe unchanged
    # while cutting 5,120 grid features to at most n: seconds instead of a minute per stage.
    n_train = len(y) - len(y) // folds
    steps = [StandardScaler()]
    if x.shape[1] > n_train:
        steps.append(PCA(svd_solver="full"))  # keeps min(n, dims) components, per fold
    model = make_pipeline(*steps, LogisticRegression(max_iter=MAX_ITER))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # a probe stopped at MAX_ITER still ranks the stages; more iterations cost minutes
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(model, x, y, cv=cv, scoring="accuracy")
    return float(scores.mean()), float(scores.std())


def iter_probe(
    features: dict[tuple[int, str], np.ndarray],
    labels: np.ndarray,
    folds: int = DEFAULT_FOLDS,
    stop: threading.Event | None = None,
) -> Iterator[AdviceProgress | ProbeResult]:
    """Cross-validate a probe on each (stage, pooling); yields progress, then the `ProbeResult`."""
    labels = np.asarray(labels)
    k, keep, dropped = choose_folds(labels, folds)
    if k == 0:
        yield ProbeResult(dropped_classes=dropped,
                          message="the linear probe needs two classes with two images each")
        return
    rows = []
    keys = sorted(features)
    for done, (stage, pooling) in enumerate(keys, start=1):
        if stop is not None and stop.is_set():
            break
        x = features[(stage, pooling)][keep]
        acc, std = probe_accuracy(x, labels[keep], k)
        rows.append(ProbeRow(stage, pooling, acc, std, x.shape[1]))
        yield AdviceProgress("probe", done, len(keys))
    yield ProbeResult(rows=rows, folds=k, num_images=int(keep.sum()), dropped_classes=dropped)


def run_probe(
    features: dict[tuple[int, str], np.ndarray], labels: np.ndarray, folds: int = DEFAULT_FOLDS
) -> ProbeResult:
    """`iter_probe` run to the end."""
    (result,) = deque(iter_probe(features, labels, folds), maxlen=1)
    assert isinstance(result, ProbeResult)
    return result
