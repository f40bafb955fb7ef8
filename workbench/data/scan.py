"""Listing a dataset into a `DatasetIndex`, without decoding a single image.

A source is a class-per-folder tree (optionally under `train/ val/ test/`) or a CSV manifest
(see `manifest.py`). Listing uses `os.scandir`, whose entries carry the file type from the
directory read itself, so a 100,000-file tree is listed without a `stat` per file. Problems found
while listing (empty or small classes, non-image files) are recorded, not raised; only a source
that cannot be used at all raises `UserError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from workbench.data.index import DatasetIndex, Problem
from workbench.errors import UserError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
_IMAGE_SUFFIXES = tuple(IMAGE_EXTENSIONS)  # str.endswith takes a tuple: much faster than splitext
# Folder names accepted as splits, mapped to the canonical split name.
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}
MAX_LISTED_PROBLEMS = 50  # per kind found while listing: the count stays exact, the list bounded


def is_image_name(name: str) -> bool:
    """True when a file name has one of the image extensions the workbench reads."""
    return name.lower().endswith(_IMAGE_SUFFIXES)


class _Listing:
    """What listing accumulates: images with their class and split, and bounded problems."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.class_of: list[str] = []
        self.splits: list[str] = []
        self.problems: list[Problem] = []
        self.classes: set[str] = set()  # every class seen, including empty ones
        self.skipped = 0
        self._per_kind: dict[str, int] = {}

    def add(self, path: str, label: str, split: str) -> None:
        """Record one image."""
        self.paths.append(path)
        self.class_of.append(label)
        self.splits.append(split)

    def problem(self, kind: str, path: str, detail: str = "") -> None:
        """Record a problem, keeping at most MAX_LISTED_PROBLEMS of each kind."""
        seen = self._per_kind.get(kind, 0)
        self._per_kind[kind] = seen + 1
        if seen < MAX_LISTED_PROBLEMS:
            self.problems.append(Problem(kind, path, detail))

    def count(self, kind: str) -> int:
        """How many problems of `kind` were found (listed or not)."""
        return self._per_kind.get(kind, 0)

    def unlisted(self) -> dict[str, int]:
        """Per kind, how many problems were found beyond the listed ones."""
        return {kind: seen - MAX_LISTED_PROBLEMS for kind, seen in self._per_kind.items()
                if seen > MAX_LISTED_PROBLEMS}


def _subdirs(folder: str) -> list[os.DirEntry[str]]:
    """Visible sub-folders, sorted by name."""
    with os.scandir(folder) as it:
        dirs = [e for e in it if not e.name.startswith(".") and e.is_dir()]
    return sorted(dirs, key=lambda e: e.name)


def _list_class_folder(folder: str, label: str, split: str, out: _Listing) -> int:
    """List the images under one class folder (recursively); returns how many were found.

    Files are sorted by path, so the index (and the seeded split drawn from it) never depends on
    the order the file system happened to list them in.
    """
    images: list[str] = []
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as it:
            for entry in it:
                name = entry.name
                if name.startswith("."):  # .DS_Store, editor swap files: not the user's data
                    continue
                if entry.is_dir():
                    pending.append(entry.path)
                elif is_image_name(name):
                    images.append(entry.path)
                else:
                    out.skipped += 1
                    out.problem("not_image", entry.path, "not an image file; ignored")
    images.sort()
    out.paths.extend(images)
    out.class_of.extend([label] * len(images))
    out.splits.extend([split] * len(images))
    return len(images)


def _list_classes(folder: str, split: str, out: _Listing) -> None:
    """List every class sub-folder of `folder` into `out`, noting empty classes and stray files."""
    for entry in _subdirs(folder):
        out.classes.add(entry.name)
        if _list_class_folder(entry.path, entry.name, split, out) == 0:
            out.problem("empty_class", entry.path, f"class '{entry.name}' has no images")
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith(".") or entry.is_dir():
                continue
            out.skipped += 1
            kind = "unlabeled" if is_image_name(entry.name) else "not_image"
            out.problem(kind, entry.path, "not inside a class folder; ignored")


def _list_folder(root: Path, out: _Listing) -> None:
    """List a class-per-folder tree, with or without train/val/test folders on top."""
    top = _subdirs(str(root))
    split_dirs = [e for e in top if e.name.lower() in SPLIT_FOLDERS]
    if not split_dirs:
        _list_classes(str(root), "train", out)
        return
    for entry in top:
        if entry.name.lower() in SPLIT_FOLDERS:
            _list_classes(entry.path, SPLIT_FOLDERS[entry.name.lower()], out)
        else:
            out.problem("ignored_folder", entry.path, "beside train/val/test folders; ignored")


def stratified_val_split(
    labels: list[int], fraction: float, seed: int
) -> np.ndarray:
    """Positions to move into a generated validation split, stratified by label and seeded.

    Each class gives round(n * fraction) images, at least one when it has two or more, and always
    keeps at least one training image; a class with a single image stays in training.
    """
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels, dtype=np.int64)
    order = np.argsort(labels_arr, kind="stable")
    bounds = np.flatnonzero(np.diff(labels_arr[order])) + 1
    chosen: list[np.ndarray] = []
    for members in np.split(order, bounds):
        n = len(members)
        if n < 2 or fraction <= 0:
            continue
        n_val = min(n - 1, max(1, round(n * fraction)))
        chosen.append(rng.choice(members, size=n_val, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def _build_index(
    root: Path, source: str, out: _Listing, val_fraction: float, split_seed: int
) -> DatasetIndex:
    """Turn a listing into a `DatasetIndex`, generating a validation split when there is none."""
    names = sorted(out.classes | set(out.class_of))
    position = {name: i for i, name in enumerate(names)}
    index = DatasetIndex(
        root=root, source=source, class_names=names, paths=out.paths,
        labels=[position[c] for c in out.class_of], splits=out.splits,
        problems=list(out.problems), skipped_files=out.skipped,
        unlisted_problems=out.unlisted(),
    )
    if "val" not in index.splits and val_fraction > 0:
        _generate_val(index, val_fraction, split_seed)
    return index


def _generate_val(index: DatasetIndex, fraction: float, seed: int) -> None:
    """Move a stratified, seeded share of the training images into a new "val" split."""
    splits = index.splits
    # a tree without split folders is all "train": skip a 100k-element scan in the common case
    train = range(len(splits)) if splits.count("train") == len(splits) else index.indices("train")
    if not train:
        return
    labels = index.labels if len(train) == len(splits) else [index.labels[i] for i in train]
    picked = stratified_val_split(labels, fraction, seed)
    for pos in picked:
        index.splits[train[pos]] = "val"
    index.val_generated = len(picked) > 0


def _check_classes(index: DatasetIndex, min_class_count: int) -> None:
    """Flag classes with too few training images (empty ones were flagged while listing)."""
    folder_source = index.source == "folder"
    for name, count in index.class_counts(index.training_split()).items():
        if 0 < count < min_class_count:
            path = str(index.root / name) if folder_source else name
            index.problems.append(Problem(
                "small_class", path,
                f"class '{name}' has {count} training image(s), fewer than {min_class_count}",
            ))


def index_dataset(
    path: str | os.PathLike[str], *, val_fraction: float = 0.2, split_seed: int = 0,
    min_class_count: int = 5,
) -> DatasetIndex:
    """List a class-per-folder tree or a CSV manifest into a `DatasetIndex` (no decoding).

    Raises `UserError` with one line when the path is missing, unreadable or holds no images.
    """
    root = Path(os.path.expanduser(os.fspath(path)))
    if not root.exists():
        raise UserError(f"{root}: no such file or folder")
    out = _Listing()
    if root.is_file():
        from workbench.data.manifest import list_manifest

        if root.suffix.lower() != ".csv":
            raise UserError(f"{root}: not a folder or a .csv manifest")
        source = "csv"
        list_manifest(root, out)
    else:
        source = "folder"
        _list_folder_checked(root, out)
    if not out.paths:
        raise UserError(_no_images_message(root, out))
    index = _build_index(root, source, out, val_fraction, split_seed)
    _check_classes(index, min_class_count)
    return index


def _list_folder_checked(root: Path, out: _Listing) -> None:
    """`_list_folder`, with file-system errors turned into one readable line."""
    try:
        _list_folder(root, out)
    except PermissionError as exc:
        raise UserError(f"{exc.filename}: permission denied while listing") from exc
    except OSError as exc:
        raise UserError(f"{exc.filename or root}: cannot be listed ({exc.strerror})") from exc


def _no_images_message(root: Path, out: _Listing) -> str:
    """Why a source gave no images, in one line."""
    loose = out.count("unlabeled")
    if loose:
        return (f"{root}: {loose} image(s) but no class sub-folders; put each class's images "
                "in a sub-folder named after the class")
    if out.skipped:
        return (f"{root}: no images found ({out.skipped} other file(s) ignored); expected one "
                "sub-folder of images per class, or a CSV manifest path,label[,split]")
    return (f"{root}: no images found; expected one sub-folder of images per class "
            "(optionally under train/ val/ test/), or a CSV manifest path,label[,split]")


def open_dataset(
    path: str | os.PathLike[str], *, val_fraction: float = 0.2, split_seed: int = 0,
    min_class_count: int = 5,
) -> DatasetIndex:
    """`index_dataset`, also accepting "demo" for the bundled digits-lt dataset (built once)."""
    if os.fspath(path) == "demo":
        from workbench.data.demo import build_demo

        path = build_demo()
    return index_dataset(
        path, val_fraction=val_fraction, split_seed=split_seed, min_class_count=min_class_count
    )
