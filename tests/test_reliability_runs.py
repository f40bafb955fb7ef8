"""Nothing lost: run-folder lock, atomic names, checkpoint order, full disk, NaN, resume, SIGTERM"""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.builders import make_tiny_dataset, tiny_config
from workbench.cli import main
from workbench.config import RunConfig, load_config, save_config
from workbench.errors import UserError
from workbench.train import checkpointer, checkpoints, rundir
from workbench.train.checkpoints import load_checkpoint, save_checkpoint
from workbench.train.engine import Trainer
from workbench.train.events import BatchDone, CheckpointSaved, Failed, Finished, Stopped
from workbench.train.rundir import RunDir, read_events


def _strict_json(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "data", train=8, val=3)


# -- the run folder -------------------------------------------------------------------------------

def test_a_second_writer_of_a_run_is_refused_and_the_log_kept(tiny_root, tmp_path):
    events = list(Trainer(tiny_config(tiny_root, tmp_path / "runs")).run())
    run_dir = Path(events[0].run_dir)
    before = (run_dir / "metrics.jsonl").read_text()
    holder = RunDir.open(run_dir, step=10**9, epoch=10**9)  # another process, writing
    try:
        again = list(Trainer(tiny_config(tiny_root, tmp_path / "runs", epochs=2),
                             run_dir=run_dir, resume=True).run())
        assert isinstance(again[-1], Failed) and again[-1].user_error
        assert "another workbench process" in again[-1].message
        with pytest.raises(UserError, match="another workbench process"):
            RunDir.open(run_dir)
    finally:
        holder.close()
    assert (run_dir / "metrics.jsonl").read_text() == before
    RunDir.open(run_dir, step=10**9, epoch=10**9).close()  # free again once the first closes


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.time, "strftime", lambda _fmt: "20260101-000000")
    config = RunConfig()
    config.train.out_dir = str(tmp_path)
    (tmp_path / "20260101-000000-mobilenet_v2").mkdir()  # the other process won this name
    monkeypatch.setattr(Path, "exists", lambda self: False)  # ... after we looked
    made: list[Path] = []
    errors: list[Exception] = []

    def start() -> None:
        try:
            run = RunDir.create(config)
            made.append(run.path)
            run.close()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(made)) == 6
    assert all(p.name.startswith("20260101-000000-mobilenet_v2-") for p in made)


# -- checkpoints ----------------------------------------------------------------------------------

class _Killed(BaseException):
    """Stands for SIGKILL between two checkpoint writes."""


def test_a_kill_between_the_two_writes_never_leaves_last_ahead_of_best(tiny_root, tmp_path,
                                                                        monkeypatch):
    real = checkpointer.save_checkpoint

    def save_then_die(state, path):
        real(state, path)
        raise _Killed

    monkeypatch.setattr(checkpointer, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        list(Trainer(tiny_config(tiny_root, tmp_path / "runs")).run())
    folder = next((tmp_path / "runs").iterdir()) / "checkpoints"
    last, best = folder / "last.pt", folder / "best.pt"
    if last.exists():  # whatever last.pt says was best must be in best.pt already
        assert best.exists()
        assert load_checkpoint(last)["best_metric"] <= load_checkpoint(best)["best_metric"]
    assert best.exists()  # the epoch's best weights were written first


def test_a_full_disk_says_so_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"model": {"w": torch.zeros(3)}, "epoch": 1}, path)
    real_open = open

    def full_disk(file, mode="r", *args, **kwargs):
        if str(file).endswith(".tmp") and "w" in mode:
            return real_open("/dev/full", mode, *args, **kwargs)  # writes fail with ENOSPC
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "open", full_disk, raising=False)
    with pytest.raises(UserError, match=r"no space left on /.*last\.pt was not saved; the "
                                        r"previous checkpoint is kept") as caught:
        save_checkpoint({"model": {"w": torch.ones(1 << 20)}, "epoch": 2}, path)
    assert "\n" not in str(caught.value) and "inline_container" not in str(caught.value)
    assert load_checkpoint(path)["epoch"] == 1


@pytest.mark.parametrize("content", ["text", "old-pickle", "object"])
def test_unreadable_checkpoints_are_one_line_without_torch_warnings(tmp_path, capfd, content):
    path = tmp_path / "last.pt"
    if content == "text":
        path.write_text("hello")  # torch raised a bare KeyError('101')
    elif content == "old-pickle":
        path.write_bytes(pickle.dumps({"model": 1}, protocol=4))  # torch warns on stderr
    else:
        torch.save({"model": {"w": threading.Lock}}, path)
    with pytest.raises(UserError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message and str(path.name) in message
    assert capfd.readouterr().err == ""


def test_nan_metrics_are_written_as_null_with_the_reason(tmp_path):
    root = make_tiny_dataset(tmp_path / "data", train=8, val=2)
    for image in (root / "val").rglob("*.png"):
        image.write_bytes(b"gone")  # every validation image fails to load
    events = list(Trainer(tiny_config(root, tmp_path / "runs")).run())
    lines = (Path(events[0].run_dir) / "metrics.jsonl").read_text().splitlines()
    records = [_strict_json(line) for line in lines]
    evals = [r for r in records if r["event"] == "EvalDone"]
    assert evals and evals[0]["metrics"]["loss"] is None
    assert "no validation image could be loaded" in evals[0]["note"]


# -- resume ---------------------------------------------------------------------------------------

def test_a_resumed_run_equals_an_uninterrupted_one(tiny_root, tmp_path):
    def config(out: str, epochs: int) -> RunConfig:
        c = tiny_config(tiny_root, tmp_path / out, epochs=epochs, seed=7)
        c.data.augment = "standard"  # random crops and flips draw from the global RNG
        c.data.sampling = "class_balanced"  # weighted draws from the loader's generator
        return c.validate()

    straight = list(Trainer(config("a", 3)).run())
    interrupted = Trainer(config("b", 3))
    first = []
    for event in interrupted.run():  # stopped during epoch 2: last.pt holds epoch 1
        first.append(event)
        if isinstance(event, CheckpointSaved):
            interrupted.stop()
    assert isinstance(first[-1], Stopped)
    resumed = list(Trainer(config("b", 3), run_dir=first[0].run_dir, resume=True).run())
    assert isinstance(resumed[-1], Finished)
    losses = {e.step: e.loss for e in straight if isinstance(e, BatchDone)}
    again = {e.step: e.loss for e in resumed if isinstance(e, BatchDone)}
    assert again and again == {step: losses[step] for step in again}
    a = load_checkpoint(Path(straight[0].run_dir) / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(Path(first[0].run_dir) / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- SIGTERM --------------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_sigterm_stops_a_run_like_ctrl_c(tiny_root, tmp_path):
    config = tiny_config(tiny_root, tmp_path / "runs", epochs=1000)
    save_config(config, tmp_path / "run.toml")
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", "--config",
                             str(tmp_path / "run.toml")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        run_dir = _wait_for_checkpoint(tmp_path / "runs")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert out.strip().splitlines()[-1] == str(run_dir)
    assert read_events(run_dir)[-1]["event"] == "Stopped"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] >= 1


def _wait_for_checkpoint(runs: Path, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for folder in runs.glob("*"):
            if (folder / "checkpoints" / "last.pt").exists():
                return folder
        time.sleep(0.05)
    raise AssertionError("no checkpoint was written")


# -- readable refusals ----------------------------------------------------------------------------

@pytest.mark.parametrize("section, key, value, words", [
    ("data", "split_seed", -1, "data.split_seed = -1 is out of range"),
    ("data", "num_workers", 100000, "data.num_workers = 100000 is out of range"),
    ("data", "num_workers", -2, "data.num_workers = -2 is out of range"),
    ("train", "seed", -5, "train.seed = -5 is out of range"),
    ("train", "seed", 2**40, "train.seed = 1099511627776 is out of range"),
    ("model", "feature_stage", 1000, "model.feature_stage = 1000 is out of range"),
])
def test_absurd_config_values_are_refused_in_one_line(tmp_path, section, key, value, words):
    path = tmp_path / "run.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    with pytest.raises(UserError, match=words):
        load_config(path)


def test_a_negative_split_seed_flag_is_one_line(capsys, tmp_path):
    make_tiny_dataset(tmp_path / "data", train=3, val=0)
    assert main(["scan", str(tmp_path / "data"), "--seed", "-1", "--no-checks"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: data.split_seed = -1") and "\n" not in err


def test_negative_epochs_are_refused_before_any_work(capsys):
    start = time.monotonic()
    assert main(["train", "--demo", "--epochs", "-1"]) == 2
    assert time.monotonic() - start < 10  # the demo's advisor (30 s) never starts
    err = capsys.readouterr().err.strip()
    assert "--epochs must be at least 1" in err and "\n" not in err
