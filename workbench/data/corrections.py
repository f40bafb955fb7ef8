"""Label corrections: fix mislabelled images without touching the user's folders.

A corrections file is a CSV `path,action,label` kept beside a run (`RUN_DIR/corrections.csv`):
`relabel` moves an image to class `label`, `exclude` leaves it out. Opening a dataset with it
(`open_dataset(..., corrections=FILE)`, or `data.corrections` in the run config) applies it to
the listing only; the images stay where they are. Rows naming an image the dataset does not
have, or a class it does not have, are reported as problems (`bad_correction`) and skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from workbench.data.index import DatasetIndex, Problem
from workbench.errors import UserError

CORRECTIONS_NAME = "corrections.csv"
ACTIONS = ("relabel", "exclude")
HEADER = ["path", "action", "label"]


@dataclass(frozen=True)
class Correction:
    """One image's fix: `relabel` to class `label`, or `exclude` (label unused)."""

    path: str
    action: str
    label: str = ""


def read_corrections(file: str | os.PathLike[str]) -> list[Correction]:
    """The corrections in a CSV (a missing file has none); UserError when it is unreadable."""
    file = Path(file).expanduser()
    if not file.is_file():
        return []
    try:
        with open(file, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read the corrections file {file}: {exc}") from None
    if rows and [c.strip().lower() for c in rows[0][:3]] == HEADER:
        rows = rows[1:]
    out = {}
    for number, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        path, action, label = [*row, "", ""][:3]
        if action.strip() not in ACTIONS:
            raise UserError(f"{file}, line {number}: the action must be relabel or exclude, "
                            f"not {action!r}")
        out[path.strip()] = Correction(path.strip(), action.strip(), label.strip())
    return list(out.values())  # a later row for the same image wins


def write_corrections(file: str | os.PathLike[str], corrections: list[Correction]) -> Path:
    """Write the corrections (atomically: a temp file, then a rename)."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows([c.path, c.action, c.label] for c in corrections)
    tmp.replace(file)
    return file


def add_correction(file: str | os.PathLike[str], correction: Correction) -> list[Correction]:
    """Record one fix (replacing an earlier one for the same image); returns all of them."""
    kept = [c for c in read_corrections(file) if c.path != correction.path]
    kept.append(correction)
    write_corrections(file, kept)
    return kept


def remove_correction(file: str | os.PathLike[str], path: str) -> list[Correction]:
    """Forget the fix of one image; returns the rest."""
    kept = [c for c in read_corrections(file) if c.path != path]
    write_corrections(file, kept)
    return kept


def apply_corrections(index: DatasetIndex, corrections: list[Correction]) -> DatasetIndex:
    """A new index with the corrections applied; `corrected` counts what was applied and
    unusable rows become `bad_correction` problems."""
    where = {p: i for i, p in enumerate(index.paths)}
    root = Path(index.root if index.root.is_dir() else index.root.parent)
    classes = {name: c for c, name in enumerate(index.class_names)}
    labels, drop, problems = list(index.labels), set(), []
    counts = {"relabel": 0, "exclude": 0}
    for fix in corrections:
        i = where.get(fix.path, where.get(str(root / fix.path)))
        if i is None:
            problems.append(Problem("bad_correction", fix.path, "not an image of this dataset"))
        elif fix.action == "exclude":
            drop.add(i)
            counts["exclude"] += 1
        elif fix.label not in classes:
            problems.append(Problem("bad_correction", fix.path,
                                    f"no class {fix.label!r} in this dataset"))
        else:
            labels[i] = classes[fix.label]
            counts["relabel"] += 1
    keep = [i for i in range(len(index.paths)) if i not in drop]
    return dataclasses.replace(
        index, paths=[index.paths[i] for i in keep], labels=[labels[i] for i in keep],
        splits=[index.splits[i] for i in keep], problems=[*index.problems, *problems],
        corrected={k: v for k, v in counts.items() if v})
