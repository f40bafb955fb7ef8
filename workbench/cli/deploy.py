"""`workbench predict` and `workbench export`: use a finished run from the command line.

`predict` prints one line per image (or `--json`, or a CSV with `--csv OUT`), a progress bar (on
a terminal only) and the skipped files on stderr; exit 0 when at least one image was classified,
2 when none was.
`export` prints the written file's path on the last line of stdout (`--json`: one object with
the path, format, card, input size, classes and preprocessing). Torch is imported only in the
handlers, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

from workbench.cli import output
from workbench.errors import UserError

FORMATS = ("onnx", "torchscript", "torchvision")  # deploy.export.EXPORT_FORMATS, without torch
CHECKPOINT_CHOICES = ("best", "last")
DEVICE_WORDS = "auto, cpu, cuda, cuda:N (the GPU numbered N) or mps"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `predict` and `export` to the CLI."""
    p = subparsers.add_parser("predict", help="classify images with a finished run's model")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds config.toml)")
    p.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders (recursive)")
    p.add_argument("--checkpoint", choices=CHECKPOINT_CHOICES, default="best")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes per image")
    p.add_argument("--device", default="auto",
                   help=f"{DEVICE_WORDS} (auto: a GPU when there is one)")
    p.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON list")
    out.add_argument("--csv", metavar="OUT", help="write a CSV: path, label1, prob1, ...")
    p.set_defaults(func=_predict)

    e = subparsers.add_parser("export", help="export a finished run's model")
    e.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds config.toml)")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--checkpoint", choices=CHECKPOINT_CHOICES, default="best")
    e.add_argument("--out", metavar="PATH", default=None,
                   help="file (or folder) to write; default RUN_DIR/export/")
    e.add_argument("--json", action="store_true",
                   help="print one JSON object: path, format, card, input_size, classes, "
                        "preprocessing")
    e.set_defaults(func=_export)


def _predict(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, not {args.top_k}")
    if args.csv:
        _check_writable(Path(args.csv))
    device = predict_device(args.device)
    from workbench.train.trained import load_trained

    trained = load_trained(args.run_dir, args.checkpoint, device=device)
    predictions, skipped = _run_predict(trained, args)
    if not predictions:
        raise UserError(f"no image could be classified ({len(skipped)} input(s) skipped)")
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=2))
    elif args.csv:
        _write_csv(Path(args.csv), predictions)
        print(args.csv)
    else:
        for p in predictions:
            print(f"{p.path}\t" + ", ".join(f"{label} {prob:.1%}" for label, prob in p.top))
    return 0


def predict_device(name: str) -> str:
    """The device `--device NAME` names, resolved; a UserError naming the valid names and this
    machine's devices when it is not one, or not here."""
    from workbench.config import DEVICES, gpu_number
    from workbench.devices import device_available, gpu_count, resolve_device

    name = name.strip().lower()
    if name in DEVICES or gpu_number(name) is not None:
        if device_available(name):
            return resolve_device(name)
        problem = f"--device {name} is not available on this machine"
    else:
        problem = f"--device {name!r} is not a device name (use {DEVICE_WORDS})"
    gpus = gpu_count()
    here = ["cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(gpus)] if gpus else [])
    if device_available("mps"):
        here.append("mps")
    raise UserError(f"{problem}; here: auto, {', '.join(here)}")


def _run_predict(trained: Any, args: argparse.Namespace) -> tuple[list, list]:
    from workbench.deploy.predict import iter_predict

    predictions, skipped, bar = [], [], None
    try:
        for batch in iter_predict(trained, args.paths, top_k=args.top_k,
                                  batch_size=max(1, args.batch_size)):
            if bar is None:  # the first event knows how many images there are
                bar = output.bar(total=batch.total, desc="predict", unit="img", leave=False)
            bar.update(batch.done - bar.n)
            predictions.extend(batch.predictions)
            for item in batch.skipped:  # even under -q: the user should know what was left out
                bar.write(f"workbench: skipped {item.path}: {item.reason}", file=sys.stderr)
            skipped.extend(batch.skipped)
    finally:
        if bar is not None:
            bar.close()
    return predictions, skipped


def _check_writable(path: Path) -> None:
    """Refuse an output file that cannot be written, before any work (and without creating it)."""
    folder = path.expanduser().parent
    if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {path}: "
                        + ("it is a folder" if path.is_dir() else f"{folder} is not a "
                           "writable folder"))


def _write_csv(path: Path, predictions: list) -> None:
    from workbench.deploy.files import atomic_write

    k = max(len(p.top) for p in predictions)
    header = ["path"] + [f"{c}{i}" for i in range(1, k + 1) for c in ("label", "prob")]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for p in predictions:
                writer.writerow([p.path] + [v for label, prob in p.top
                                            for v in (label, f"{prob:.6f}")])

    atomic_write(path, write)


def _export(args: argparse.Namespace) -> int:
    from workbench.deploy.export import card_path, export_model, export_record
    from workbench.train.trained import load_trained

    trained = load_trained(args.run_dir, args.checkpoint)
    output.say(f"exporting {trained.plan.backbone} ({len(trained.class_names)} classes) as "
               f"{args.format}...")
    path = export_model(trained, args.format, args.out)
    if args.json:
        print(json.dumps(export_record(trained, args.format, path), indent=2))
        return 0
    output.say(f"model card: {card_path(path)}")
    print(path)
    return 0
