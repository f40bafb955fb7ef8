"""`workbench train`: headless training on a dataset, from a TOML config, the demo, or a run.

The flags and `--set section.key=value` shape the config (cli/overrides.py); `--print-config`
shows the result as TOML. A progress bar goes to stderr on a terminal only, one summary line per
epoch to stdout, and the run directory's path is the LAST line of stdout, so scripts can pick it
up with `tail -n 1`; `--json` prints one summary object instead (docs/cli.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from workbench.cli import output, overrides
from workbench.config import RunConfig, load_config
from workbench.errors import UserError

if TYPE_CHECKING:  # the events import torch (through the metrics): `--help` must not wait for it
    from workbench.train.events import Failed, Finished, Stopped
    from workbench.train.metrics import EvalMetrics



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `train` to the CLI."""
    p = subparsers.add_parser(
        "train", help="train headless on a dataset, from a config, the demo, or a run",
        description="Train headless. Name a dataset (the default config, shaped by the flags "
        "and --set), a --config saved by the GUI (the flags override it), the --demo, or a run "
        "to --resume. The run folder's path is the last line of stdout (--json: one object).")
    p.add_argument("path", nargs="?", metavar="PATH",
                   help='a dataset folder or CSV, or "demo" (overrides data.path of --config)')
    p.add_argument("--config", metavar="FILE", help="a run config (TOML) saved by the GUI")
    p.add_argument("--demo", action="store_true",
                   help="train the digits-lt demo with the strategy the advisor recommends")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last epoch")
    overrides.add_arguments(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="parent folder of the run directory (default: the runs folder)")
    p.add_argument("--run-dir", metavar="DIR", default=None,
                   help="write the new run exactly in DIR (missing or empty) instead of a "
                        "timestamped folder under --out")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as TOML and exit (nothing is trained)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object at the end: run_dir, status, best_metric, "
                        "epochs (epoch lines go to stderr)")
    p.set_defaults(func=_train, check=_check_sources)


def _check_sources(args: argparse.Namespace) -> str | None:
    """What to train from: exactly one source (PATH may rename --config's dataset)."""
    named = [flag for flag, value in (("PATH", args.path), ("--config", args.config),
                                      ("--demo", args.demo), ("--resume", args.resume)) if value]
    if not named:
        return "name a dataset (workbench train PATH), --config FILE, --demo or --resume RUN_DIR"
    if len(named) > 1 and named != ["PATH", "--config"]:
        return f"{' and '.join(named)} cannot be combined: name one"
    if args.resume and args.run_dir:
        return "--run-dir names a new run; --resume continues its own folder"
    return None


def _train(args: argparse.Namespace) -> int:
    from workbench.devices import current_world

    if args.epochs is not None and args.epochs < 1:  # before the demo's advisor runs
        raise UserError(f"--epochs must be at least 1, not {args.epochs}")
    if args.print_config:
        print(tomli_w.dumps(_resolved(args)[0].to_dict()), end="")
        return 0
    world = current_world()
    if not world.active:
        gpus = args.gpus if args.gpus is not None else _configured_gpus(args)
        if gpus > 1:  # torchrun starts this command again, once per GPU
            from workbench.train.launch import run_torchrun

            return run_torchrun(sys.argv[1:] if args.gpus is None else
                                [*sys.argv[1:], "--gpus", str(gpus)], gpus)
        return _train_here(args, world)
    from workbench.train import distributed

    distributed.init_process_group(world)
    try:
        return _train_here(args, world)
    finally:
        distributed.close_process_group()


def _configured_gpus(args: argparse.Namespace) -> int:
    """train.gpus as configured (the demo asks for none; its advisor runs once, later)."""
    if args.demo:
        return 0
    if args.resume:
        from workbench.train.rundir import CONFIG_NAME

        if not (Path(args.resume).expanduser() / CONFIG_NAME).is_file():
            return 0  # not a run folder: the resume itself says so, in its own words
    return _resolved(args)[0].train.gpus


def _resolved(args: argparse.Namespace) -> tuple[RunConfig, int]:
    """(the config to train, epochs already done)."""
    raw, epochs_done = _read_config(args)
    return _shaped(raw, args), epochs_done


def _shaped(raw: dict, args: argparse.Namespace) -> RunConfig:
    """The source's config with PATH, the flags and each --set applied, validated."""
    config = RunConfig.from_dict(raw)
    if args.path and not args.resume:
        config.data.path = args.path
    return overrides.apply_overrides(config, args)


def _train_here(args: argparse.Namespace, world) -> int:  # world: devices.World
    from workbench.plan import plan_run
    from workbench.train.distributed import from_main
    from workbench.train.engine import Trainer
    from workbench.train.setup import load_index

    # rank 0 reads the config (or runs the demo's advisor) once; every process trains with it
    raw, epochs_done = from_main(lambda: _read_config(args), "reading the config")
    config = _shaped(raw, args)
    if args.resume and epochs_done >= config.train.epochs:
        # a resumed run that already reached its epochs would train nothing: say how to go on
        raise UserError(f"{args.resume} already trained its {epochs_done} epochs; to continue, "
                        f"ask for more in total, e.g. --epochs {epochs_done * 2}")
    _check_folder("--run-dir", args.run_dir)
    _check_folder("train.out_dir" if args.out is None else "--out", config.train.out_dir)
    index = load_index(config, None)
    plan = plan_run(config, index)  # refuses what cannot run, before any folder is made
    if world.active and plan.processes == 1 and not world.is_main:
        print(f"workbench: rank {world.rank}: {plan.warnings[-1]}; rank 0 trains alone",
              file=sys.stderr)
        return 0
    if world.is_main:
        for line in plan.summary():
            output.say(f"plan: {line}")
    trainer = Trainer(config, index=index, run_dir=args.resume or args.run_dir,
                      resume=bool(args.resume), plan=plan)
    if not world.is_main:
        return _consume_quietly(trainer, world.rank)
    return _consume(trainer, as_json=args.json)


def _check_folder(what: str, folder: str | None) -> None:
    """A folder to write the run in must be one, or be creatable: not a file, nor below one."""
    if not folder:
        return
    path = Path(folder).expanduser()
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is" if part == path else f"is below {part}, which is"
                raise UserError(f"{what} {folder} {where} a file, not a folder")
            return


def _read_config(args: argparse.Namespace) -> tuple[dict, int]:
    """(the run's config as a dict, epochs already done)."""
    if args.resume:
        from workbench.train.rundir import inspect_run

        run = inspect_run(args.resume)
        return run.config.to_dict(), run.epochs_done
    if args.demo:
        from workbench.advice.demo import demo_config

        return demo_config(args.weights)[0].to_dict(), 0
    if args.config:
        return load_config(args.config).to_dict(), 0
    return RunConfig().to_dict(), 0


def _consume_quietly(trainer, rank: int) -> int:  # trainer: engine.Trainer
    """A process other than rank 0 trains its share and says only how it failed."""
    from workbench.train.events import Failed, Finished, Stopped

    for event in trainer.run():
        if isinstance(event, Failed):
            print(f"workbench: rank {rank}: {event.message}", file=sys.stderr)
            return 2 if event.user_error else 1
        if isinstance(event, Finished | Stopped):
            return 0
    return 1


def _consume(trainer, as_json: bool = False) -> int:  # trainer: engine.Trainer
    from workbench.train.control import follow_control

    following = follow_control(trainer)  # the GUI's pause / stop for a torchrun subprocess
    summary = RunSummary(epochs_planned=trainer.config.train.epochs)
    try:
        return _show(trainer, summary, as_json)
    finally:
        following.set()
        if as_json:
            print(json.dumps(summary.to_json(), indent=2))


@dataclass
class RunSummary:
    """What `train --json` prints at the end (keys listed in docs/cli.md)."""

    epochs_planned: int
    run_dir: str = ""
    status: str = "failed"  # "finished", "stopped", "interrupted" or "failed"
    epochs: int = 0  # epochs completed, counting those before a resume
    best_metric: float | None = None  # the best validation balanced accuracy
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {"run_dir": self.run_dir, "status": self.status,
                "metric": "balanced_accuracy", "best_metric": self.best_metric,
                "epochs": self.epochs, "epochs_planned": self.epochs_planned,
                "message": self.message}


def _show(trainer, summary: RunSummary, as_json: bool) -> int:  # trainer: engine.Trainer
    from workbench.train.events import (
        BatchDone,
        EpochStarted,
        EvalDone,
        Failed,
        FeaturesProgress,
        Finished,
        RunStarted,
        Stopped,
    )

    progress = output.Progress()
    epoch_start, last_loss, skipped = time.perf_counter(), float("nan"), 0
    try:
        for event in trainer.run():
            if isinstance(event, RunStarted):
                summary.run_dir, summary.epochs = event.run_dir, event.start_epoch
                output.say(f"run: {event.run_dir} on {event.device}: {event.num_train} training, "
                           f"{event.num_val} validation images" + (
                               " (cached features of the frozen backbone)"
                               if event.fast_path else ""))
            elif isinstance(event, FeaturesProgress):
                progress.show(f"features ({event.split})", event.total, event.done)
            elif isinstance(event, EpochStarted):
                epoch_start = time.perf_counter()
            elif isinstance(event, BatchDone):
                progress.show("train", event.total_steps, event.step,
                              loss=f"{event.loss:.3f}", img_s=f"{event.images_per_s:.0f}")
                last_loss, skipped = event.loss, event.skipped_images
            elif isinstance(event, EvalDone):
                summary.epochs = event.epoch
                summary.best_metric = max(summary.best_metric or 0.0, event.metrics.balanced_acc)
                line = epoch_line(event.epoch, trainer.config.train.epochs, last_loss,
                                  event.metrics, time.perf_counter() - epoch_start)
                if skipped:  # say it, or a corrupt file goes unnoticed in a headless run
                    line += f"  ({skipped} failed image load(s) skipped so far)"
                progress.write(line, stderr=as_json)
            elif isinstance(event, Finished | Stopped | Failed):
                progress.close()
                return _finish(event, summary, as_json)
    except KeyboardInterrupt:
        progress.close()
        return _interrupted(summary, as_json)
    return 1


def _interrupted(summary: RunSummary, as_json: bool) -> int:
    from workbench.devices import current_world

    why = (" (Ctrl-C, or torchrun ended the job because another process ended)"
           if current_world().active else "")
    print(f"workbench: interrupted{why}; the last finished epoch's checkpoint is kept",
          file=sys.stderr)
    summary.status = "interrupted"
    if summary.run_dir and not as_json:
        print(summary.run_dir)
    return 130


def _finish(event: Finished | Stopped | Failed, summary: RunSummary, as_json: bool) -> int:
    from workbench.train.events import Failed, Finished

    if isinstance(event, Failed):
        print(f"workbench: {event.message}", file=sys.stderr)
        summary.message = event.message
        if summary.run_dir and not as_json:
            print(summary.run_dir)
        return 2 if event.user_error else 1
    summary.run_dir = event.run_dir
    if isinstance(event, Finished):
        summary.status, summary.message = "finished", event.note  # note: early stopping's why
        if event.note:
            output.say(event.note)
        if 0.0 <= event.best_metric <= 1.0:  # not measured (no validation images): no number
            summary.best_metric = event.best_metric
            output.say(f"best balanced accuracy {event.best_metric:.1%}")
    else:
        summary.status = "stopped"
    if not as_json:
        print(event.run_dir)
    return 0


def epoch_line(epoch: int, epochs: int, train_loss: float, m: EvalMetrics, seconds: float) -> str:
    """One summary line per epoch, for the terminal."""
    shots = " ".join(f"{band} {acc:.0%}" for band, acc in m.shot_acc.items() if acc is not None)
    # an sklearn head is fitted in one go: it has no per-batch training loss to show
    train = "" if math.isnan(train_loss) else f"train loss {train_loss:.3f}  "
    return (f"epoch {epoch}/{epochs}  {train}val loss {m.loss:.3f}  "
            f"top-1 {m.top1:.1%}  balanced {m.balanced_acc:.1%}  [{shots}]  ({seconds:.1f} s)")
