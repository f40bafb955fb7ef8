"""Feature cache: linear-probe epochs on cached features vs recomputing the frozen backbone.

Both sides are the same engine on the digits-lt demo with every backbone stage frozen (a linear
probe on mobilenet_v2's pooled features); the baseline only has the fast path switched off, so it
pushes every image through the frozen backbone each epoch. Epoch time runs from EpochStarted to
CheckpointSaved (training, evaluation and checkpoint included). The speedup compares epochs 2
onwards, once the cache exists. Last line: `RESULT cached_epoch_s=... recompute_epoch_s=...
speedup=... extract_s=...` (goal: speedup >= 20).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.config import RunConfig  # noqa: E402
from workbench.data.demo import build_demo  # noqa: E402
from workbench.models.transfer import build_skeleton  # noqa: E402
from workbench.plan import plan_run  # noqa: E402
from workbench.train.engine import Trainer  # noqa: E402
from workbench.train.events import (  # noqa: E402
    CheckpointSaved,
    EpochStarted,
    Failed,
    FeaturesProgress,
    RunStarted,
)


def parse_args() -> argparse.Namespace:
    """Command-line options (defaults keep a 2-core CPU run to a few minutes)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    return p.parse_args()


def probe_config(args: argparse.Namespace, out: str) -> RunConfig:
    """A linear probe: mobilenet_v2 with ImageNet weights, every stage frozen, BN frozen."""
    c = RunConfig()
    c.data.path = str(build_demo())
    c.data.input_size = args.input_size
    c.model.weights = "IMAGENET1K_V1"
    c.model.freeze_stages = build_skeleton(c.model.backbone).num_stages  # all of them
    c.model.norm_policy = "frozen_bn"
    c.train.epochs = args.epochs
    c.train.batch_size = 64
    c.train.device = args.device
    c.train.out_dir = out
    return c.validate()


def epoch_times(config: RunConfig, cached: bool) -> tuple[list[float], float, bool]:
    """Seconds per epoch, seconds spent on features before epoch 1, whether the run was cached.

    `cached=False` runs the same plan with the fast path turned off: every epoch recomputes the
    frozen backbone, as a loop without the cache would."""
    times, extract, start, fast = [], 0.0, 0.0, False
    plan = dataclasses.replace(plan_run(config), fast_path=cached)
    t_run = time.perf_counter()
    for event in Trainer(config, plan=plan).run():
        if isinstance(event, RunStarted):
            fast, t_run = event.fast_path, time.perf_counter()
        elif isinstance(event, FeaturesProgress):
            extract = time.perf_counter() - t_run
        elif isinstance(event, EpochStarted):
            start = time.perf_counter()
        elif isinstance(event, CheckpointSaved):
            times.append(time.perf_counter() - start)
        elif isinstance(event, Failed):
            raise SystemExit(f"training failed: {event.message}")
    return times, extract, fast


def main() -> None:
    """Recompute first (its epochs are the slow ones), then the cached run."""
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = probe_config(args, tmp)
        recompute, _, fast = epoch_times(config, cached=False)
        assert not fast
        # a fresh cache folder, so the first cached run really extracts
        with mock.patch("workbench.paths.cache_dir", return_value=Path(tmp) / "cache"):
            cached, extract, fast = epoch_times(config, cached=True)
        assert fast
    slow = statistics.mean(recompute[1:] or recompute)
    quick = statistics.mean(cached[1:] or cached)
    print("recompute epochs (s): " + " ".join(f"{t:.2f}" for t in recompute))
    print("cached epochs (s):    " + " ".join(f"{t:.3f}" for t in cached)
          + f"  (features extracted once in {extract:.1f} s)")
    print(f"RESULT cached_epoch_s={quick:.3f} recompute_epoch_s={slow:.2f} "
          f"speedup={slow / quick:.1f} extract_s={extract:.1f}")


if __name__ == "__main__":
    main()
