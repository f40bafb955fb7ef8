"""Listing a CSV manifest `path,label[,split]` (header row required).

Paths are resolved against the CSV's folder unless absolute. A row that names a missing file, a
non-image file, an unknown split, or repeats an earlier path becomes a `Problem`; only a manifest
that cannot be read or lacks a required column raises `UserError`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Protocol

from workbench.data.names import SPLIT_FOLDERS, is_image_name
from workbench.errors import UserError

REQUIRED_COLUMNS = ("path", "label")


class ListingSink(Protocol):
    """Where listed rows go (scan.py's listing accumulator)."""

    classes: set[str]
    skipped: int

    def add(self, path: str, label: str, split: str) -> None:
        """Record one image."""

    def problem(self, kind: str, path: str, detail: str = "") -> None:
        """Record one problem."""


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header (lower-cased, stripped) and the data rows; UserError when unreadable."""
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
        raise UserError(f"{path}: empty manifest; expected a header row path,label[,split]")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        found = ",".join(header) or "nothing"
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must be "
            f"path,label[,split] (found {found})"
        )
    return header, rows[1:]


def list_manifest(path: Path, out: ListingSink) -> None:
    """List every row of the manifest at `path` into `out`."""
    header, rows = _read_rows(path)
    cols = {name: header.index(name) for name in ("path", "label", "split") if name in header}
    base = path.parent
    seen: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless
        _list_row(row, cols, f"{path.name}:{line}", base, seen, out)
    _note_outside(base, seen, path.name, out)


def _note_outside(base: Path, seen: dict[str, str], manifest: str, out: ListingSink) -> None:
    """List the rows whose file (links resolved) lies outside the manifest's folder.

    They are used (a manifest names its files on purpose), but a downloaded manifest that
    reaches into the rest of the disk should not pass unnoticed.
    """
    folder = os.path.realpath(base)
    prefix = folder.rstrip(os.sep) + os.sep
    real_dirs: dict[str, str] = {}
    for full in seen:
        parent, name = os.path.split(full)
        if parent not in real_dirs:
            real_dirs[parent] = os.path.realpath(parent)
        real = os.path.join(real_dirs[parent], name)
        if os.path.islink(full):
            real = os.path.realpath(full)
        if not real.startswith(prefix):
            out.problem("outside_root", full, f"outside the folder of {manifest}; used")


def _cell(row: list[str], cols: dict[str, int], name: str) -> str:
    """One stripped cell, "" when the row is short or the column absent."""
    i = cols.get(name)
    return row[i].strip() if i is not None and i < len(row) else ""


def _list_row(
    row: list[str], cols: dict[str, int], where: str, base: Path, seen: dict[str, str],
    out: ListingSink,
) -> None:
    """Check one row and record it as an image or as a problem."""
    rel, label, split_text = _cell(row, cols, "path"), _cell(row, cols, "label"), \
        _cell(row, cols, "split")
    if not rel or not label:
        out.problem("bad_row", where, "empty path or label")
        return
    split = SPLIT_FOLDERS.get(split_text.lower(), None) if split_text else "train"
    if split is None:
        out.problem("bad_row", where, f"unknown split '{split_text}' (use train, val or test)")
        return
    full = os.path.normpath(os.path.join(base, os.path.expanduser(rel)))
    if full in seen:
        clash = "" if seen[full] == label else f" with a different label ('{seen[full]}')"
        out.problem("duplicate_row", full, f"{where} repeats an earlier row{clash}; ignored")
        return
    seen[full] = label
    if not is_image_name(full):
        out.skipped += 1
        out.problem("not_image", full, f"{where}: not an image file; ignored")
    elif not os.path.isfile(full):
        out.problem("missing_file", full, f"{where}: no such file")
    else:
        out.classes.add(label)
        out.add(full, label, split)
