"""Managing old runs: `list_runs` reads real run folders, `delete_run` deletes only those."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.builders import make_tiny_dataset, tiny_config
from workbench.errors import UserError
from workbench.train.engine import Trainer
from workbench.train.events import Finished
from workbench.train.rundir import RunDir
from workbench.train.runs import delete_run, is_run_dir, list_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Finished]:
    """A runs folder with one finished two-epoch run, a look-alike folder and a link."""
    base = tmp_path_factory.mktemp("runs")
    root = make_tiny_dataset(base / "data", train=4, val=2)
    config = tiny_config(root, base / "runs", epochs=2, limit_train_batches=1)
    last = list(Trainer(config).run())[-1]
    assert isinstance(last, Finished)
    (base / "runs" / "notes").mkdir()
    (base / "runs" / "notes" / "config.toml").write_text("# not a run: no metrics.jsonl\n")
    (base / "runs" / "link").symlink_to(last.run_dir)
    return base / "runs", last


def test_list_runs_shows_each_run_with_its_results(runs: tuple[Path, Finished]) -> None:
    parent, finished = runs
    listed = list_runs(parent)
    assert [run.path for run in listed] == [Path(finished.run_dir)]  # not "notes", not "link"
    run = listed[0]
    assert (run.backbone, run.epochs_done, run.epochs, run.outcome) == (
        "mobilenet_v2", 2, 2, "Finished")
    assert run.best_balanced_acc == pytest.approx(finished.best_metric)
    checkpoints = sum(f.stat().st_size for f in (run.path / "checkpoints").iterdir())
    assert run.size_bytes > checkpoints > 0
    assert run.started > 0


def test_list_runs_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "nowhere") == []


def test_delete_run_refuses_what_is_not_a_run(runs: tuple[Path, Finished]) -> None:
    parent, finished = runs
    for folder in (parent / "notes", parent / "link", parent):
        with pytest.raises(UserError, match="not a run folder"):
            delete_run(folder)
        assert folder.exists()
    assert is_run_dir(finished.run_dir)


def test_delete_run_removes_the_folder(runs: tuple[Path, Finished], tmp_path: Path) -> None:
    parent, finished = runs
    copy = tmp_path / "copy"
    shutil.copytree(finished.run_dir, copy)
    delete_run(copy)
    assert not copy.exists()
    assert list_runs(parent)  # the original is untouched


def test_a_run_being_written_is_not_deleted(runs: tuple[Path, Finished]) -> None:
    """The run training now (here or in another process) holds its folder's lock."""
    _, finished = runs
    held = RunDir(Path(finished.run_dir))
    try:
        with pytest.raises(UserError, match="being written"):
            delete_run(finished.run_dir)
    finally:
        held.close()
    assert is_run_dir(finished.run_dir)
