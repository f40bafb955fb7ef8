"""Linear probe: held-out balanced accuracy of logistic regression on frozen features at several
depths.

What freezing the backbone at a given stage would give, measured: features are pooled after a
few stages (the last and two or three earlier ones), with global average pooling and a 2x2 grid
(which keeps coarse layout, useful when the domain differs from ImageNet), then scored with the
one probe recipe the trials use too (`workbench.advice.holdout`: stratified folds, C chosen in
inner folds, balanced accuracy with a bootstrap spread).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.advice.events import AdviceProgress
from workbench.advice.holdout import make_folds, probe_predictions, score
from workbench.errors import UserError
from workbench.models.adapters import as_map

DEFAULT_FOLDS = 3


@dataclass(frozen=True)
class ProbeRow:
    """Held-out balanced accuracy of a linear probe on one stage's pooled features, and its
    bootstrap standard error (`std`)."""

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
    """The probe table, its best row, the images held out, and the classes never held out (one
    image: always trained on)."""

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


def iter_probe(
    features: dict[tuple[int, str], np.ndarray],
    labels: np.ndarray,
    folds: int = DEFAULT_FOLDS,
    stop: threading.Event | None = None,
) -> Iterator[AdviceProgress | ProbeResult]:
    """Score a probe on each (stage, pooling) with the trials' recipe (`holdout`): stratified
    folds, a logistic regression whose C is chosen in inner folds, held-out balanced accuracy
    and its bootstrap spread; yields progress, then the `ProbeResult`."""
    labels = np.asarray(labels)
    try:
        split = make_folds(labels, max_folds=folds)
    except UserError:
        yield ProbeResult(dropped_classes=sorted(int(c) for c in np.unique(labels)),
                          message="the linear probe needs two classes with two images each")
        return
    held = split.assignment >= 0
    rows = []
    keys = sorted(features)
    for done, (stage, pooling) in enumerate(keys, start=1):
        if stop is not None and stop.is_set():
            break
        x = features[(stage, pooling)]
        pred, _ = probe_predictions(x, labels, split)
        value, spread = score(labels[held], pred[held])
        rows.append(ProbeRow(stage, pooling, value, spread, x.shape[1]))
        yield AdviceProgress("probe", done, len(keys))
    yield ProbeResult(rows=rows, folds=split.k, num_images=split.num_held_out,
                      dropped_classes=list(split.kept_in_training))


def run_probe(
    features: dict[tuple[int, str], np.ndarray], labels: np.ndarray, folds: int = DEFAULT_FOLDS
) -> ProbeResult:
    """`iter_probe` run to the end."""
    (result,) = deque(iter_probe(features, labels, folds), maxlen=1)
    assert isinstance(result, ProbeResult)
    return result
