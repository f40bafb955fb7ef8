"""Listing a CSV of image paths and labels (a header row is required).

Three common shapes are recognised by their header: the workbench's own manifest
`path,label[,split]`; fastai / Kaggle CSVs such as `filename,label`, `image,label` or `id,label`;
and a Hugging Face imagefolder's `metadata.csv` (`file_name,label`, extra columns allowed), read
from the dataset's folder or from each of its split folders as `datasets` does. Any other header
works when its columns are named (`data.path_column`, `data.label_column`).

Paths are resolved against the CSV's folder unless absolute; a name without an image extension
(a Kaggle `id`) names the one image in that folder with that name plus an extension. A row that
names a missing file, something that is not a regular file, a non-image file, an unknown split,
or repeats an earlier path becomes a `Problem`; only a CSV that cannot be read or lacks a
required column raises `UserError`.
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from workbench.data.names import SPLIT_FOLDERS, is_image_name, is_junk_name
from workbench.errors import UserError

# header names understood without a mapping, most specific first
PATH_COLUMNS = ("path", "file_name", "filename", "file_path", "filepath", "file", "image_path",
                "image", "img", "fname", "image_id", "id", "name")
LABEL_COLUMNS = ("label", "class", "class_name", "category", "target")
SPLIT_COLUMN = "split"
METADATA = "metadata.csv"  # a Hugging Face imagefolder's labels, beside the images
NOT_REGULAR = "not a regular file (a pipe, device, socket or broken link); ignored"


@dataclass(frozen=True)
class ColumnNames:
    """Which CSV columns hold the image path and the label ("" : recognised from the header)."""

    path: str = ""
    label: str = ""


class ListingSink(Protocol):
    """Where listed rows go (scan.py's listing accumulator)."""

    classes: set[str]
    skipped: int
    columns: ColumnNames
    metadata: list[str]

    def add(self, path: str, label: str, split: str) -> None:
        """Record one image."""

    def problem(self, kind: str, path: str, detail: str = "") -> None:
        """Record one problem."""


def normalise_column(name: str) -> str:
    """A header cell as compared: stripped, lower case, spaces and dashes as underscores."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header (normalised) and the data rows; UserError when unreadable."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    except PermissionError as exc:
        raise UserError(f"{path}: permission denied") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a UTF-8 text file") from exc
    except (OSError, csv.Error) as exc:
        raise UserError(f"{path}: cannot be read as CSV ({exc})") from exc
    if not rows:
        raise UserError(f"{path}: empty CSV; expected a header row such as path,label[,split]")
    return [normalise_column(cell) for cell in rows[0]], rows[1:]


def accepted_headers() -> str:
    """The header names recognised without a mapping, as one phrase for messages."""
    return (f"path columns {', '.join(PATH_COLUMNS)}; label columns {', '.join(LABEL_COLUMNS)}; "
            f"optional column {SPLIT_COLUMN}")


def _pick(header: list[str], named: str, accepted: tuple[str, ...]) -> int | None:
    """Position of the named column, else of the first accepted name present."""
    if named:
        wanted = normalise_column(named)
        return header.index(wanted) if wanted in header else None
    return next((header.index(name) for name in accepted if name in header), None)


def resolve_columns(header: list[str], names: ColumnNames, where: Path,
                    required: bool = True) -> dict[str, int] | None:
    """Column positions of "path", "label" and (when present) "split".

    A header without a path or label column raises `UserError` naming the header found and the
    accepted names; with `required=False` (a metadata.csv, whose labels may come from folders)
    it returns None instead, unless the columns were named explicitly.
    """
    path_at = _pick(header, names.path, PATH_COLUMNS)
    label_at = _pick(header, names.label, LABEL_COLUMNS)
    if path_at is not None and label_at is not None and path_at != label_at:
        cols = {"path": path_at, "label": label_at}
        if SPLIT_COLUMN in header and header.index(SPLIT_COLUMN) not in (path_at, label_at):
            cols["split"] = header.index(SPLIT_COLUMN)
        return cols
    if not required and not (names.path or names.label):
        return None
    if path_at is not None and path_at == label_at:
        raise UserError(f"{where}: the path and the label cannot be the same column "
                        f"('{header[path_at]}'); name two columns of its header")
    raise UserError(_header_message(header, names, where, path_at is None))


def _header_message(header: list[str], names: ColumnNames, where: Path, no_path: bool) -> str:
    found = ",".join(header) or "nothing"
    which = "path" if no_path else "label"
    named = names.path if no_path else names.label
    if named:
        return (f"{where}: no column '{named}' (data.{which}_column) in its header ({found})")
    return (f"{where}: no {which} column recognised in its header ({found}); accepted: "
            f"{accepted_headers()}; or name the columns with data.path_column and "
            "data.label_column (scan --path-column/--label-column)")


def columns_to_name(source: str | os.PathLike[str],
                    names: ColumnNames) -> tuple[Path, list[str]] | None:
    """The CSV, with its header cells as written, whose path and label columns must be named
    before `source` (a CSV or a folder with metadata.csv files) can open; None when every CSV
    it holds is understood. What the Dataset tab asks about after a failed open."""
    source = Path(source)
    if source.is_file():
        candidates = [(source, True)]
    else:
        folders = [source] + [source / name for name in SPLIT_FOLDERS]
        candidates = [(folder / METADATA, False) for folder in folders]
    for path, required in candidates:
        header = _header_cells(path)
        if header is None:
            continue
        try:
            resolve_columns([normalise_column(c) for c in header], names, path, required)
        except UserError:
            return path, header
    return None


def _header_cells(path: Path) -> list[str] | None:
    """The first row of a CSV file, None when there is none or it cannot be read."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def list_manifest(path: Path, out: ListingSink) -> None:
    """List every row of the CSV at `path` into `out` (rows without a split are training)."""
    header, rows = _read_rows(path)
    cols = resolve_columns(header, out.columns, path)
    assert cols is not None  # required columns: resolve_columns raised otherwise
    _Manifest(path, cols, out, "train", False).list(rows)


def list_metadata(folder: str, split: str | None, out: ListingSink) -> bool:
    """List `folder/metadata.csv`, a Hugging Face imagefolder's labels, when it has path and
    label columns; False when there is none or it has no label column (then, as in `datasets`,
    the class folders name the labels).

    `split` is the split folder holding it; at the dataset's top (`split` None) a row's split
    is its split column, else its path's first folder when that is train/val/test.
    """
    path = Path(folder) / METADATA
    if not path.is_file():
        return False
    header, rows = _read_rows(path)
    cols = resolve_columns(header, out.columns, path, required=False)
    if cols is None:
        return False
    out.metadata.append(str(path))
    _Manifest(path, cols, out, split or "train", split is None).list(rows)
    return True


class _Manifest:
    """One CSV being listed: its columns, its folder, and the rows seen so far."""

    def __init__(self, path: Path, cols: dict[str, int], out: ListingSink, default_split: str,
                 split_from_path: bool) -> None:
        self.path, self.cols, self.out = path, cols, out
        self.base = path.parent
        self.default_split, self.split_from_path = default_split, split_from_path
        self.seen: dict[str, str] = {}  # full path -> label
        self.listed: list[str] = []
        self.stems: dict[str, dict[str, list[str]]] = {}  # folder -> name sans extension -> files

    def list(self, rows: list[list[str]]) -> None:
        """List every row, then note the listed files that lie outside the CSV's folder."""
        for line, row in enumerate(rows, start=2):
            if any(cell.strip() for cell in row):  # blank lines are harmless
                self.row(row, f"{self.path.name}:{line}")
        self.note_outside()

    def cell(self, row: list[str], name: str) -> str:
        """One stripped cell, "" when the row is short or the column absent."""
        i = self.cols.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    def row(self, row: list[str], where: str) -> None:
        """Check one row and record it as an image or as a problem."""
        out = self.out
        rel, label, split_text = self.cell(row, "path"), self.cell(row, "label"), \
            self.cell(row, "split")
        if not rel or not label:
            out.problem("bad_row", where, "empty path or label")
            return
        if "\x00" in rel:  # no file system takes it (os calls raise ValueError)
            out.problem("bad_row", where, "the path contains a NUL character")
            return
        split = self._split(rel, split_text)
        if split is None:
            out.problem("bad_row", where, f"unknown split '{split_text}' (use train, val or test)")
            return
        full = self.resolve(os.path.normpath(os.path.join(self.base, os.path.expanduser(rel))))
        if full in self.seen:
            clash = "" if self.seen[full] == label else \
                f" with a different label ('{self.seen[full]}')"
            out.problem("duplicate_row", full, f"{where} repeats an earlier row{clash}; ignored")
            return
        self.seen[full] = label
        if self._usable(full, rel, where):
            out.classes.add(label)
            out.add(full, label, split)
            self.listed.append(full)

    def _split(self, rel: str, split_text: str) -> str | None:
        """The split column's split (None when unknown), else the path's or the default."""
        if split_text:
            return SPLIT_FOLDERS.get(split_text.lower())
        parts = [p for p in rel.replace("\\", "/").split("/") if p != "."]
        if self.split_from_path and len(parts) > 1:
            return SPLIT_FOLDERS.get(parts[0].lower(), self.default_split)
        return self.default_split

    def _usable(self, full: str, rel: str, where: str) -> bool:
        """Whether the row's file is an image to list (a problem recorded when it is not)."""
        out = self.out
        if any(is_junk_name(part) for part in Path(rel).parts if part not in (".", "..")):
            out.skipped += 1
            out.problem("not_image", full, f"{where}: a file that systems or tools leave beside "
                        "data (a macOS ._ fork, a NAS thumbnail folder); ignored")
            return False
        if not is_image_name(full) and not os.path.splitext(full)[1] \
                and not os.path.lexists(full):  # an id naming no image
            out.problem("missing_file", full, f"{where}: no such file, nor an image named like "
                        "it plus an extension")
            return False
        if not is_image_name(full):
            out.skipped += 1
            out.problem("not_image", full, f"{where}: not an image file; ignored")
            return False
        try:
            mode = os.stat(full).st_mode
        except OSError as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError | NotADirectoryError) \
                else f"cannot be read ({exc.strerror})"
            out.problem("missing_file", full, f"{where}: {reason}")
            return False
        if not stat.S_ISREG(mode):
            out.problem("special_file", full, f"{where}: {NOT_REGULAR}")
            return False
        return True

    def resolve(self, full: str) -> str:
        """`full`, or for a name without an image extension the one image in its folder named
        like it plus an extension (a Kaggle `id` column); unchanged when there is not one."""
        if is_image_name(full):
            return full
        folder, name = os.path.split(full)
        if folder not in self.stems:
            self.stems[folder] = _images_by_stem(folder)
        matches = self.stems[folder].get(name, [])
        return os.path.join(folder, matches[0]) if len(matches) == 1 else full

    def note_outside(self) -> None:
        """List the listed files whose real path lies outside the CSV's folder.

        They are used (a manifest names its files on purpose), but a downloaded manifest that
        reaches into the rest of the disk should not pass unnoticed.
        """
        folder = os.path.realpath(self.base)
        prefix = folder.rstrip(os.sep) + os.sep
        real_dirs: dict[str, str] = {}
        for full in self.listed:
            parent, name = os.path.split(full)
            if parent not in real_dirs:
                real_dirs[parent] = os.path.realpath(parent)
            real = os.path.join(real_dirs[parent], name)
            if os.path.islink(full):
                real = os.path.realpath(full)
            if not real.startswith(prefix):
                self.out.problem("outside_root", full,
                                 f"outside the folder of {self.path.name}; used")


def _images_by_stem(folder: str) -> dict[str, list[str]]:
    """The image files of `folder` by name without extension ({} when it cannot be listed)."""
    stems: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if is_image_name(entry.name) and not is_junk_name(entry.name):
                    stems.setdefault(os.path.splitext(entry.name)[0], []).append(entry.name)
    except OSError:
        return {}
    return stems
