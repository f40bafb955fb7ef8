"""`workbench demo-data` and `workbench scan`, called in-process as a user would type them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import test_data_helpers as make
from workbench.cli import main

CONTRACT_KEYS = {"num_images", "num_classes", "class_counts", "imbalance_ratio", "splits",
                 "problems"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_data_prints_its_folder_last(capsys, demo_root: Path) -> None:
    code, out, _ = run(capsys, "demo-data")
    assert code == 0 and out.strip().splitlines()[-1] == str(demo_root)


def test_scan_demo_json_contract(capsys, demo_root: Path) -> None:
    code, out, err = run(capsys, "scan", "demo", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report.keys() >= CONTRACT_KEYS
    assert report["num_images"] == 2120 and report["num_classes"] == 10
    assert report["class_counts"]["0"] == 400 and report["class_counts"]["9"] == 8
    assert report["imbalance_ratio"] == 50.0
    assert report["splits"] == {"train": 1120, "val": 1000}
    assert isinstance(report["problems"], list)


def test_scan_bad_tree_lists_problems_and_exits_0(capsys, tmp_path: Path) -> None:
    for i in range(6):
        make.noise_png(tmp_path / "cat" / f"{i}.png", seed=i, size=8)
        make.noise_png(tmp_path / "dog" / f"{i}.png", seed=50 + i, size=8)
    make.truncated_jpeg(tmp_path / "cat" / "broken one.jpg")
    make.write_bytes(tmp_path / "dog" / "zero.png", b"")
    shutil.copy(tmp_path / "cat" / "0.png", tmp_path / "cat" / "again.png")
    (tmp_path / "empty").mkdir()
    code, out, _ = run(capsys, "scan", str(tmp_path), "--json")
    assert code == 0
    problems = {(p["kind"], Path(p["path"]).name) for p in json.loads(out)["problems"]}
    assert {("corrupt", "broken one.jpg"), ("corrupt", "zero.png"), ("duplicate", "again.png"),
            ("empty_class", "empty")} <= problems
    code, out, _ = run(capsys, "scan", str(tmp_path), "--json", "--no-checks")
    assert code == 0 and "corrupt" not in {p["kind"] for p in json.loads(out)["problems"]}


def test_scan_table_is_readable(capsys, demo_root: Path) -> None:
    code, out, _ = run(capsys, "scan", str(demo_root))
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("class"))
    assert header.split() == ["class", "train", "val", "band"]
    row = next(line for line in lines if line.startswith("9 "))
    assert row.split() == ["9", "8", "100", "few"]
    head_row = next(line for line in lines if line.startswith("0 "))
    assert row.rindex("100") == head_row.rindex("100")  # the val column is aligned
    assert any(line.startswith("imbalance ratio") and "50.0" in line for line in lines)
    assert any(line.startswith("total") and "1120" in line for line in lines)


@pytest.mark.parametrize("layout", ["missing", "no_images", "single_class", "all_corrupt"])
def test_unusable_datasets_exit_2_with_one_line(capsys, tmp_path: Path, layout: str) -> None:
    root = tmp_path / "data"
    if layout == "no_images":
        (root / "a").mkdir(parents=True)
        (root / "a" / "notes.txt").write_text("x")
    elif layout == "single_class":
        for i in range(3):
            make.noise_png(root / "only" / f"{i}.png", seed=i, size=8)
    elif layout == "all_corrupt":
        make.text_named_jpg(root / "a" / "x.jpg")
        make.write_bytes(root / "b" / "y.png", b"")
    code, _, err = run(capsys, "scan", str(root), "--json")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("workbench: ")
