"""`workbench train`: headless training from a TOML config, the demo, or a run to resume.

A progress bar goes to stderr, one summary line per epoch to stdout, and the run directory's
path is the LAST line of stdout, so scripts can pick it up with `tail -n 1`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.config import LOSSES, RunConfig, load_config
from workbench.errors import UserError

if TYPE_CHECKING:  # the events import torch (through the metrics): `--help` must not wait for it
    from workbench.train.events import Failed, Finished, Stopped
    from workbench.train.metrics import EvalMetrics



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `train` to the CLI."""
    p = subparsers.add_parser("train", help="train headless from a config, the demo, or a run")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="a run config (TOML) saved by the GUI")
    source.add_argument("--demo", action="store_true",
                        help="train the digits-lt demo with the strategy the advisor recommends")
    source.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last epoch")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="parent folder of the run directory (default: the runs folder)")
    p.add_argument("--weights", default=None,
                   help='override model.weights (e.g. "random" to compare with no pretraining)')
    p.add_argument("--loss", choices=LOSSES,
                   default=None, help="override train.loss (long-tail losses)")
    p.add_argument("--loss-tau", type=float, default=None, metavar="TAU",
                   help="override train.loss_tau (the logit-adjusted loss's prior weight)")
    p.add_argument("--crt-epochs", type=int, default=None, metavar="N",
                   help="override train.crt_epochs: re-train the classifier class-balanced on "
                        "frozen features for N epochs after training (cRT)")
    p.add_argument("--gpus", type=int, default=None, metavar="N",
                   help="override train.gpus: train on N GPUs of this machine (started through "
                        "torchrun, one process each)")
    p.add_argument("--run-dir", metavar="DIR", default=None,
                   help="write the new run exactly in DIR (missing or empty) instead of a "
                        "timestamped folder under --out")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from workbench.devices import current_world

    if args.epochs is not None and args.epochs < 1:  # before the demo's advisor runs
        raise UserError(f"--epochs must be at least 1, not {args.epochs}")
    if args.resume and args.run_dir:
        raise UserError("--run-dir names a new run; --resume continues its own folder")
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
    """train.gpus of the config file or of the run to resume (the demo asks for none)."""
    if args.config:
        return load_config(args.config).train.gpus
    if args.resume:
        from workbench.train.rundir import CONFIG_NAME

        file = Path(args.resume).expanduser() / CONFIG_NAME
        # not a run folder: the resume itself says so, in its own words
        return load_config(file).train.gpus if file.is_file() else 0
    return 0


def _train_here(args: argparse.Namespace, world) -> int:  # world: devices.World
    from workbench.plan import plan_run
    from workbench.train.distributed import from_main
    from workbench.train.engine import Trainer
    from workbench.train.setup import load_index

    # rank 0 reads the config (or runs the demo's advisor) once; every process trains with it
    raw, epochs_done = from_main(lambda: _read_config(args), "reading the config")
    config = RunConfig.from_dict(raw)
    _apply_overrides(config, args)
    if args.resume and epochs_done >= config.train.epochs:
        # a resumed run that already reached its epochs would train nothing: say how to go on
        raise UserError(f"{args.resume} already trained its {epochs_done} epochs; to continue, "
                        f"ask for more in total, e.g. --epochs {epochs_done * 2}")
    index = load_index(config, None)
    plan = plan_run(config, index)  # refuses what cannot run, before any folder is made
    if world.active and plan.processes == 1 and not world.is_main:
        print(f"workbench: rank {world.rank}: {plan.warnings[-1]}; rank 0 trains alone",
              file=sys.stderr)
        return 0
    if world.is_main:
        for line in plan.summary():
            print(f"plan: {line}", file=sys.stderr)
    trainer = Trainer(config, index=index, run_dir=args.resume or args.run_dir,
                      resume=bool(args.resume), plan=plan)
    return _consume(trainer) if world.is_main else _consume_quietly(trainer, world.rank)


def _read_config(args: argparse.Namespace) -> tuple[dict, int]:
    """(the run's config as a dict, epochs already done)."""
    if args.resume:
        from workbench.train.rundir import inspect_run

        run = inspect_run(args.resume)
        return run.config.to_dict(), run.epochs_done
    if args.demo:
        from workbench.advice.demo import demo_config

        return demo_config(args.weights)[0].to_dict(), 0
    return load_config(args.config).to_dict(), 0


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


def _apply_overrides(config: RunConfig, args: argparse.Namespace) -> None:
    if args.epochs is not None:
        config.train.epochs = args.epochs
    if args.out is not None:
        config.train.out_dir = str(Path(args.out).expanduser())
    if args.weights is not None:
        config.model.weights = args.weights
    for key in ("loss", "loss_tau", "crt_epochs", "gpus"):
        if getattr(args, key, None) is not None:
            setattr(config.train, key, getattr(args, key))
    config.validate()


def _consume(trainer) -> int:  # trainer: engine.Trainer
    from workbench.train.control import follow_control

    following = follow_control(trainer)  # the GUI's pause / stop for a torchrun subprocess
    try:
        return _show(trainer)
    finally:
        following.set()


def _show(trainer) -> int:  # trainer: engine.Trainer
    from tqdm import tqdm

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

    bar = None
    epoch_start = time.perf_counter()
    last_loss = float("nan")
    skipped = 0
    run_dir = ""
    try:
        for event in trainer.run():
            if isinstance(event, RunStarted):
                run_dir = event.run_dir
                print(f"run: {event.run_dir} on {event.device}: {event.num_train} training, "
                      f"{event.num_val} validation images" + (
                          " (cached features of the frozen backbone)" if event.fast_path else ""),
                      file=sys.stderr)
            elif isinstance(event, FeaturesProgress):
                bar = _bar(bar, tqdm, event.total, f"features ({event.split})", event.done)
            elif isinstance(event, EpochStarted):
                epoch_start = time.perf_counter()
            elif isinstance(event, BatchDone):
                bar = _bar(bar, tqdm, event.total_steps, "train", event.step)
                bar.set_postfix(loss=f"{event.loss:.3f}", img_s=f"{event.images_per_s:.0f}",
                                refresh=False)
                last_loss, skipped = event.loss, event.skipped_images
            elif isinstance(event, EvalDone):
                line = epoch_line(event.epoch, trainer.config.train.epochs, last_loss,
                                  event.metrics, time.perf_counter() - epoch_start)
                if skipped:  # say it, or a corrupt file goes unnoticed in a headless run
                    line += f"  ({skipped} failed image load(s) skipped so far)"
                (bar.write(line, file=sys.stdout) if bar else print(line))
            elif isinstance(event, Finished | Stopped | Failed):
                return _finish(event, bar, run_dir)
    except KeyboardInterrupt:
        if bar:
            bar.close()
        from workbench.devices import current_world

        why = (" (Ctrl-C, or torchrun ended the job because another process ended)"
               if current_world().active else "")
        print(f"workbench: interrupted{why}; the last finished epoch's checkpoint is kept",
              file=sys.stderr)
        if run_dir:
            print(run_dir)
        return 130
    return 1


def _bar(bar, tqdm, total: int, desc: str, position: int):
    if bar is None or bar.desc != desc or bar.total != total:
        if bar is not None:
            bar.close()
        bar = tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)
    bar.update(position - bar.n)
    return bar


def _finish(event: Finished | Stopped | Failed, bar, run_dir: str) -> int:
    from workbench.train.events import Failed, Finished

    if bar is not None:
        bar.close()
    if isinstance(event, Failed):
        print(f"workbench: {event.message}", file=sys.stderr)
        if run_dir:
            print(run_dir)
        return 2 if event.user_error else 1
    if isinstance(event, Finished):
        print(f"best balanced accuracy {event.best_metric:.1%}", file=sys.stderr)
    print(event.run_dir)
    return 0


def epoch_line(epoch: int, epochs: int, train_loss: float, m: EvalMetrics, seconds: float) -> str:
    """One summary line per epoch, for the terminal."""
    shots = " ".join(f"{band} {acc:.0%}" for band, acc in m.shot_acc.items() if acc is not None)
    # an sklearn head is fitted in one go: it has no per-batch training loss to show
    train = "" if math.isnan(train_loss) else f"train loss {train_loss:.3f}  "
    return (f"epoch {epoch}/{epochs}  {train}val loss {m.loss:.3f}  "
            f"top-1 {m.top1:.1%}  balanced {m.balanced_acc:.1%}  [{shots}]  ({seconds:.1f} s)")
