"""The decoding checks: every bad file is a listed problem with a kind, and stop is honoured."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests import test_data_helpers as make
from workbench.data import images
from workbench.data.checks import CHUNK, iter_checks, run_checks
from workbench.data.scan import index_dataset


@pytest.fixture
def bad_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """train/, val/ and test/ with one file of every bad kind among good ones."""
    for split, offset in (("train", 0), ("val", 100)):
        for k, name in enumerate(("cat", "dog")):
            for i in range(3):
                make.noise_png(tmp_path / split / name / f"{i}.png", seed=offset + 10 * k + i)
    train_cat = tmp_path / "train" / "cat"
    make.truncated_jpeg(train_cat / "truncated.jpg")
    make.write_bytes(train_cat / "zero.jpg", b"")
    make.text_named_jpg(train_cat / "text.jpg")
    make.huge_png(train_cat / "bomb.png")
    shutil.copy(train_cat / "0.png", train_cat / "copy of 0.png")
    shutil.copy(train_cat / "1.png", tmp_path / "val" / "cat" / "leaked.png")
    (tmp_path / "test" / "cat").mkdir(parents=True)
    make.noise_png(tmp_path / "test" / "cat" / "t.png", seed=500)
    shutil.copy(tmp_path / "val" / "cat" / "0.png", tmp_path / "test" / "cat" / "twin.png")
    make.make_unreadable(make.noise_png(train_cat / "locked.png", seed=999), images, monkeypatch)
    return tmp_path


def test_every_bad_file_is_a_problem_of_its_kind(bad_tree: Path) -> None:
    index = index_dataset(bad_tree)
    found = {Path(p.path).name: p.kind for p in run_checks(index)}
    assert found == {
        "truncated.jpg": "corrupt", "zero.jpg": "corrupt", "text.jpg": "corrupt",
        "bomb.png": "too_large", "locked.png": "unreadable",
        "copy of 0.png": "duplicate", "leaked.png": "train_val_overlap",
        "0.png": "split_overlap",  # val/cat/0.png, copied into test/ as twin.png
    }
    assert all(p.detail for p in index.problems)
    assert len([p for p in index.problems if p.kind == "corrupt"]) == 3
    run_checks(index)  # running again replaces, never repeats
    assert len([p for p in index.problems if p.kind == "corrupt"]) == 3


def test_progress_counts_up_to_total(bad_tree: Path) -> None:
    index = index_dataset(bad_tree)
    events = list(iter_checks(index))
    assert events[0].done == 0 and events[-1].done == events[-1].total == len(index)
    assert [e.done for e in events] == sorted(e.done for e in events)


def test_stop_flag_ends_checks_between_files(tmp_path: Path) -> None:
    for i in range(3 * CHUNK):
        make.noise_png(tmp_path / ("a" if i % 2 else "b") / f"{i}.png", seed=i, size=8)
    index = index_dataset(tmp_path)
    stop = threading.Event()
    events = []
    for event in iter_checks(index, stop=stop):
        events.append(event)
        if event.done > 0:
            stop.set()
    assert events[-1].done < len(index)
    stop = threading.Event()
    stop.set()
    assert [e.done for e in iter_checks(index, stop=stop)] == [0]


def test_closing_the_generator_stops_cleanly(tmp_path: Path) -> None:
    for i in range(2 * CHUNK):
        make.noise_png(tmp_path / ("a" if i % 2 else "b") / f"{i}.png", seed=i, size=8)
    checks = iter_checks(index_dataset(tmp_path))
    next(checks)
    next(checks)
    checks.close()  # the thread pool is shut down; the no-leaked-threads fixture checks it
