"""The demo run: digits-lt with the settings the advisor recommends (its measured pick, else the
textbook cell's), at the size the plan suggests for 28 px digits (`workbench train --demo`, the
README's headline command)."""

from __future__ import annotations

import sys

from workbench.config import LossWeighting, RunConfig
from workbench.data.index import DatasetIndex

DEMO_BACKBONE = "mobilenet_v2"
DEMO_WEIGHTS = "IMAGENET1K_V1"  # the one set of ImageNet weights available offline
DEMO_EPOCHS = 3


def demo_config(weights: str | None = None) -> tuple[RunConfig, DatasetIndex]:
    """The demo's run config and dataset: mobilenet_v2, the advisor's recommendation (quick
    budget: probes on held-out training images), the plan's suggested input size (64 px for
    the 28 px digits: a CPU epoch takes seconds).

    The strategy is chosen with the pretrained weights (what the advisor measures against)
    even when `weights` overrides them for the run itself, so a random-init run is comparable.
    """
    from workbench.advice.advisor import run_advice
    from workbench.advice.trials import apply_settings

    config, index = demo_setup()
    report = run_advice(index, config)
    config = apply_settings(report.recommended, config)
    print(f"advisor: {report.strategy.cell}: {report.recommended['name']} "
          f"({report.recommended['source']})", file=sys.stderr)
    if weights is not None:
        config.model.weights = weights
    return config.validate(), index


def demo_setup() -> tuple[RunConfig, DatasetIndex]:
    """The demo's config before the advice (what the advisor is asked with) and its dataset."""
    from workbench.data.demo import build_demo
    from workbench.data.scan import open_dataset
    from workbench.plan import plan_run

    config = RunConfig()
    config.data.path = str(build_demo())
    config.model.backbone, config.model.weights = DEMO_BACKBONE, DEMO_WEIGHTS
    config.train.epochs = DEMO_EPOCHS
    # digits-lt is long-tailed (ratio 50): class-balanced loss weights (Cui et al. 2019) lift the
    # few-shot digits (balanced accuracy 62% -> 82% for the pretrained linear head, 3 epochs)
    config.data.loss_weighting = LossWeighting.EFFECTIVE_NUMBER.value
    index = open_dataset(config.data.path, val_fraction=config.data.val_fraction,
                         split_seed=config.data.split_seed)
    # the trials run at the size the demo trains at: the one the plan suggests for 28 px digits
    config.data.input_size = plan_run(config, index).size_to_apply or 0
    return config, index
