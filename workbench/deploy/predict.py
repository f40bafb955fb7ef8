"""Classify image files and folders with a finished run's model, in batches.

`collect_images(paths)` lists the images named on a command line or dropped on the window (folders
recursively, by file name); `iter_predict(trained, paths)` decodes them with the project's safe
loader, applies the run's own evaluation preprocessing and yields one `PredictBatch` per batch:
the predictions, and the files that could not be read (reported, never fatal).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.data.images import load_image
from workbench.data.scan import is_image_name, is_junk_name
from workbench.errors import UserError

DEFAULT_TOP_K = 5
BATCH_SIZE = 32


@dataclass(frozen=True)
class Skipped:
    """An input that was not classified, and why (one line)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Prediction:
    """The top classes of one image, most probable first."""

    path: str
    top: tuple[tuple[str, float], ...]  # (label, probability)

    @property
    def label(self) -> str:
        """The most probable class."""
        return self.top[0][0]

    def to_dict(self) -> dict[str, Any]:
        """`{"path": ..., "top": [{"label": ..., "prob": ...}, ...]}` (the `--json` record)."""
        return {"path": self.path,
                "top": [{"label": label, "prob": prob} for label, prob in self.top]}


@dataclass(frozen=True)
class PredictBatch:
    """Progress: images done out of `total`, with this batch's predictions and skipped files."""

    done: int
    total: int
    predictions: list[Prediction] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def collect_images(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[Skipped]]:
    """The image files among `paths` (folders searched recursively, sorted), and what was not
    found. A file named explicitly is kept whatever its extension: the decoder decides."""
    files: list[str] = []
    missing: list[Skipped] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files.extend(_images_below(path))
        elif path.is_file():
            files.append(str(path))
        else:
            missing.append(Skipped(str(raw), "no such file or folder"))
    return list(dict.fromkeys(files)), missing


def _images_below(folder: Path) -> list[str]:
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_junk_name(d))
        found.extend(os.path.join(parent, n) for n in sorted(names)
                     if is_image_name(n) and not is_junk_name(n))
    return found


def iter_predict(trained: Any, paths: Sequence[str | os.PathLike[str]], *,
                 top_k: int = DEFAULT_TOP_K, batch_size: int = BATCH_SIZE,
                 stop: threading.Event | None = None) -> Iterator[PredictBatch]:
    """Classify every image under `paths` with a `TrainedModel`, one `PredictBatch` per batch.

    The first event (done 0) lists the inputs that do not exist; unreadable files are skipped
    and reported in their batch's event. Stops early when `stop` is set.
    """
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, not {top_k}")
    files, missing = collect_images(paths)
    yield PredictBatch(0, len(files), skipped=missing)
    transform = trained.transform()
    k = min(top_k, len(trained.class_names))
    for start in range(0, len(files), batch_size):
        if stop is not None and stop.is_set():
            return
        chunk = files[start:start + batch_size]
        tensors, kept, skipped = _load_batch(chunk, transform)
        predictions = classify(trained, tensors, kept, k) if kept else []
        yield PredictBatch(start + len(chunk), len(files), predictions, skipped)


def _load_batch(files: list[str], transform: Any) -> tuple[list[torch.Tensor], list[str],
                                                           list[Skipped]]:
    tensors, kept, skipped = [], [], []
    for file in files:
        try:
            tensors.append(transform(load_image(file)))
            kept.append(file)
        except UserError as exc:  # ImageError: corrupt, unreadable, too large, not an image
            skipped.append(Skipped(file, str(exc)))
    return tensors, kept, skipped


def classify(trained: Any, tensors: list[torch.Tensor], paths: list[str],
             top_k: int) -> list[Prediction]:
    """Top-k predictions for preprocessed image tensors (one batch)."""
    probs = probabilities(trained, torch.stack(tensors))
    values, indices = probs.topk(top_k, dim=1)
    names = trained.class_names
    return [Prediction(path, tuple((names[i], float(p)) for p, i in zip(row_p, row_i,
                                                                          strict=True)))
            for path, row_p, row_i in zip(paths, values.tolist(), indices.tolist(), strict=True)]


def probabilities(trained: Any, batch: torch.Tensor) -> torch.Tensor:
    """Softmax of the classifier's logits for a normalized batch `[N, 3, S, S]` (on the CPU)."""
    device = next(trained.classifier.parameters()).device
    with torch.inference_mode():
        logits = trained.classifier(batch.to(device))
    return torch.softmax(logits.float(), dim=1).cpu()
