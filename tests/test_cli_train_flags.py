"""`workbench train PATH --flags --set ...`, `--print-config`, `--json`, `--version`, `-q` and the
one-line argument errors, run as a user runs them: in a fresh process, reading exit codes and
streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.test_train_engine import make_tiny_dataset
from workbench.cli import main, output

TINY = ["--weights", "random", "--input-size", "32", "--batch-size", "8", "--lr", "0.05",
        "--set", "data.num_workers=0"]


def _workbench(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "workbench", *argv], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: "), done.stderr
    return lines[0]


def test_print_config_shows_the_flags_and_sets_without_importing_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from workbench.cli import main\n"
        "code = main(['train', 'data', '--backbone', 'resnet18', '--input-size', '160',\n"
        "             '--lr', '0.003', '--batch-size', '16', '--epochs', '4',\n"
        "             '--set', 'train.optimizer=adamw', '--set', 'data.augment=light',\n"
        "             '--set', 'train.amp=false', '--set', 'model.freeze_stages=2',\n"
        "             '--print-config'])\n"
        "print('torch' in sys.modules, code, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.stderr.split() == ["False", "0"], done.stderr
    config = tomllib.loads(done.stdout)
    assert config["data"]["path"] == "data" and config["data"]["input_size"] == 160
    assert config["model"]["backbone"] == "resnet18" and config["model"]["freeze_stages"] == 2
    assert config["train"]["lr"] == 0.003 and config["train"]["batch_size"] == 16
    assert config["train"]["epochs"] == 4 and config["train"]["optimizer"] == "adamw"
    assert config["train"]["amp"] is False and config["data"]["augment"] == "light"


def test_path_renames_the_dataset_of_a_config_and_the_flags_override_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text('[data]\npath = "old"\n[train]\nepochs = 7\nlr = 0.1\n')
    assert main(["train", str(tmp_path / "new"), "--config", str(config), "--lr", "0.2",
                 "--print-config"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["data"]["path"] == str(tmp_path / "new")
    assert (printed["train"]["epochs"], printed["train"]["lr"]) == (7, 0.2)


@pytest.mark.parametrize("setting, message", [
    ("train.lrr=0.1", "unknown config key 'train.lrr' (did you mean train.lr?)"),
    ("colour.key=1", "unknown config key 'colour.key'"),
    ("train.lr", "write it as section.key=value"),
    ("train.epochs=ten", "train.epochs must be a whole number, not 'ten'"),
    ("train.amp=maybe", "train.amp must be true or false, not 'maybe'"),
    ("train.lr=50", "train.lr = 50.0 is out of range"),
    ("model.head=forest", "model.head = 'forest' is not one of"),
])
def test_bad_sets_are_one_readable_line(
    setting: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "data", "--set", setting, "--print-config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_argument_errors_are_one_line_with_exit_2() -> None:
    line = _one_error_line(_workbench("train", "data", "--epochs", "x"))
    assert line.startswith("workbench: train: argument --epochs: invalid int value: 'x'")
    assert "usage:" not in line and "workbench train --help" in line
    line = _one_error_line(_workbench("train"))
    assert "name a dataset (workbench train PATH)" in line
    line = _one_error_line(_workbench("train", "--demo", "--resume", "x"))
    assert "--demo and --resume cannot be combined" in line
    assert _one_error_line(_workbench("fly")).startswith("workbench: argument COMMAND: invalid")
    assert "unrecognized arguments: --nope" in _one_error_line(_workbench("scan", "x", "--nope"))


def test_version() -> None:
    from workbench import __version__

    done = _workbench("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"workbench {__version__}"


def test_run_dir_or_out_naming_a_file_is_one_line(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data", train=2, val=1)
    file = tmp_path / "notes.txt"
    file.write_text("not a folder")
    line = _one_error_line(_workbench("train", str(root), *TINY, "--run-dir", str(file)))
    assert line == f"workbench: --run-dir {file} is a file, not a folder"
    line = _one_error_line(_workbench("train", str(root), *TINY, "--out", str(file / "runs")))
    assert line == f"workbench: --out {file / 'runs'} is below {file}, which is a file, not a " \
                   "folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "notes.txt"]


def test_json_summary_and_no_carriage_returns_when_not_on_a_terminal(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data")
    done = _workbench("train", str(root), *TINY, "--epochs", "2", "--out", str(tmp_path / "runs"),
                      "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # stdout is the one object: the epoch lines went to stderr
    assert summary["status"] == "finished" and summary["epochs"] == 2
    assert summary["epochs_planned"] == 2 and summary["metric"] == "balanced_accuracy"
    assert 0.0 <= summary["best_metric"] <= 1.0
    assert Path(summary["run_dir"]).parent == tmp_path / "runs"
    assert "\r" not in done.stderr  # a pipe gets plain lines, never a progress bar
    assert [line.split()[1] for line in done.stderr.splitlines()
            if line.startswith("epoch")] == ["1/2", "2/2"]


def test_quiet_prints_only_the_run_folder(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data", train=4, val=2)
    done = _workbench("-q", "train", str(root), *TINY, "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert [Path(line).parent for line in done.stdout.splitlines()] == [tmp_path / "runs"]


def test_verbosity_sets_the_workbench_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    logger = logging.getLogger("workbench.train.example")
    try:
        for argv, level in ((["-q"], logging.ERROR), ([], logging.WARNING), (["-v"], logging.INFO),
                            (["-vv"], logging.DEBUG)):
            main([*argv, "train", "data", "--print-config"])
            assert logging.getLogger("workbench").getEffectiveLevel() == level
        main(["train", "data", "-v", "--print-config"])  # after the command works too
        logger.info("found %d images", 3)
        assert "workbench.train.example: found 3 images" in capsys.readouterr().err
        main(["train", "data", "--print-config"])
        logger.warning("slow disk")
        assert capsys.readouterr().err.strip() == "workbench: warning: slow disk"
    finally:
        output.configure(output.NORMAL)
