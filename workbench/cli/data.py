"""`workbench demo-data` and `workbench scan`: the dataset commands (contract: docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from workbench.config import DataConfig
from workbench.errors import UserError

if TYPE_CHECKING:  # the handlers import what they use, so `--help` loads no numpy
    from workbench.data.index import DatasetIndex
    from workbench.data.stats import DatasetStats

MAX_TABLE_CLASSES = 100  # a 1000-class table helps nobody; the JSON has them all
MAX_TABLE_PROBLEMS = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `demo-data` and `scan` to the CLI."""
    demo = subparsers.add_parser("demo-data", help="build the digits-lt demo dataset (once)")
    demo.add_argument("--out", default=None, help="folder to build it in (default: user data)")
    demo.set_defaults(func=_demo_data)
    defaults = DataConfig()
    scan = subparsers.add_parser("scan", help="list a dataset, check its images, show its stats")
    scan.add_argument("path", help='a class-per-folder tree, a CSV manifest, or "demo"')
    scan.add_argument("--json", action="store_true", help="print one JSON object")
    scan.add_argument("--no-checks", action="store_true",
                      help="only list the files; do not decode them")
    scan.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                      help="validation share drawn when the dataset has no val split")
    scan.add_argument("--seed", type=int, default=defaults.split_seed, help="split seed")
    scan.add_argument("--min-class-count", type=int, default=defaults.min_class_count,
                      help="classes with fewer training images are reported")
    scan.add_argument("--follow-links", action="store_true",
                      help="follow symbolic links that lead outside the dataset's folder")
    scan.add_argument("--path-column", default="", metavar="NAME",
                      help="a CSV's image-path column, when its header is not recognised")
    scan.add_argument("--label-column", default="", metavar="NAME",
                      help="a CSV's label column, when its header is not recognised")
    scan.set_defaults(func=_scan)


def _demo_data(args: argparse.Namespace) -> int:
    """Build (or reuse) the demo and print its folder on the last line."""
    from workbench.data.demo import build_demo
    from workbench.data.scan import index_dataset

    root = build_demo(args.out)
    index = index_dataset(root)
    counts = index.split_counts()
    print(f"digits-lt: {counts.get('train', 0)} train / {counts.get('val', 0)} val images, "
          f"{index.num_classes} classes")
    print(root)
    return 0


def _scan(args: argparse.Namespace) -> int:
    """List, optionally check, and report a dataset; exit 2 when it cannot train a classifier."""
    from workbench.data.scan import open_configured
    from workbench.data.stats import dataset_stats, unusable_reason

    config = DataConfig(path=args.path, val_fraction=args.val_fraction, split_seed=args.seed,
                        min_class_count=args.min_class_count, path_column=args.path_column,
                        label_column=args.label_column)
    config.validate()
    index = open_configured(config, follow_outside_links=args.follow_links)
    if not args.no_checks:
        _run_checks_with_progress(index)
    stats = dataset_stats(index)
    reason = unusable_reason(index)
    if args.json:
        print(json.dumps(scan_json(index, stats, usable=reason is None), indent=2))
    else:
        print(scan_table(index, stats))
    if reason is not None:
        raise UserError(reason)
    return 0


def _run_checks_with_progress(index: DatasetIndex) -> None:
    """Run the checks, with a progress bar on an interactive terminal only."""
    from tqdm import tqdm

    from workbench.data.checks import run_checks

    with tqdm(total=len(index), unit="img", desc="checking", file=sys.stderr,
              disable=not sys.stderr.isatty(), leave=False) as bar:
        run_checks(index, on_progress=lambda event: bar.update(event.done - bar.n))


def scan_json(index: DatasetIndex, stats: DatasetStats, usable: bool = True) -> dict[str, Any]:
    """The `workbench scan --json` object (keys fixed by docs/cli.md, plus a few extras)."""
    return {
        "num_images": len(index),
        "num_classes": index.num_classes,
        "class_counts": stats.train_counts(),
        "imbalance_ratio": round(stats.imbalance_ratio, 4),
        "splits": index.split_counts(),
        "problems": [p.to_dict() for p in index.problems],
        "unlisted_problems": index.unlisted_problems,  # per kind, beyond the capped list
        "usable": usable,
        "root": str(index.root),
        "source": index.source,
        "val_generated": index.val_generated,
        "skipped_files": index.skipped_files,
        "images_per_class": stats.images_per_class,
        "bands": stats.bands,
    }


def _class_rows(index: DatasetIndex, stats: DatasetStats) -> list[list[str]]:
    """Header and one row per class (largest training class first), bounded."""
    splits = index.split_names()
    train = stats.train_counts()
    names = sorted(index.class_names, key=lambda n: (-train.get(n, 0), n))
    rows = [["class", *splits, "band"]]
    for name in names[:MAX_TABLE_CLASSES]:
        counts = [str(stats.class_counts[s].get(name, 0)) for s in splits]
        rows.append([name, *counts, stats.band_of(name)])
    if len(names) > MAX_TABLE_CLASSES:
        rows.append([f"... {len(names) - MAX_TABLE_CLASSES} more", *[""] * len(splits), ""])
    rows.append(["total", *[str(stats.split_counts[s]) for s in splits], ""])
    return rows


def _align(rows: list[list[str]]) -> list[str]:
    """Left-align the first column, right-align the counts."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) for cell, w in zip(row[1:-1], widths[1:-1], strict=True)]
        cells.append(row[-1].ljust(widths[-1]))
        lines.append("  ".join(cells).rstrip())
    return lines


def scan_table(index: DatasetIndex, stats: DatasetStats) -> str:
    """The readable report printed by `workbench scan` without `--json`."""
    generated = " (val split generated)" if index.val_generated else ""
    ipc = stats.images_per_class
    lines = [f"{index.root}  [{index.source}; {len(index)} images, {index.num_classes} classes"
             f"{generated}]", ""]
    lines += _align(_class_rows(index, stats))
    lines += [
        "",
        f"imbalance ratio  {stats.imbalance_ratio:.1f}  (largest / smallest non-empty "
        "training class)",
        f"images per class min {ipc['min']:g}, median {ipc['median']:g}, max {ipc['max']:g}",
        "shot bands       " + ", ".join(f"{b} {len(c)}" for b, c in stats.bands.items()),
    ]
    if index.skipped_files:
        lines.append(f"ignored files    {index.skipped_files} (not images)")
    return "\n".join(lines + _problem_lines(index))


def _problem_lines(index: DatasetIndex) -> list[str]:
    """A summary by kind, then the first few problems."""
    counts = index.problem_counts()
    if not counts:
        return ["problems         none"]
    lines = ["problems         " + ", ".join(f"{n} {k}" for k, n in counts.items())]
    for p in index.problems[:MAX_TABLE_PROBLEMS]:
        lines.append(f"  {p.kind:<18} {p.path}" + (f"  ({p.detail})" if p.detail else ""))
    if len(index.problems) > MAX_TABLE_PROBLEMS:
        lines.append(f"  ... {len(index.problems) - MAX_TABLE_PROBLEMS} more (see --json)")
    return lines
