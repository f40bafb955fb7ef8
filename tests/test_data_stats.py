"""Statistics from the listing: shot bands, imbalance ratio, effective number, per-split counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.data.index import DatasetIndex, Problem
from workbench.data.scan import index_dataset
from workbench.data.stats import (
    dataset_stats,
    effective_number,
    imbalance_ratio,
    shot_band,
    unusable_reason,
)


@pytest.mark.parametrize(
    ("count", "band"),
    [(0, "few"), (19, "few"), (20, "medium"), (100, "medium"), (101, "many"), (5000, "many")],
)
def test_shot_band_boundaries(count: int, band: str) -> None:
    assert shot_band(count) == band


def test_effective_number_follows_cui_et_al() -> None:
    beta = 0.99
    got = effective_number([1, 10, 1000], beta)
    expected = [(1 - beta**n) / (1 - beta) for n in (1, 10, 1000)]
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(effective_number([0, 3], 0.0), [0.0, 1.0])
    np.testing.assert_allclose(effective_number([7], 1.0), [7.0])
    assert effective_number([10**6], 0.999)[0] < 1000.0001  # saturates at 1 / (1 - beta)


def test_imbalance_ratio_ignores_empty_classes() -> None:
    assert imbalance_ratio([400, 8, 0]) == 50.0
    assert imbalance_ratio([5]) == 1.0
    assert imbalance_ratio([0, 0]) == 0.0


def test_demo_stats(demo_root: Path) -> None:
    stats = dataset_stats(index_dataset(demo_root))
    assert stats.imbalance_ratio == 50.0
    assert stats.bands == {"many": ["0", "1", "2", "3"], "medium": ["4", "5", "6"],
                           "few": ["7", "8", "9"]}
    assert stats.images_per_class == {"min": 8.0, "median": 58.0, "max": 400.0}
    assert set(stats.class_counts["val"].values()) == {100}
    assert stats.split_counts == {"train": 1120, "val": 1000}


def test_unusable_reasons() -> None:
    index = DatasetIndex(root=Path("/d"), source="folder", class_names=["a", "b"],
                         paths=["/d/a/1.png", "/d/b/1.png"], labels=[0, 1],
                         splits=["train", "train"])
    assert unusable_reason(index) is None
    index.problems.append(Problem("corrupt", "/d/b/1.png"))
    assert "only one class" in unusable_reason(index)
    index.problems.append(Problem("unreadable", "/d/a/1.png"))
    assert "no usable training images" in unusable_reason(index)
