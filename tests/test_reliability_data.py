"""Datasets that try to hang, exhaust or confuse the scanner: special files, links, junk, splits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import test_data_helpers as make
from workbench.cli import main
from workbench.data import checks, images
from workbench.data.checks import iter_checks, run_checks
from workbench.data.images import ImageError, read_bytes
from workbench.data.scan import index_dataset
from workbench.errors import UserError


def _classes(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    for c, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            make.noise_png(root / name / f"{i}.png", seed=seed + 100 * c + i)
    return root


def _kinds(index) -> dict[str, str]:
    return {Path(p.path).name: p.kind for p in index.problems}


# -- 2. special files ---------------------------------------------------------------------------

def test_a_fifo_named_like_an_image_neither_hangs_nor_counts(tmp_path):
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    os.mkfifo(root / "a" / "x.png")
    # a subprocess: before the fix `scan` blocked forever on the FIFO
    done = subprocess.run([sys.executable, "-m", "workbench", "scan", str(root), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["num_images"] == 6
    assert {"kind": "special_file", "path": str(root / "a" / "x.png")} in [
        {"kind": p["kind"], "path": p["path"]} for p in report["problems"]]


def test_a_fifo_named_in_a_csv_is_not_a_regular_file_not_missing(tmp_path):
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    os.mkfifo(root / "a" / "x.png")
    rows = ["path,label", "a/x.png,a"] + [f"{c}/{i}.png,{c}" for c in "ab" for i in range(3)]
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    index = index_dataset(root / "list.csv", val_fraction=0, min_class_count=1)
    assert len(index) == 6
    assert [(p.kind, p.path) for p in index.problems] == [("special_file", str(root / "a/x.png"))]
    (root / "only.csv").write_text("path,label\na/x.png,a\n")
    with pytest.raises(UserError, match="not regular files"):
        index_dataset(root / "only.csv")


def test_a_manifest_path_with_a_nul_character_is_a_bad_row_not_a_crash(tmp_path):
    # found by the manifest property test: os.scandir raised ValueError on it
    root = _classes(tmp_path / "data", {"a": 2, "b": 2})
    (root / "list.csv").write_text("path,label\na/0.png,a\nb/0.png,b\n\x00/0,b\n")
    index = index_dataset(root / "list.csv", val_fraction=0, min_class_count=1)
    assert [p.kind for p in index.problems] == ["bad_row"] and len(index.paths) == 2


def test_a_csv_of_missing_paths_is_missing_files_not_links_leaving(tmp_path, capsys):
    (tmp_path / "list.csv").write_text("path,label\n/gone/a/0.png,a\n/gone/b/1.png,b\n"
                                       "here/2.png,a\n")
    assert main(["scan", str(tmp_path / "list.csv"), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "none of the 3 file(s) it names exist" in err
    assert "link" not in err and "/gone/a/0.png" in err
    root = _classes(tmp_path / "data", {"a": 2, "b": 2})
    (root / "list.csv").write_text("path,label\na/0.png,a\nb/0.png,b\n/gone/c.png,b\n")
    index = index_dataset(root / "list.csv", val_fraction=0, min_class_count=1)
    assert [p.kind for p in index.problems] == ["missing_file"]  # not "outside_root" too


def test_a_link_to_dev_zero_is_never_read(tmp_path):
    root = _classes(tmp_path / "data", {"a": 2, "b": 2})
    (root / "a" / "zero.png").symlink_to("/dev/zero")
    index = index_dataset(root, val_fraction=0)
    assert _kinds(index)["zero.png"] == "outside_root"  # /dev is outside the dataset
    assert len(index) == 4
    index = index_dataset(root, val_fraction=0, follow_outside_links=True)
    assert _kinds(index)["zero.png"] == "special_file"
    assert len(index) == 4
    with pytest.raises(ImageError, match="not a regular file"):
        read_bytes(root / "a" / "zero.png")  # e.g. swapped in after listing


def test_files_over_the_size_cap_are_too_large_without_being_read(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1000)
    big = make.noise_png(tmp_path / "big.png", seed=1, size=64)
    with pytest.raises(ImageError) as caught:
        read_bytes(big)
    assert caught.value.kind == "too_large"


def test_ctrl_c_stops_the_checks_without_waiting_for_a_slow_file(tmp_path, monkeypatch):
    root = _classes(tmp_path / "data", {"a": 40, "b": 40})
    index = index_dataset(root, val_fraction=0)
    release = threading.Event()
    real = checks.verify_image

    def slow(data, name):
        if name == "5.png":
            release.wait(30)  # a read that would take half a minute
        return real(data, name)

    monkeypatch.setattr(checks, "verify_image", slow)
    # a shell without job control starts background jobs with SIGINT ignored (CI may): Ctrl-C
    # must mean KeyboardInterrupt here, as it does in a terminal
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    main_id = threading.main_thread().ident
    timer = threading.Timer(0.5, signal.pthread_kill, (main_id, signal.SIGINT))  # as Ctrl-C
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in iter_checks(index, workers=2):
                pass
        assert time.monotonic() - start < 5
    finally:
        release.set()
        timer.join()
        signal.signal(signal.SIGINT, previous)


# -- 3. symbolic links --------------------------------------------------------------------------

def test_a_symlink_loop_is_skipped_and_listed(tmp_path):
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "sub").mkdir()
    (root / "a" / "sub" / "loop").symlink_to(root / "a")
    (root / "b" / "self").symlink_to("self")  # a link to itself
    index = index_dataset(root, val_fraction=0)
    assert len(index) == 6
    assert _kinds(index)["loop"] == "symlink_loop"


def test_the_same_file_reached_twice_counts_once(tmp_path):
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    (root / "b" / "again.png").symlink_to(root / "a" / "0.png")
    (root / "a" / "b_too").symlink_to(root / "b")  # a folder listed as its own class
    index = index_dataset(root, val_fraction=0)
    assert len(index) == 6
    assert index.class_counts() == {"a": 3, "b": 3}
    kinds = _kinds(index)
    assert kinds["again.png"] == "duplicate_link" and kinds["b_too"] == "duplicate_link"


def test_links_leaving_the_root_are_listed_and_followed_only_when_allowed(tmp_path):
    elsewhere = _classes(tmp_path / "elsewhere", {"x": 1, "y": 1}, seed=900)
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "far.png").symlink_to(elsewhere / "y" / "0.png")
    (root / "c").symlink_to(elsewhere / "x", target_is_directory=True)
    index = index_dataset(root, val_fraction=0)
    assert len(index) == 6 and "c" not in index.class_names
    assert _kinds(index)["far.png"] == "outside_root"
    followed = index_dataset(root, val_fraction=0, follow_outside_links=True)
    assert len(followed) == 8 and "c" in followed.class_names


def test_csv_paths_outside_the_manifest_folder_are_listed(tmp_path):
    elsewhere = _classes(tmp_path / "elsewhere", {"x": 2}, seed=900)
    data = _classes(tmp_path / "data", {"a": 2, "b": 2})
    rows = ["path,label", "a/0.png,a", "a/1.png,a", "b/0.png,b", "b/1.png,b",
            f"{elsewhere / 'x' / '0.png'},b", "../elsewhere/x/1.png,a"]
    (data / "list.csv").write_text("\n".join(rows) + "\n")
    index = index_dataset(data / "list.csv", val_fraction=0)
    outside = sorted(p.path for p in index.problems if p.kind == "outside_root")
    assert outside == [str(elsewhere / "x" / "0.png"), str(elsewhere / "x" / "1.png")]


# -- 4. junk folders ----------------------------------------------------------------------------

@pytest.mark.parametrize("junk", ["__MACOSX", ".git", ".svn", ".hg", ".ipynb_checkpoints",
                                  "__pycache__", ".DS_Store", "$RECYCLE.BIN", "lost+found"])
def test_tool_and_os_folders_are_never_classes(tmp_path, junk):
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    make.noise_png(root / junk / "a" / "0.png", seed=7)  # e.g. __MACOSX/a/._0.png forks
    make.noise_png(root / "a" / junk / "9.png", seed=8)
    index = index_dataset(root, val_fraction=0)
    assert index.class_names == ["a", "b"] and len(index) == 6
    split = _classes(tmp_path / "split" / "train", {"a": 2, "b": 2})
    make.noise_png(split.parent / junk / "a" / "0.png", seed=9)
    make.noise_png(split / junk / "1.png", seed=10)
    index = index_dataset(split.parent, val_fraction=0)
    assert index.class_names == ["a", "b"]
    assert not [p for p in index.problems if junk in p.path]


# -- 5. splits that disagree --------------------------------------------------------------------

def test_classes_missing_from_a_split_are_named_with_real_folders(tmp_path):
    _classes(tmp_path / "train", {"a": 6, "b": 6, "c": 2})
    _classes(tmp_path / "val", {"a": 2, "b": 2, "d": 2}, seed=500)
    index = index_dataset(tmp_path)
    found = {(p.kind, p.path) for p in index.problems}
    assert ("split_mismatch", str(tmp_path / "val" / "d")) in found  # only in val
    assert ("split_mismatch", str(tmp_path / "train" / "c")) in found  # missing from val
    assert ("small_class", str(tmp_path / "train" / "c")) in found
    for problem in index.problems:
        assert Path(problem.path).exists(), problem


# -- 7. readable refusals -----------------------------------------------------------------------

def test_an_empty_path_is_refused_not_the_current_folder(capsys, tmp_path, monkeypatch):
    _classes(tmp_path, {"a": 3, "b": 3})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no dataset given"):
        index_dataset("")
    assert main(["scan", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err


def test_a_non_utf8_file_name_does_not_crash_the_text_report(tmp_path):
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    bad = os.fsencode(str(root / "a")) + b"/caf\xe9.txt"
    Path(os.fsdecode(bad)).write_text("not an image")
    done = subprocess.run([sys.executable, "-m", "workbench", "scan", str(root), "--no-checks"],
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr
    assert b"caf" in done.stdout


def test_run_checks_still_finds_everything_after_the_hardening(tmp_path):
    root = _classes(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "copy.png").write_bytes((root / "a" / "0.png").read_bytes())
    index = index_dataset(root, val_fraction=0)
    assert [p.kind for p in run_checks(index)] == ["duplicate"]


# -- 8. caches ----------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_a_corrupt_feature_cache_is_recomputed_not_fatal(tmp_path, caplog, damage):
    import torch

    from tests.test_train_engine import make_tiny_dataset, tiny_config
    from workbench import paths
    from workbench.models.transfer import build_model
    from workbench.train.engine import Trainer
    from workbench.train.events import FeaturesProgress, Finished

    config = tiny_config(make_tiny_dataset(tmp_path / "data", train=4, val=2), tmp_path / "runs")
    config.model.freeze_stages = build_model("mobilenet_v2", "random").num_stages
    cache = paths.cache_dir() / "features"
    before = set(cache.glob("*.pt")) if cache.is_dir() else set()
    assert isinstance(list(Trainer(config).run())[-1], Finished)
    files = sorted(set(cache.glob("*.pt")) - before)
    assert len(files) == 2  # train and val
    for file in files:
        if damage == "truncate":
            file.write_bytes(file.read_bytes()[:100])
        elif damage == "garbage":
            file.write_bytes(b"not a checkpoint at all")
        else:
            torch.save({"model": {}, "features": torch.zeros(1, 3), "labels": torch.zeros(1),
                        "skipped": 0}, file)
    with caplog.at_level("WARNING", logger="workbench.train.features"):
        events = list(Trainer(config).run())
    assert isinstance(events[-1], Finished), events[-1]
    assert not any(e.cached for e in events if isinstance(e, FeaturesProgress))
    assert sum("recomputing it" in r.getMessage() for r in caplog.records) == 2
    again = list(Trainer(config).run())  # rebuilt: the next run reads it
    assert [e.cached for e in again if isinstance(e, FeaturesProgress)] == [True, True]
