"""Settings from the command line: `train PATH --backbone --lr ...` and `--set section.key=value`.

Like Lightning CLI's `--trainer.max_epochs=5` and timm's train.py flags, a run can be shaped on
the command line without writing TOML first. Every value is typed by the config's own dataclass
field and checked by its own validation, so the command line and a TOML file accept exactly the
same things; an unknown key is an error that names the closest real one.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any, get_type_hints

from workbench.config import AUGMENTS, LOSSES, SECTIONS, RunConfig
from workbench.errors import UserError

# flag -> "section.key": the common settings get a flag of their own (timm's train.py names)
FLAGS = {
    "backbone": "model.backbone",
    "weights": "model.weights",
    "input_size": "data.input_size",
    "augment": "data.augment",
    "lr": "train.lr",
    "batch_size": "train.batch_size",
    "epochs": "train.epochs",
    "loss": "train.loss",
    "loss_tau": "train.loss_tau",
    "crt_epochs": "train.crt_epochs",
    "gpus": "train.gpus",
}
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The setting flags of `workbench train`."""
    p.add_argument("--backbone", metavar="NAME", help="override model.backbone (a torchvision "
                   "model name: workbench backbones)")
    p.add_argument("--weights", default=None,
                   help='override model.weights (e.g. "random" to compare with no pretraining)')
    p.add_argument("--input-size", type=int, metavar="PX", help="override data.input_size")
    p.add_argument("--augment", choices=[str(a) for a in AUGMENTS],
                   help="override data.augment: the augmentation preset of the training images "
                        "(MixUp / CutMix: --set data.mixup=0.2, --set data.cutmix=1.0)")
    p.add_argument("--lr", type=float, metavar="X", help="override train.lr")
    p.add_argument("--batch-size", type=int, metavar="N", help="override train.batch_size")
    p.add_argument("--epochs", type=int, metavar="N", help="override train.epochs")
    p.add_argument("--loss", choices=LOSSES, help="override train.loss (long-tail losses)")
    p.add_argument("--loss-tau", type=float, metavar="TAU",
                   help="override train.loss_tau (the logit-adjusted loss's prior weight)")
    p.add_argument("--crt-epochs", type=int, metavar="N",
                   help="override train.crt_epochs: re-train the classifier class-balanced on "
                        "frozen features for N epochs after training (cRT)")
    p.add_argument("--gpus", type=int, metavar="N",
                   help="override train.gpus: train on N GPUs of this machine (started through "
                        "torchrun, one process each)")
    p.add_argument("--set", action="append", default=[], dest="settings",
                   metavar="SECTION.KEY=VALUE",
                   help="set any config value, e.g. --set data.augment=light --set "
                        "train.optimizer=adamw (repeatable; applied after the flags)")


def apply_overrides(config: RunConfig, args: argparse.Namespace) -> RunConfig:
    """Apply the flags, then each `--set`, to `config`; validate and return it."""
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            _assign(config, key, value)
    if getattr(args, "out", None) is not None:
        config.train.out_dir = str(Path(args.out).expanduser())
    for assignment in getattr(args, "settings", None) or []:
        apply_setting(config, assignment)
    return config.validate()


def apply_setting(config: RunConfig, assignment: str) -> None:
    """Apply one `section.key=value`, the value typed by the field (not yet validated)."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep:
        raise UserError(f"--set {assignment!r}: write it as section.key=value, e.g. "
                        "--set train.lr=0.003")
    expected = field_types().get(key)
    if expected is None:
        raise UserError(f"--set: unknown config key {key!r}{_did_you_mean(key)}")
    _assign(config, key, parse_value(key, expected, text.strip()))


def field_types() -> dict[str, type]:
    """"section.key" -> the field's type, for every setting of a run config."""
    sections = get_type_hints(RunConfig)
    return {f"{name}.{key}": kind for name in SECTIONS
            for key, kind in get_type_hints(sections[name]).items()}


def parse_value(key: str, expected: type, text: str) -> Any:
    """`text` as a value of the field's type; `UserError` naming the key when it is not one."""
    if expected is bool:
        if text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        raise UserError(f"{key} must be true or false, not {text!r}")
    try:
        return expected(text) if expected in (int, float) else text
    except ValueError:
        kind = "a whole number" if expected is int else "a number"
        raise UserError(f"{key} must be {kind}, not {text!r}") from None


def _assign(config: RunConfig, key: str, value: Any) -> None:
    section, name = key.split(".")
    setattr(getattr(config, section), name, value)


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, field_types(), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else " (workbench train --print-config " \
        "lists them all)"
