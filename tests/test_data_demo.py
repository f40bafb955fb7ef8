"""The digits-lt demo: real MNIST digits, long-tailed train, balanced val, built once."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from workbench.data.demo import build_demo, train_count
from workbench.errors import UserError

EXPECTED_TRAIN = [400, 259, 168, 109, 70, 46, 29, 19, 12, 8]


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_demo_structure_and_counts(demo_root: Path) -> None:
    assert [train_count(d) for d in range(10)] == EXPECTED_TRAIN
    assert names(demo_root / "train") == names(demo_root / "val") == {str(d) for d in range(10)}
    for digit in range(10):
        train = names(demo_root / "train" / str(digit))
        val = names(demo_root / "val" / str(digit))
        assert len(train) == EXPECTED_TRAIN[digit] and len(val) == 100
        assert not train & val  # no image in both splits
    img = Image.open(next((demo_root / "train" / "9").iterdir()))
    assert img.size == (28, 28) and img.mode == "L" and img.getextrema()[1] > 100
    assert "MNIST" in (demo_root / "README.txt").read_text(encoding="utf-8")


def test_demo_is_reused(demo_root: Path) -> None:
    stamp = (demo_root / "README.txt").stat().st_mtime_ns
    assert build_demo() == demo_root
    assert (demo_root / "README.txt").stat().st_mtime_ns == stamp


def test_leftover_partial_build_is_not_reused(tmp_path: Path) -> None:
    partial = tmp_path / ".digits.building-crashed"
    (partial / "train" / "0").mkdir(parents=True)
    root = build_demo(tmp_path / "digits")
    assert (root / "README.txt").is_file()
    assert len(list((root / "train" / "9").iterdir())) == 8
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits.building-")
                and p != partial]


def test_out_folder_holding_something_else_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(UserError, match="not a digits-lt demo"):
        build_demo(tmp_path / "mine")
