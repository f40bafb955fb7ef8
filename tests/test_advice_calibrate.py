"""The calibration sets build offline from shipped images, and the table can be recomputed."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from workbench.advice.calibrate import SETS, calibrate


@pytest.mark.parametrize("name", sorted(SETS))
def test_each_set_builds_offline(name):
    side, build = SETS[name]
    images = build(np.random.default_rng(0), 3)
    assert side in ("similar", "dissimilar")
    assert len(images) == 3
    assert all(im.mode == "RGB" and min(im.size) >= 28 for im in images)


def test_calibration_table_ranks_noise_above_photos():
    # a one-BN "network" whose statistics are those of ImageNet-normalised inputs (0 mean, 1 var)
    model = nn.Sequential(nn.BatchNorm2d(3))
    transform = v2.Compose([v2.ToImage(), v2.Resize(32), v2.CenterCrop(32),
                            v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    rows = {r["set"]: r for r in calibrate(model, transform, n=8)}
    assert set(rows) == set(SETS)
    assert all(math.isfinite(r["mean"]) for r in rows.values())
    assert rows["noise"]["mean"] > rows["photos"]["mean"]
