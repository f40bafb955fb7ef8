"""`workbench train`: exit codes, the run folder on the last line of stdout, readable errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from tests.test_train_engine import make_tiny_dataset, tiny_config
from workbench.cli import main
from workbench.config import save_config


def test_train_from_config_prints_run_dir_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tiny_dataset(tmp_path / "data")
    config_file = save_config(tiny_config(root, tmp_path / "unused"), tmp_path / "run.toml")
    code = main(["train", "--config", str(config_file), "--epochs", "2",
                 "--out", str(tmp_path / "runs")])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    run_dir = Path(out[-1])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "checkpoints" / "best.pt").is_file()
    assert [line.split()[1] for line in out if line.startswith("epoch")] == ["1/2", "2/2"]
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in events if e["event"] == "EvalDone"]
    assert [e["epoch"] for e in evals] == [1, 2]
    assert 0.0 <= evals[-1]["metrics"]["balanced_acc"] <= 1.0

    code = main(["train", "--resume", str(run_dir), "--epochs", "3"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and Path(out[-1]) == run_dir
    assert [line.split()[1] for line in out if line.startswith("epoch")] == ["3/3"]

    # the run has reached its epochs: resuming without asking for more says how to go on
    assert main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already trained its 3 epochs" in err[0] and "--epochs 6" in err[0]


def test_bad_config_value_is_one_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(tomli_w.dumps({"train": {"lr": -0.5}}))
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["workbench: train.lr = -0.5 is out of range [1e-06, 10.0]"]


def test_missing_dataset_and_missing_run_are_user_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path / "nowhere", tmp_path / "runs")
    config_file = save_config(config, tmp_path / "run.toml")
    assert main(["train", "--config", str(config_file)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    assert main(["train", "--resume", str(tmp_path / "no-run")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_skipped_images_are_reported_in_the_epoch_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tiny_dataset(tmp_path / "data", corrupt=True)
    config_file = save_config(tiny_config(root, tmp_path / "runs", batch_size=37),
                              tmp_path / "run.toml")
    assert main(["train", "--config", str(config_file), "--epochs", "1"]) == 0
    epoch = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert "1 failed image load(s) skipped" in epoch[0]


def test_train_demo_follows_the_advisor_and_prints_its_run_dir(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the README's headline command: the demo, mobilenet_v2's offline weights, the matrix's cell
    assert main(["train", "--demo", "--epochs", "1", "--out", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    run_dir = Path(captured.out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "runs"
    assert "advisor: dissimilar-small" in captured.err
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    balanced = [e["metrics"]["balanced_acc"] for e in events if e["event"] == "EvalDone"]
    assert balanced and balanced[-1] > 0.8  # pretrained features on real digits, not chance
