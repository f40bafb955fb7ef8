"""Per-image predictions of a run, stored in its folder so that nothing recomputes them to browse.

`predictions/<split>-<checkpoint>.npz` holds the logits `[N, K]` (float32) and the true labels
`[N]` (indexes into the model's classes); `<split>-<checkpoint>.json` beside it holds the image
paths, the class names and the training counts. From the logits everything else follows: top-k
with probabilities, the loss of each image, calibration, and logit adjustment at any tau.

The engine writes the validation (and test) predictions when training ends; `workbench evaluate`
and the Results tab write them for any checkpoint on demand.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.data.index import DatasetIndex
from workbench.data.torch_dataset import ImageDataset
from workbench.errors import UserError
from workbench.train.runpaths import RunPaths


@dataclass(frozen=True)
class Predictions:
    """The logits of every image of one split under one checkpoint, with what they refer to."""

    split: str
    checkpoint: str  # "best" or "last"
    class_names: list[str]  # the model's classes, in logit order
    paths: list[str]  # one per row
    labels: np.ndarray  # [N] int64, the true class (index into class_names)
    logits: np.ndarray  # [N, K] float32
    train_counts: list[int]  # training images per class (the shot bands, the prior)
    notes: tuple[str, ...] = ()  # what was left out and why (unknown classes, bad images)

    def __len__(self) -> int:
        return len(self.paths)

    def probabilities(self) -> np.ndarray:
        """Softmax of the logits, `[N, K]` (float64)."""
        return softmax(self.logits)

    def losses(self) -> np.ndarray:
        """Cross-entropy of each image, `[N]`."""
        z = self.logits.astype(np.float64)
        shifted = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        return log_norm - shifted[np.arange(len(z)), self.labels]

    def top_k(self, row: int, k: int = 5) -> list[tuple[str, float]]:
        """The `k` most probable classes of one image, with their probabilities."""
        probs = softmax(self.logits[row : row + 1])[0]
        order = np.argsort(-probs, kind="stable")[:k]
        return [(self.class_names[c], float(probs[c])) for c in order]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable for large logits)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predictions_file(run_dir: str | Path, split: str, checkpoint: str) -> Path:
    """Where the predictions of `split` under `checkpoint` live (the .npz)."""
    return RunPaths(Path(run_dir)).prediction(split, checkpoint)


def save_predictions(run_dir: str | Path, preds: Predictions) -> Path:
    """Write the arrays and their description (each atomically: a temp file, then a rename)."""
    file = predictions_file(run_dir, preds.split, preds.checkpoint)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.stem + ".tmp.npz")
    np.savez_compressed(tmp, logits=preds.logits.astype(np.float32),
                        labels=preds.labels.astype(np.int64))
    meta = {"split": preds.split, "checkpoint": preds.checkpoint,
            "class_names": preds.class_names, "paths": preds.paths,
            "train_counts": preds.train_counts, "notes": list(preds.notes)}
    meta_tmp = file.with_suffix(".json.tmp")
    meta_tmp.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(tmp, file)
    os.replace(meta_tmp, file.with_suffix(".json"))
    return file


def load_predictions(run_dir: str | Path, split: str, checkpoint: str) -> Predictions:
    """Read stored predictions; UserError when the run has none for this split and checkpoint."""
    file = predictions_file(run_dir, split, checkpoint)
    meta_file = file.with_suffix(".json")
    if not file.is_file() or not meta_file.is_file():
        raise UserError(f"{Path(run_dir)} has no stored {split} predictions for its {checkpoint} "
                        "checkpoint: evaluate it first")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        with np.load(file) as arrays:
            logits, labels = arrays["logits"], arrays["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot read {file}: {exc}") from None
    if logits.shape != (len(meta["paths"]), len(meta["class_names"])):
        raise UserError(f"{file} does not match its description; evaluate the run again")
    return Predictions(meta["split"], meta["checkpoint"], meta["class_names"], meta["paths"],
                       labels, logits, meta["train_counts"], tuple(meta.get("notes", ())))


def stored_predictions(run_dir: str | Path) -> list[tuple[str, str]]:
    """The (split, checkpoint) pairs a run has predictions for."""
    folder = RunPaths(Path(run_dir)).predictions
    pairs = []
    for file in sorted(folder.glob("*-*.npz")) if folder.is_dir() else []:
        split, _, checkpoint = file.stem.rpartition("-")
        if file.with_suffix(".json").is_file() and not split.endswith(".tmp"):
            pairs.append((split, checkpoint))
    return pairs


class _Positioned(ImageDataset):
    """Images whose "label" is their position: rows stay aligned when a file fails to load."""

    def __init__(self, index: DatasetIndex, indices: Sequence[int], transform: Any) -> None:
        super().__init__(index, indices, transform)
        self.targets = list(range(len(indices)))


@torch.no_grad()
def iter_logits(
    forward: Callable[[torch.Tensor], torch.Tensor],
    index: DatasetIndex,
    indices: Sequence[int],
    transform: Any,
    *,
    device: torch.device,
    batch_size: int = 64,
    stop: threading.Event | None = None,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Run `forward` over the images at `indices`; yield `(done, total, positions, logits)` per
    batch, `positions` being rows of `indices` (images that fail to load are left out)."""
    from workbench.train.setup import make_loader

    loader = make_loader(_Positioned(index, indices, transform), batch_size)
    done = 0
    for images, positions, skipped in loader:
        if stop is not None and stop.is_set():
            return
        done += len(positions) + skipped
        if len(positions):
            logits = forward(images.to(device)).float().cpu().numpy()
            yield done, len(indices), positions.numpy(), logits
        else:
            yield done, len(indices), np.zeros(0, np.int64), np.zeros((0, 0), np.float32)


def assemble(split: str, checkpoint: str, class_names: Sequence[str], index: DatasetIndex,
             indices: Sequence[int], rows: Sequence[tuple[np.ndarray, np.ndarray]],
             train_counts: Sequence[int], notes: Sequence[str] = ()) -> Predictions:
    """Predictions from `(positions, logits)` batches of images at `indices` (labels mapped by
    class name into `class_names`: the dataset's classes need not be in the model's order)."""
    good = [(p, z) for p, z in rows if len(p)]
    positions = np.concatenate([p for p, _ in good]) if good else np.zeros(0, np.int64)
    logits = (np.concatenate([z for _, z in good]) if good else
              np.zeros((0, len(class_names)), np.float32))
    where = {name: i for i, name in enumerate(class_names)}
    chosen = [indices[int(p)] for p in positions]
    labels = np.array([where[index.class_names[index.labels[i]]] for i in chosen], np.int64)
    notes = list(notes)
    if len(chosen) < len(indices):
        notes.append(f"{len(indices) - len(chosen)} images could not be read and are left out")
    return Predictions(split, checkpoint, list(class_names), [index.paths[i] for i in chosen],
                       labels, logits.astype(np.float32), list(train_counts), tuple(notes))


def record_predictions(run_dir: str | Path, forward: Callable[[torch.Tensor], torch.Tensor],
                       index: DatasetIndex, splits: dict[str, list[int]], transform: Any, *,
                       device: torch.device, class_names: Sequence[str],
                       train_counts: Sequence[int], checkpoints: Sequence[str],
                       batch_size: int = 64, stop: threading.Event | None = None) -> None:
    """The end-of-training evaluation: store each non-empty split's predictions under each
    name in `checkpoints` (the model in memory is "last", and "best" too when it scored best)."""
    for split, indices in splits.items():
        if not indices:
            continue
        rows = [(p, z) for _, _, p, z in iter_logits(forward, index, indices, transform,
                                                     device=device, batch_size=batch_size,
                                                     stop=stop)]
        if stop is not None and stop.is_set():
            return
        preds = assemble(split, checkpoints[0], class_names, index, indices, rows, train_counts)
        for name in checkpoints:
            save_predictions(run_dir, dataclasses.replace(preds, checkpoint=name))
