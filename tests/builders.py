"""One place to build what tests train on: tiny image folders and small run configs.

`make_config(data, out, settings)` is the one config builder: `settings` maps "section.key" to a
value, applied over the defaults, so every test says exactly what it changes. `tiny_config` is
the engine tests' config (random-init mobilenet_v2 at 32 px, batch 8: a second per epoch);
`pretrained_config` the one that must learn in two steps (ImageNet weights, on disk offline).
The `tiny_root` fixture (tests/conftest.py) is a `make_tiny_dataset` folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.config import RunConfig

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 40, 220)]


def make_tiny_dataset(root: Path, train: int = 12, val: int = 4, corrupt: bool = False) -> Path:
    """Three classes of noisy colour patches in train/ and val/ (learnable, 24x24 PNGs)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for c, colour in enumerate(COLOURS):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                noise = rng.integers(-40, 40, (24, 24, 3))
                pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    if corrupt:
        (root / "train" / "class_0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def make_config(data: Path | str | None = None, out: Path | str | None = None,
                settings: Mapping[str, object] | None = None, validate: bool = True
                ) -> RunConfig:
    """A default `RunConfig` on dataset `data`, writing runs under `out`, with `settings`
    ("section.key" -> value) applied; validated unless `validate=False` (a test of validation)."""
    config = RunConfig()
    if data is not None:
        config.data.path = str(data)
    if out is not None:
        config.train.out_dir = str(out)
    for key, value in (settings or {}).items():
        section, name = key.split(".")
        if not hasattr(getattr(config, section), name):
            raise AttributeError(f"no config key {key}")  # a typo must not pass silently
        setattr(getattr(config, section), name, value)
    return config.validate() if validate else config


TINY = {"data.input_size": 32, "data.num_workers": 0, "model.weights": "random",
        "train.epochs": 1, "train.batch_size": 8, "train.lr": 0.05}


def tiny_config(root: Path, out: Path, **train: object) -> RunConfig:
    """A config that trains in about a second: 32 px, random init, batch 8; `train` overrides
    `[train]` keys."""
    return make_config(root, out, {**TINY, **{f"train.{k}": v for k, v in train.items()}})


PRETRAINED = {"data.input_size": 32, "data.num_workers": 0, "model.weights": "IMAGENET1K_V1",
              "train.epochs": 1, "train.batch_size": 16, "train.limit_train_batches": 2}


def pretrained_config(root: Path, out: Path | None, **settings: object) -> RunConfig:
    """mobilenet_v2 from its ImageNet weights (in the offline hub cache), 2 batches of 16 at
    32 px; `settings` use `section__key` names (`train__epochs=2`)."""
    extra = {key.replace("__", "."): value for key, value in settings.items()}
    return make_config(root, out, {**PRETRAINED, **extra})


def plan_config(device: str = "auto", **model: object) -> RunConfig:
    """No dataset, random init: a config for planning tests; `model` overrides `[model]` keys.
    Not validated (plan_run validates)."""
    return make_config(settings={"model.weights": "random", "train.device": device,
                                 **{f"model.{k}": v for k, v in model.items()}}, validate=False)
