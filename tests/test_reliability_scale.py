"""Big datasets: the checks' problems are capped per kind (the rest counted), memory per file
stays under a kilobyte."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from tests import test_data_helpers as make
from workbench.cli.data import scan_json
from workbench.data.checks import iter_checks, run_checks
from workbench.data.scan import MAX_LISTED_PROBLEMS, index_dataset
from workbench.data.stats import dataset_stats

COPIES = 1500  # per class: every file after the first is a duplicate


@pytest.fixture(scope="module")
def copies_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes of identical files (one PNG each), as a careless export produces."""
    root = tmp_path_factory.mktemp("copies")
    for name, seed in (("cat", 1), ("dog", 2)):
        data = make.noise_png(root / f"{name}.png", seed=seed, size=8).read_bytes()
        (root / name).mkdir()
        for i in range(COPIES):
            (root / name / f"img_{i:05d}.png").write_bytes(data)
        (root / f"{name}.png").unlink()
    return root


def test_duplicates_beyond_the_cap_are_counted_not_listed(copies_root):
    index = index_dataset(copies_root, val_fraction=0)
    found = run_checks(index)
    duplicates = [p for p in found if p.kind == "duplicate"]
    assert len(duplicates) == MAX_LISTED_PROBLEMS
    assert index.unlisted_problems["duplicate"] == 2 * (COPIES - 1) - MAX_LISTED_PROBLEMS
    assert index.problem_counts()["duplicate"] == 2 * (COPIES - 1)
    report = json.dumps(scan_json(index, dataset_stats(index)))
    assert len(report) < 50_000  # was about 40 bytes per file, without bound
    run_checks(index)  # run again: replaced, not added up
    assert index.unlisted_problems["duplicate"] == 2 * (COPIES - 1) - MAX_LISTED_PROBLEMS


def test_progress_events_carry_the_running_unlisted_counts(copies_root):
    index = index_dataset(copies_root, val_fraction=0)
    events = list(iter_checks(index))
    assert sum(len(e.problems) for e in events) == MAX_LISTED_PROBLEMS
    assert events[-1].unlisted == {"duplicate": 2 * (COPIES - 1) - MAX_LISTED_PROBLEMS}
    totals = [e.unlisted.get("duplicate", 0) for e in events]
    assert totals == sorted(totals)


def test_listing_and_checking_use_under_a_kilobyte_per_file(copies_root):
    tracemalloc.start()
    try:
        index = index_dataset(copies_root, val_fraction=0)
        run_checks(index)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / len(index) < 1024, f"{peak / len(index):.0f} bytes per file"


def test_the_problems_view_shows_the_unlisted_counts(qtbot):
    from workbench.data.index import Problem
    from workbench_ui.problems_view import ProblemsView

    view = ProblemsView()
    qtbot.addWidget(view)
    view.add_problems([Problem("duplicate", f"/d/{i}.png") for i in range(3)])
    view.set_unlisted({"duplicate": 997})
    assert view.counts() == {"duplicate": 1000}
    assert "997 not listed" in view.counts_label.text()


DEPTH = 2000


def _remove_chain(top: Path) -> None:
    """Delete a one-folder-per-level tree bottom up (shutil.rmtree, and so pytest's clean-up of
    old temporary folders, recurses once per level and fails past Python's limit)."""
    chain = [top]
    while (chain[-1] / "x").is_dir():
        chain.append(chain[-1] / "x")
    for folder in reversed(chain):
        for child in folder.iterdir():
            if not child.is_dir():
                child.unlink()
        folder.rmdir()


def test_a_2000_deep_tree_lists_with_a_few_system_calls_per_folder(tmp_path, monkeypatch):
    """Resolving every folder's real path cost one lstat per component: 2,000 folders deep,
    two million calls (minutes). The walk now resolves links only, so the calls grow with the
    number of folders, not with its square."""
    root = tmp_path / "d"
    make.noise_png(root / "a" / "0.png", seed=1, size=8)
    deep = root / "b"
    deep.mkdir()
    for _ in range(DEPTH):  # os.makedirs recurses once per level: past Python's limit
        deep = deep / "x"
        deep.mkdir()
    make.noise_png(deep / "0.png", seed=2, size=8)
    calls = {"lstat": 0, "stat": 0, "realpath": 0, "scandir": 0}

    def counting(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    for name in ("lstat", "stat", "scandir"):
        monkeypatch.setattr(os, name, counting(name, getattr(os, name)))
    monkeypatch.setattr(os.path, "realpath", counting("realpath", os.path.realpath))
    try:
        index = index_dataset(root, val_fraction=0, min_class_count=1)
    finally:
        monkeypatch.undo()
        _remove_chain(root / "b")
    assert index.class_counts() == {"a": 1, "b": 1} and not index.problems
    assert calls["scandir"] <= DEPTH + 10  # each folder read once
    assert calls["realpath"] <= 5 and calls["lstat"] + calls["stat"] <= 100, calls
