"""`DatasetIndex`: what a dataset holds, listed without decoding a single image.

Every source (a class-per-folder tree, a CSV manifest) is scanned into this one structure; the
histogram, the statistics, the checks, the advisor and the training data all read from it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Problem:
    """Something wrong with a dataset: `kind` is a short stable key, `path` the file or folder."""

    kind: str  # e.g. "corrupt", "unreadable", "duplicate", "train_val_overlap", "small_class",
    #            "empty_class", "not_image", "missing_file", "too_large", "special_file",
    #            "symlink_loop", "duplicate_link", "outside_root", "split_mismatch"
    path: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        """The JSON form used by `workbench scan --json`."""
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


def count_problems(problems: Iterable[Problem], unlisted: Mapping[str, int]) -> dict[str, int]:
    """Problems per kind, the listed ones plus `unlisted` (kind -> count), most frequent first."""
    counts = Counter(p.kind for p in problems)
    counts.update(unlisted)
    return dict(counts.most_common())


@dataclass
class DatasetIndex:
    """The listing of a dataset: one entry per image, in parallel lists.

    `labels[i]` indexes `class_names`; `splits[i]` is one of SPLITS. `val_generated` is True when
    the validation split was drawn from the training images (stratified, seeded) because the
    source had none.
    """

    root: Path
    source: str  # "folder" or "csv"
    class_names: list[str]
    paths: list[str] = field(default_factory=list)  # absolute paths
    labels: list[int] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped_files: int = 0  # non-image files ignored while listing
    # problems found while listing but left off `problems` (each kind's list is capped), by kind
    unlisted_problems: dict[str, int] = field(default_factory=dict)
    val_generated: bool = False
    # label corrections applied when opening (data/corrections.py): action -> images
    corrected: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        """Number of classes, including empty ones."""
        return len(self.class_names)

    def problem_counts(self) -> dict[str, int]:
        """Problems per kind, listed or not, most frequent first."""
        return count_problems(self.problems, self.unlisted_problems)

    def split_names(self) -> list[str]:
        """The splits present, in the canonical order train, val, test."""
        present = set(self.splits)
        return [s for s in SPLITS if s in present]

    def split_counts(self) -> dict[str, int]:
        """Number of images per split."""
        counts = Counter(self.splits)
        return {s: counts[s] for s in self.split_names()}

    def class_counts(self, split: str | None = "train") -> dict[str, int]:
        """Images per class name in one split (all splits when `split` is None).

        Every class appears, with 0 when it has no image in that split.
        """
        counts = Counter(
            label for label, s in zip(self.labels, self.splits, strict=True)
            if split is None or s == split
        )
        return {name: counts[i] for i, name in enumerate(self.class_names)}

    def indices(self, split: str) -> list[int]:
        """Positions of the images in one split."""
        return [i for i, s in enumerate(self.splits) if s == split]

    def training_split(self) -> str:
        """The split that counts as training data: "train" when present, else all images."""
        return "train" if "train" in self.splits else (self.splits[0] if self.splits else "train")


def file_stamps(index: DatasetIndex, positions: Iterable[int]) -> list[tuple[str, int, int, int]]:
    """(path, label, size, modification time) of each listed image, (-1, -1) for one that is
    gone: what a cache key needs so that a changed or relabelled file changes the key."""
    stamps = []
    for i in positions:
        try:
            st = os.stat(index.paths[i])
            stamps.append((index.paths[i], index.labels[i], st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((index.paths[i], index.labels[i], -1, -1))
    return stamps
