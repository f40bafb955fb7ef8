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

from workbench.config import DataConfig
from workbench.data.index import DatasetIndex, Problem
from workbench.data.links import Links, is_dir, is_file
from workbench.data.manifest import (
    METADATA,
    NOT_REGULAR,
    ColumnNames,
    list_manifest,
    list_metadata,
)
from workbench.data.names import (
    IMAGE_EXTENSIONS,
    JUNK_NAMES,
    SPLIT_FOLDERS,
    is_image_name,
    is_junk_name,
)
from workbench.errors import UserError

__all__ = ["IMAGE_EXTENSIONS", "JUNK_NAMES", "index_dataset", "is_image_name", "is_junk_name",
           "open_configured", "open_dataset"]

MAX_LISTED_PROBLEMS = 50  # per kind found while listing: the count stays exact, the list bounded


class _Listing:
    """What listing accumulates: images with their class and split, and bounded problems."""

    def __init__(self, root: Path | None = None, follow_outside_links: bool = False,
                 columns: ColumnNames | None = None) -> None:
        self.columns = columns or ColumnNames()
        self.metadata: list[str] = []  # the metadata.csv files read (a Hugging Face imagefolder)
        self.paths: list[str] = []
        self.class_of: list[str] = []
        self.splits: list[str] = []
        self.problems: list[Problem] = []
        self.classes: set[str] = set()  # every class seen, including empty ones
        self.class_dirs: dict[tuple[str, str], str] = {}  # (split, class) -> its folder
        self.skipped = 0
        self._per_kind: dict[str, int] = {}
        self.links = Links(root, follow_outside_links)

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


def _subdirs(folder: str, out: _Listing | None = None) -> list[os.DirEntry[str]]:
    """Visible sub-folders, sorted by name (junk folders and refused links left out)."""
    with os.scandir(folder) as it:
        dirs = [e for e in it if not is_junk_name(e.name) and is_dir(e)
                and (out is None or out.links.allowed(e, out.problem))]
    return sorted(dirs, key=lambda e: e.name)


def _list_class_folder(folder: os.DirEntry[str], parent: str, label: str, split: str,
                       out: _Listing) -> int:
    """List the images under one class folder (recursively); returns how many were found.

    Files are sorted by path, so the index (and the seeded split drawn from it) never depends on
    the order the file system happened to list them in. Only regular files are images: a FIFO,
    socket or device (or a link to one) named like an image is listed as a problem, never read.
    The walk is a stack, not recursion, and costs a fixed number of system calls per entry, so
    a 2,000-deep tree lists as fast as a wide one.
    """
    images: list[str] = []
    pending = [folder.path] if out.links.enter(folder, parent, out.problem) else []
    while pending:
        current = pending.pop()
        with os.scandir(current) as it:
            for entry in it:
                _list_entry(entry, current, images, pending, out)
    images.sort()
    out.paths.extend(images)
    out.class_of.extend([label] * len(images))
    out.splits.extend([split] * len(images))
    return len(images)


def _list_entry(entry: os.DirEntry[str], parent: str, images: list[str], pending: list[str],
                out: _Listing) -> None:
    """Sort one directory entry of a class folder: image, sub-folder to walk, or problem."""
    name = entry.name
    if is_junk_name(name) or not out.links.allowed(entry, out.problem):
        return
    if is_dir(entry):
        if out.links.enter(entry, parent, out.problem):
            pending.append(entry.path)
    elif not is_image_name(name):
        out.skipped += 1
        out.problem("not_image", entry.path, "not an image file; ignored")
    elif not is_file(entry):
        out.problem("special_file", entry.path, NOT_REGULAR)
    else:
        images.append(entry.path)


def _list_classes(folder: str, split: str, out: _Listing) -> None:
    """List every class sub-folder of `folder` into `out`, noting empty classes and stray files."""
    entries = _subdirs(folder, out)
    for entry in entries:  # every class folder is claimed first: a link into one is a duplicate
        out.links.claim(entry, folder)
    for entry in entries:
        out.classes.add(entry.name)
        out.class_dirs[(split, entry.name)] = entry.path
        if _list_class_folder(entry, folder, entry.name, split, out) == 0:
            out.problem("empty_class", entry.path, f"class '{entry.name}' has no images")
    with os.scandir(folder) as it:
        for entry in it:
            if is_junk_name(entry.name) or is_dir(entry) or entry.name == METADATA:
                continue  # a metadata.csv without labels (captions) is not a stray file
            out.skipped += 1
            kind = "unlabeled" if is_image_name(entry.name) else "not_image"
            out.problem(kind, entry.path, "not inside a class folder; ignored")


def _list_folder(root: Path, out: _Listing) -> None:
    """List a class-per-folder tree, with or without train/val/test folders on top, or a
    Hugging Face imagefolder (a metadata.csv at the top or in each split folder)."""
    _list_splits(root, out)
    again = out.links.duplicates(out.paths)
    for i, first in again.items():
        out.problem("duplicate_link", out.paths[i], f"the same file as {first}; counted once")
    if again:
        keep = [i for i in range(len(out.paths)) if i not in again]
        out.paths = [out.paths[i] for i in keep]
        out.class_of = [out.class_of[i] for i in keep]
        out.splits = [out.splits[i] for i in keep]


def _list_splits(root: Path, out: _Listing) -> None:
    out.links.claim_root(str(root))
    if list_metadata(str(root), None, out):
        return
    top = _subdirs(str(root))
    if not any(e.name.lower() in SPLIT_FOLDERS for e in top):
        _list_classes(str(root), "train", out)
        return
    for entry in top:
        split = SPLIT_FOLDERS.get(entry.name.lower())
        if split is None:
            out.problem("ignored_folder", entry.path, "beside train/val/test folders; ignored")
            continue
        out.links.claim(entry, str(root))
        if not list_metadata(entry.path, split, out):
            _list_classes(entry.path, split, out)


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


def _check_classes(index: DatasetIndex, min_class_count: int,
                   class_dirs: dict[tuple[str, str], str]) -> None:
    """Flag classes with too few training images (empty ones were flagged while listing) and
    splits that disagree: a class without training images, or without validation images when
    the dataset brought its own validation split.

    A problem's path is the class's folder in the split concerned (its name for a CSV).
    """
    training = index.training_split()

    def where(split: str, name: str) -> str:
        return class_dirs.get((split, name)) or class_dirs.get((training, name)) or name

    train_counts = index.class_counts(training)
    for name, count in train_counts.items():
        if 0 < count < min_class_count:
            index.problems.append(Problem(
                "small_class", where(training, name),
                f"class '{name}' has {count} training image(s), fewer than {min_class_count}",
            ))
    for split in index.split_names():
        if split == training:
            continue
        counts = index.class_counts(split)
        for name in index.class_names:
            if counts[name] and not train_counts[name]:
                index.problems.append(Problem(
                    "split_mismatch", where(split, name),
                    f"class '{name}' has {split} images but no training images"))
            elif split == "val" and not index.val_generated and train_counts[name] \
                    and not counts[name]:
                index.problems.append(Problem(
                    "split_mismatch", where(training, name),
                    f"class '{name}' has no validation images: its accuracy cannot be measured"))


def index_dataset(
    path: str | os.PathLike[str], *, val_fraction: float = 0.2, split_seed: int = 0,
    min_class_count: int = 5, follow_outside_links: bool = False,
    columns: ColumnNames | None = None,
) -> DatasetIndex:
    """List a class-per-folder tree, a Hugging Face imagefolder or a CSV into a `DatasetIndex`
    (no decoding).

    Symbolic links that lead outside the dataset's folder are listed as problems and skipped
    unless `follow_outside_links`. `columns` names a CSV's path and label columns when its
    header is not recognised. Raises `UserError` with one line when the path is missing,
    unreadable or holds no images.
    """
    text = os.fspath(path)
    if not text.strip():  # Path("") is ".": an empty argument must not scan the current folder
        raise UserError("no dataset given: name a folder or a .csv manifest")
    root = Path(os.path.expanduser(text))
    if not root.exists():
        raise UserError(f"{root}: no such file or folder")
    out = _Listing(root, follow_outside_links, columns)
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise UserError(f"{root}: not a folder or a .csv manifest")
        list_manifest(root, out)
    else:
        _list_folder_checked(root, out)
    source = "csv" if root.is_file() or out.metadata else "folder"
    if not out.paths:
        raise UserError(_no_images_message(root, out))
    index = _build_index(root, source, out, val_fraction, split_seed)
    _check_classes(index, min_class_count, out.class_dirs)
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
    if root.is_file() or out.metadata:
        return _no_rows_message(root, out)
    loose = out.count("unlabeled")
    outside = out.count("outside_root")
    if outside:
        return (f"{root}: no images inside it; {outside} link(s) lead outside the dataset's "
                "folder and were skipped (scan --follow-links follows them)")
    if loose:
        return (f"{root}: {loose} image(s) but no class sub-folders; put each class's images "
                "in a sub-folder named after the class")
    if out.skipped:
        return (f"{root}: no images found ({out.skipped} other file(s) ignored); expected one "
                f"sub-folder of images per class, a {METADATA}, or a CSV manifest "
                "path,label[,split]")
    return (f"{root}: no images found; expected one sub-folder of images per class "
            f"(optionally under train/ val/ test/), a {METADATA}, or a CSV manifest "
            "path,label[,split]")


def _no_rows_message(root: Path, out: _Listing) -> str:
    """Why a CSV (or metadata.csv) gave no images, in one line."""
    csv_file = out.metadata[0] if out.metadata else str(root)
    missing = out.count("missing_file")
    if missing:
        first = next(p.path for p in out.problems if p.kind == "missing_file")
        return (f"{csv_file}: none of the {missing} file(s) it names exist (e.g. {first}); "
                f"relative paths are read from the CSV's own folder")
    special = out.count("special_file")
    if special:
        return f"{csv_file}: the {special} path(s) it names are not regular files"
    if out.skipped:
        return (f"{csv_file}: no images listed ({out.skipped} row(s) name files that are not "
                "images)")
    return f"{csv_file}: no rows with a path and a label"


def open_dataset(
    path: str | os.PathLike[str], *, val_fraction: float = 0.2, split_seed: int = 0,
    min_class_count: int = 5, follow_outside_links: bool = False,
    corrections: str | os.PathLike[str] | None = None, columns: ColumnNames | None = None,
) -> DatasetIndex:
    """`index_dataset`, also accepting "demo" for the bundled digits-lt dataset (built once);
    `corrections` names a label-corrections CSV applied to the listing (data/corrections.py)."""
    if os.fspath(path) == "demo":
        from workbench.data.demo import build_demo

        path = build_demo()
    index = index_dataset(
        path, val_fraction=val_fraction, split_seed=split_seed, min_class_count=min_class_count,
        follow_outside_links=follow_outside_links, columns=columns,
    )
    if corrections:
        from workbench.data.corrections import apply_corrections, read_corrections

        index = apply_corrections(index, read_corrections(corrections))
    return index


def open_configured(data: DataConfig, path: str | os.PathLike[str] | None = None, *,
                    follow_outside_links: bool = False) -> DatasetIndex:
    """`open_dataset` with every listing setting of a `DataConfig` (its split, minimum class
    size, corrections and CSV columns); `path` overrides `data.path`."""
    return open_dataset(
        data.path if path is None else path, val_fraction=data.val_fraction,
        split_seed=data.split_seed, min_class_count=data.min_class_count,
        follow_outside_links=follow_outside_links, corrections=data.corrections or None,
        columns=ColumnNames(data.path_column, data.label_column),
    )
