"""Benchmark: training recipes against today's default, on sets of the advisor's suite.

Each set of benchmarks/suite/advisor_suite.py (rebuilt offline if needed) is cut to a small
subset (`--per-class` training and `--val-per-class` validation images per class, the first
ones in file order) and trained with the workbench's own engine at `--size` px (160 by default)
from mobilenet_v2's ImageNet weights: once with today's default config (full fine-tuning, SGD,
warm-up + cosine, no augmentation), then once per option, each changing one thing. Every run
takes the same optimisation steps (same epochs, batch size and images: an equal budget; the
measured CPU seconds are printed beside). Augmentation costs a little CPU per image, the head-only
epochs of freeze-then-unfreeze save the backbone's backward pass.

Per run: `set option bal_acc best seconds`; per option: the mean over the sets and the
difference to the default, and on how many sets it did better / worse / the same. Lines for
scripts: `RESULT recipes option=NAME mean_bal_acc=... delta=... better=.. worse=.. same=..
cpu_seconds=... runs=...`, then one `RESULT recipes_summary runs=... size=... best_option=...
best_delta=...` (with `--from-logs`, a set trained with another seed counts as another run).
`--budget-s` caps the total compute (CPU seconds of this process): runs left when it is spent
are reported as skipped.
On 2 shared CPU cores these are small runs: a difference of a few points is within the noise of
one seed (see docs/recipes.md for the run and its reading).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "suite"))

from advisor_suite import BACKBONE, WEIGHTS, build  # noqa: E402

SETS = ("mnist-30", "sk-digits-5", "spectrograms-5")


def options() -> dict[str, dict[str, dict]]:
    """Each option: the config changes ({section: {key: value}}) from the default. Schedule
    options appear when the engine's config has their keys."""
    from workbench.config import TrainConfig

    found: dict[str, dict[str, dict]] = {
        "default": {},
        "augment-light": {"data": {"augment": "light"}},
        "augment-standard": {"data": {"augment": "standard"}},
        "augment-strong": {"data": {"augment": "strong"}},
        "label-smoothing-0.1": {"train": {"label_smoothing": 0.1}},
        "mixup-0.2": {"data": {"mixup": 0.2}},
        "cutmix-1.0": {"data": {"cutmix": 1.0}},
    }
    keys = {f.name for f in dataclasses.fields(TrainConfig)}
    if "schedule" in keys:
        found["one-cycle"] = {"train": {"schedule": "one_cycle"}}
    if "unfreeze_after_epochs" in keys:
        found["freeze-then-unfreeze"] = {"train": {"unfreeze_after_epochs": 1}}
    return found


def subset(source: Path, dest: Path, per_class: int, val_per_class: int) -> Path:
    """Copy the first images of each class of `source`'s train/ and val/ into `dest`."""
    for split, count in (("train", per_class), ("val", val_per_class)):
        for folder in sorted((source / split).iterdir()):
            if not folder.is_dir():
                continue
            target = dest / split / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for image in sorted(folder.glob("*.png"))[:count]:
                shutil.copy2(image, target / image.name)
    return dest


def base_config(path: Path, args: argparse.Namespace, out: Path):
    """Today's default config on one set, at the benchmark's size, epochs and batch."""
    from workbench.config import RunConfig

    c = RunConfig()
    c.data.path, c.data.input_size, c.data.num_workers = str(path), args.size, 0
    c.data.min_class_count = 0
    c.model.backbone, c.model.weights = BACKBONE, WEIGHTS
    c.train.epochs, c.train.batch_size = args.epochs, args.batch_size
    c.train.device, c.train.seed, c.train.out_dir = "cpu", args.seed, str(out)
    return c


class RunFailed(Exception):
    """A run ended with the engine's `Failed` event."""


def run_one(path: Path, changes: dict[str, dict], args: argparse.Namespace,
            out: Path) -> tuple[float, float, float]:
    """(final balanced accuracy, best, CPU seconds) of one engine run (CPU time, not wall:
    on a shared machine the wall clock measures the neighbours)."""
    from workbench.data.scan import open_dataset
    from workbench.train.engine import Trainer
    from workbench.train.events import EvalDone, Failed

    config = base_config(path, args, out)
    for section, values in changes.items():
        for key, value in values.items():
            setattr(getattr(config, section), key, value)
    index = open_dataset(str(path), min_class_count=0)
    started = time.process_time()
    scores = []
    for event in Trainer(config.validate(), index).run():
        if isinstance(event, EvalDone):
            scores.append(event.metrics.balanced_acc)
        elif isinstance(event, Failed):
            raise RunFailed(event.message)
    return scores[-1], max(scores), time.process_time() - started


def parse_args() -> argparse.Namespace:
    """Command-line options (the defaults: about 20 minutes on 2 shared CPU cores)."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=list(SETS))
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--per-class", type=int, default=6)
    p.add_argument("--val-per-class", type=int, default=6)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--options", nargs="+", default=None, help="a subset of the options")
    p.add_argument("--seed", type=int, default=0, help="train.seed of every run")
    p.add_argument("--from-logs", nargs="+", metavar="LOG", default=None,
                   help="print the summary of earlier runs' output (e.g. sets run in parallel "
                        "processes) instead of training")
    p.add_argument("--budget-s", type=float, default=1200.0,
                   help="total compute cap, in CPU seconds of this process")
    return p.parse_args()


def main() -> int:
    """Run every option on every set within the budget; print the table and RESULT lines."""
    args = parse_args()
    if args.from_logs:
        results = read_logs([Path(log) for log in args.from_logs])
        args.sets = sorted({name for per_set in results.values() for name in per_set})
        report(results, args)
        return 0
    chosen = options()
    if args.options:
        chosen = {k: v for k, v in chosen.items() if k in args.options or k == "default"}
    print(f"{len(args.sets)} sets x {len(chosen)} options, {args.size} px, {args.per_class} "
          f"train / {args.val_per_class} val images per class, {args.epochs} epochs, batch "
          f"{args.batch_size}, seed {args.seed}, budget {args.budget_s:.0f} CPU s", flush=True)
    results: dict[str, dict[str, tuple[float, float, float]]] = {k: {} for k in chosen}
    started = time.process_time()
    with tempfile.TemporaryDirectory(prefix="recipes-") as tmp:
        for name in args.sets:
            path = subset(build(name), Path(tmp) / name, args.per_class, args.val_per_class)
            for option, changes in chosen.items():
                if time.process_time() - started > args.budget_s:
                    print(f"{name:18s} {option:22s} skipped (budget spent)", flush=True)
                    continue
                try:
                    final, best, seconds = run_one(path, changes, args, Path(tmp) / "runs")
                except RunFailed as exc:  # said and skipped: one broken option ends nothing
                    print(f"{name:18s} {option:22s} failed: {exc}", flush=True)
                    continue
                results[option][name] = (final, best, seconds)
                print(f"{name:18s} {option:22s} bal_acc {final:.3f}  best {best:.3f}  "
                      f"{seconds:6.1f} CPU s", flush=True)
    report(results, args)
    return 0


RUN_LINE = re.compile(r"^(\S+)\s+(\S+)\s+bal_acc ([\d.]+)\s+best ([\d.]+)\s+([\d.]+) CPU s$")


def read_logs(logs: list[Path]) -> dict[str, dict[str, tuple[float, float, float]]]:
    """The per-run lines of earlier outputs: option -> set -> (final, best, CPU seconds); a
    log of another seed than 0 (its header says) names its sets "NAME/seedN"."""
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for log in logs:
        text = log.read_text(encoding="utf-8")
        seed = re.search(r", seed (\d+),", text.partition("\n")[0])
        suffix = f"/seed{seed.group(1)}" if seed and seed.group(1) != "0" else ""
        for line in text.splitlines():
            found = RUN_LINE.match(line)
            if found:
                name, option, *numbers = found.groups()
                final, best, seconds = (float(n) for n in numbers)
                results.setdefault(option, {})[name + suffix] = (final, best, seconds)
    if "default" not in results:
        raise SystemExit("no default runs in the logs")
    return results


def report(results: dict[str, dict[str, tuple[float, float, float]]],
           args: argparse.Namespace) -> None:
    """Means over the sets every option finished, and the RESULT lines."""
    base = results["default"]
    deltas = {}
    for option, per_set in results.items():
        shared = [s for s in per_set if s in base]
        if not shared:
            print(f"RESULT recipes option={option} skipped=1")
            continue
        mean = sum(per_set[s][0] for s in shared) / len(shared)
        delta = mean - sum(base[s][0] for s in shared) / len(shared)
        seconds = sum(per_set[s][2] for s in shared) / len(shared)
        deltas[option] = delta
        diffs = [per_set[s][0] - base[s][0] for s in shared]
        tally = (f"better={sum(d > 1e-9 for d in diffs)} worse={sum(d < -1e-9 for d in diffs)} "
                 f"same={sum(abs(d) <= 1e-9 for d in diffs)}")
        print(f"RESULT recipes option={option} mean_bal_acc={mean:.3f} delta={delta:+.3f} "
              f"{tally} cpu_seconds={seconds:.0f} runs={len(shared)}")
    best = max((o for o in deltas if o != "default"), key=deltas.get, default="default")
    print(f"RESULT recipes_summary runs={len(args.sets)} size={args.size} best_option={best} "
          f"best_delta={deltas.get(best, 0.0):+.3f}")


if __name__ == "__main__":
    sys.exit(main())
