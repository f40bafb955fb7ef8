"""Two tiny real runs for the deploy tests, trained once per test session.

A slice of the real demo dataset (a few digits per class, 32 px) trains mobilenet_v2 from its
ImageNet weights in seconds: one fine-tuned run with a linear head (the `TransferModel` itself)
and one logistic-regression run on an inner stage's pooled features (a scikit-learn head).
Test modules share them through `trained_runs`, which trains only on its first call.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from workbench.config import RunConfig

TRAIN_PER_CLASS = 10
VAL_PER_CLASS = 5
_CACHE: dict[str, DeployRuns] = {}


@dataclass(frozen=True)
class DeployRuns:
    """The demo slice and the two finished run folders."""

    data: Path
    linear: Path
    logreg: Path

    @property
    def val_images(self) -> list[Path]:
        """The validation images of the slice, sorted."""
        return sorted((self.data / "val").glob("*/*.png"))


def demo_slice(demo_root: Path, out: Path) -> Path:
    """Copy the first few images of each class of the demo's train and val splits."""
    for split, count in (("train", TRAIN_PER_CLASS), ("val", VAL_PER_CLASS)):
        for folder in sorted((demo_root / split).iterdir()):
            if folder.is_dir():
                (out / split / folder.name).mkdir(parents=True, exist_ok=True)
                for image in sorted(folder.glob("*.png"))[:count]:
                    shutil.copy2(image, out / split / folder.name / image.name)
    return out


def _config(root: Path, runs: Path, head: str) -> RunConfig:
    config = RunConfig()
    config.data.path = str(root)
    config.data.input_size = 32
    config.data.num_workers = 0
    config.model.backbone = "mobilenet_v2"
    config.model.weights = "IMAGENET1K_V1"
    config.model.head = head
    if head == "linear":
        config.model.freeze_stages = 3  # fine-tunes the last two stages and the head
    else:
        config.model.freeze_stages = 5
        config.model.feature_stage = 3  # an inner stage: no torchvision equivalent
    config.train.epochs = 1
    config.train.batch_size = 16
    config.train.limit_train_batches = 2
    config.train.out_dir = str(runs)
    return config.validate()


def _train(config: RunConfig) -> Path:
    from workbench.train.engine import Trainer
    from workbench.train.events import Finished

    last = list(Trainer(config).run())[-1]
    assert isinstance(last, Finished), last
    return Path(last.run_dir)


def trained_runs(demo_root: Path, base: Path) -> DeployRuns:
    """The two runs (trained under `base` on the first call of the session)."""
    if "runs" not in _CACHE:
        data = demo_slice(demo_root, base / "digits-slice")
        _CACHE["runs"] = DeployRuns(data, _train(_config(data, base / "runs", "linear")),
                                    _train(_config(data, base / "runs", "logreg")))
    return _CACHE["runs"]
