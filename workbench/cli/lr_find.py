"""`workbench lr-find`: the learning-rate range test (Smith 2017, fastai's `lr_find`) headless.

It runs on the plan `workbench train` would run (the same dataset, config, flags and `--set`),
prints the suggested learning rate (the minimum's LR / 10) with the minimum and the steepest
descent, optionally writes the curve as CSV, and leaves nothing behind: no run folder, the
weights untouched. The suggested LR alone is the LAST line of stdout; `--json` prints one object
(workbench.train.lr_find.LrFindResult.to_json).
"""

from __future__ import annotations

import argparse
import json

from workbench.cli import output, overrides
from workbench.config import RunConfig, load_config
from workbench.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `lr-find` to the CLI."""
    p = subparsers.add_parser(
        "lr-find", help="find a learning rate: a short range test on the planned run",
        description="Train the planned run for a few batches with the learning rate growing "
        "exponentially, and suggest one (the minimum's LR / 10). Name a dataset or a --config "
        "saved by the GUI; the flags and --set shape it as for `workbench train`. The "
        "suggested learning rate is the last line of stdout (--json: one object).")
    p.add_argument("path", nargs="?", metavar="PATH",
                   help='a dataset folder or CSV, or "demo" (overrides data.path of --config)')
    p.add_argument("--config", metavar="FILE", help="a run config (TOML) saved by the GUI")
    overrides.add_arguments(p)
    p.add_argument("--steps", type=int, default=100, metavar="N",
                   help="batches of the range test (default 100; it stops early when the loss "
                        "passes 4x its minimum)")
    p.add_argument("--start-lr", type=float, default=1e-7, metavar="X",
                   help="the first learning rate (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, metavar="X",
                   help="the last learning rate (default 10)")
    p.add_argument("--csv", metavar="FILE", help="write the curve (lr, loss, raw_loss) as CSV")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_lr_find, check=_check_sources)


def _check_sources(args: argparse.Namespace) -> str | None:
    if not (args.path or args.config):
        return "name a dataset (workbench lr-find PATH) or --config FILE"
    if args.steps < 2:
        return f"--steps must be at least 2, not {args.steps}"
    return None


def _config(args: argparse.Namespace) -> RunConfig:
    config = load_config(args.config) if args.config else RunConfig()
    if args.path:
        config.data.path = args.path
    return overrides.apply_overrides(config, args)


def _lr_find(args: argparse.Namespace) -> int:
    from workbench.plan import plan_run
    from workbench.train.lr_find import LrFindProgress, iter_lr_find
    from workbench.train.setup import load_index

    config = _config(args)
    index = load_index(config, None)
    plan = plan_run(config, index)
    for line in plan.summary():
        output.say(line)
    result = None
    with output.bar(total=args.steps, desc="LR range test", leave=False) as bar:
        for event in iter_lr_find(config, index, plan=plan, steps=args.steps,
                                  start_lr=args.start_lr, end_lr=args.end_lr):
            if isinstance(event, LrFindProgress):
                bar.update(event.step - bar.n)
                bar.set_postfix(lr=f"{event.lr:.1e}", loss=f"{event.loss:.3f}", refresh=False)
            else:
                result = event
    if result is None:  # the generator ends with a result unless stopped, and nothing stops it
        raise UserError("the LR range test ended without a result")
    if args.csv:
        output.say(f"curve written to {result.write_csv(args.csv)}")
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    _print_text(result)
    return 0


def _print_text(result) -> None:  # result: train.lr_find.LrFindResult
    ended = (f"stopped after {len(result.lrs)} steps: the loss passed 4x its minimum"
             if result.stopped_early else f"{len(result.lrs)} steps")
    steepest = f"{result.steepest:.3g}" if result.steepest is not None else "n/a"
    print(f"range test: {ended}")
    print(f"lowest loss at {result.minimum:.3g}; steepest descent at {steepest}")
    print(f"suggested learning rate ({result.rule}):")
    print(f"{result.suggested:.3g}")
