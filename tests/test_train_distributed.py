"""Training in two CPU processes over gloo, started by the real torchrun: the samplers' shares,
one run directory written by rank 0, metrics equal to one process on the same weights, resume
with another number of processes, and a killed rank ending the job with a readable message."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from tests.builders import plan_config, pretrained_config
from workbench.config import RunConfig, save_config
from workbench.devices import World
from workbench.train.distributed import DistributedWeightedSampler, ShardSampler, train_sampler
from workbench.train.samplers import sample_weights

LABELS = [0] * 50 + [1] * 10 + [2] * 3  # long-tailed, 63 images: not a multiple of 2 or 4
TORCHRUN_TIMEOUT_S = 240


# -- the samplers' shares (no process group needed) --------------------------------------------

@pytest.mark.parametrize("mode", ["class_balanced", "sqrt"])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_weighted_shares_together_are_one_draw(mode, world):
    weights = sample_weights(LABELS, mode)
    shares = [DistributedWeightedSampler(weights, world, rank, seed=7) for rank in range(world)]
    for sampler in shares:
        sampler.set_epoch(3)
    draws = [list(sampler) for sampler in shares]
    assert len({len(d) for d in draws}) == 1  # every rank steps as often: no DDP hang
    interleaved = [draws[i % world][i // world] for i in range(world * len(draws[0]))]
    assert interleaved == shares[0].global_draw().tolist()  # nothing duplicated, nothing dropped
    assert len(interleaved) - len(LABELS) < world


@pytest.mark.parametrize("mode", ["class_balanced", "sqrt"])
def test_weighted_shares_draw_the_one_process_class_distribution(mode):
    weights = sample_weights(LABELS, mode)
    per_class = collections.Counter()
    for epoch in range(200):
        for rank in range(2):
            sampler = DistributedWeightedSampler(weights, 2, rank, seed=0)
            sampler.set_epoch(epoch)
            per_class.update(LABELS[i] for i in sampler)
    total = sum(per_class.values())
    counts = np.bincount(LABELS)
    expected = np.ones(3) if mode == "class_balanced" else np.sqrt(counts)
    expected = expected / expected.sum()
    observed = np.array([per_class[c] / total for c in range(3)])
    np.testing.assert_allclose(observed, expected, atol=0.02)


def test_weighted_epochs_differ_and_repeat():
    sampler = DistributedWeightedSampler(sample_weights(LABELS, "class_balanced"), 2, 0, seed=1)
    sampler.set_epoch(1)
    first = list(sampler)
    sampler.set_epoch(2)
    assert list(sampler) != first
    sampler.set_epoch(1)
    assert list(sampler) == first  # a resumed epoch draws what it drew before


def test_plain_shuffling_uses_distributed_sampler():
    sampler = train_sampler(list(range(len(LABELS))), LABELS, "none", World(1, 1, 2), seed=0)
    assert isinstance(sampler, DistributedSampler)


@pytest.mark.parametrize("size", [0, 1, 999, 1000])
def test_evaluation_shards_cover_each_image_once(size):
    shards = [list(ShardSampler(size, 3, rank)) for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(size))
    assert [len(ShardSampler(size, 3, r)) for r in range(3)] == [len(s) for s in shards]


# -- choosing devices and processes (the plan) --------------------------------------------------

def test_device_names_one_gpu_and_gpus_ask_for_several():
    from workbench.errors import UserError

    config = RunConfig()
    config.train.device, config.train.gpus = "cuda:1", 0
    config.validate()
    for bad in ("cuda:x", "gpu", "cuda:"):
        config.train.device = bad
        with pytest.raises(UserError, match="cuda:N"):
            config.validate()
    config.train.device, config.train.gpus = "cuda", -1
    with pytest.raises(UserError, match="train.gpus"):
        config.validate()


def test_torchrun_s_world_sets_the_plan_s_processes(monkeypatch):
    from workbench.config import NormPolicy
    from workbench.plan import plan_run

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    plan = plan_run(plan_config(device="cpu", norm_policy="sync_bn"))
    assert plan.processes == 2 and plan.device == "cpu" and plan.process_batch_size == 16
    assert plan.norm_policy == NormPolicy.TRAIN_BN  # SyncBatchNorm cannot sync CPU processes
    assert any("ordinary BatchNorm" in note for note in plan.notes)
    assert any("each takes 16" in note for note in plan.notes)
    assert "x 2 processes" in plan.summary()[0]


def test_fast_path_and_sklearn_heads_stay_in_one_process(monkeypatch):
    from workbench.plan import plan_run

    monkeypatch.setenv("WORLD_SIZE", "2")
    for model in ({"head": "logreg"}, {"freeze_stages": 5}):
        plan = plan_run(plan_config(device="cpu", **model))
        assert plan.processes == 1
        assert any("trains in one process: 2 asked, 1 used" in w for w in plan.warnings)


def test_one_process_sync_bn_is_said_to_be_batchnorm():
    from workbench.plan import plan_run

    plan = plan_run(plan_config(device="cpu", norm_policy="sync_bn"))
    assert plan.processes == 1 and plan.norm_policy == "train_bn"
    assert "SyncBatchNorm in one process is ordinary BatchNorm" in plan.notes


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a GPU-less machine")
def test_gpus_asked_on_a_machine_without_them_are_refused_before_anything_starts(
        tmp_path, capsys):
    from workbench.cli import main
    from workbench.errors import UserError
    from workbench.plan import plan_run

    config = plan_config(device="cpu")
    config.train.device, config.train.gpus = "auto", 2
    with pytest.raises(UserError, match="needs CUDA GPUs"):
        plan_run(config)
    config.train.device = "cuda:1"
    config.train.gpus = 0
    with pytest.raises(UserError, match="no CUDA device"):
        plan_run(config)
    config_file = save_config(plan_config(device="cpu"), tmp_path / "c.toml")
    assert main(["train", "--config", str(config_file), "--gpus", "2"]) == 2
    assert "2 GPUs asked, but no CUDA GPU is available here" in capsys.readouterr().err


def test_the_dataset_fingerprint_ignores_the_root_but_not_the_files(demo_root, tmp_path):
    from workbench.data.scan import open_dataset
    from workbench.train.distributed import dataset_fingerprint

    copy = Path(shutil.copytree(demo_root, tmp_path / "elsewhere"))
    assert dataset_fingerprint(open_dataset(str(copy))) == \
        dataset_fingerprint(open_dataset(str(demo_root)))
    next((copy / "train").rglob("*.png")).unlink()
    assert dataset_fingerprint(open_dataset(str(copy))) != \
        dataset_fingerprint(open_dataset(str(demo_root)))


# -- two processes through torchrun ------------------------------------------------------------

def _config(demo_root: Path) -> RunConfig:
    # ImageNet weights (on disk offline): random init learns nothing in 2 steps
    return pretrained_config(demo_root, None, data__sampling="class_balanced",
                             model__freeze_stages=2, train__batch_size=32, train__lr=0.05,
                             train__device="cpu", train__warmup_epochs=0.0)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WORKBENCH_DIST_TIMEOUT": "60"}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node=2", "-m", "workbench", "train", *args]


def _events(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def two_process_run(demo_root, tmp_path_factory) -> Path:
    """One epoch trained by 2 CPU processes (gloo); the run folder."""
    base = tmp_path_factory.mktemp("ddp")
    config_file = save_config(_config(demo_root), base / "tiny.toml")
    out = base / "runs"
    done = subprocess.run(_torchrun("--config", str(config_file), "--out", str(out)),
                          capture_output=True, text=True, env=_env(), timeout=TORCHRUN_TIMEOUT_S,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list(out.iterdir())
    assert len(runs) == 1, runs  # one run directory, not one per process
    assert done.stdout.strip().splitlines()[-1] == str(runs[0])
    return runs[0]


@pytest.mark.slow
def test_rank_0_alone_writes_one_record(two_process_run):
    events = _events(two_process_run)
    kinds = collections.Counter(e["event"] for e in events)
    assert kinds["RunStarted"] == 1 and kinds["EvalDone"] == 1 and kinds["Finished"] == 1
    assert kinds["BatchDone"] == 2  # limit_train_batches steps, each recorded once
    assert len(list(two_process_run.glob("events.out.tfevents.*"))) == 1
    assert (two_process_run / "checkpoints" / "last.pt").is_file()
    assert not list(two_process_run.rglob("*.tmp"))


@pytest.mark.slow
def test_two_process_metrics_equal_one_process_on_the_same_weights(two_process_run):
    from workbench.train.predictions import load_predictions

    metrics = next(e for e in _events(two_process_run) if e["event"] == "EvalDone")["metrics"]
    assert metrics["num_images"] == 1000  # each validation image counted once over the 2 ranks
    # the predictions are computed by rank 0 alone, in one process, on the last weights
    one = load_predictions(two_process_run, "val", "last")
    n = len(metrics["confusion"])
    confusion = np.bincount(one.labels * n + one.logits.argmax(1), minlength=n * n)
    assert confusion.reshape(n, n).tolist() == metrics["confusion"]
    recall = [row[i] / sum(row) for i, row in enumerate(metrics["confusion"]) if sum(row)]
    assert metrics["balanced_acc"] == pytest.approx(float(np.mean(recall)))
    predicted = [sum(column) for column in zip(*metrics["confusion"], strict=True)]
    assert sum(1 for count in predicted if count) >= 2  # not a constant guess: a real comparison


@pytest.mark.slow
def test_a_two_process_run_resumes_in_one_process(two_process_run, tmp_path):
    from workbench.train.engine import Trainer
    from workbench.train.events import Finished, RunStarted

    run = Path(shutil.copytree(two_process_run, tmp_path / "run"))
    config = RunConfig.from_dict(_config_dict(run))
    config.train.epochs = 2
    events = list(Trainer(config, run_dir=run, resume=True).run())
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.start_epoch == 1
    assert isinstance(events[-1], Finished), events[-1]
    assert [e["epoch"] for e in _events(run) if e["event"] == "EvalDone"] == [1, 2]


def _config_dict(run: Path) -> dict:
    import tomllib

    return tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker with RANK=rank (read from /proc)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"RANK={rank}".encode() in environ:
            return int(proc.name)
    return None


@pytest.mark.slow
def _wait_until_resumed_run_trains(job: subprocess.Popen, run: Path) -> None:
    """Until the resumed run records a batch of its second epoch (the job must stay alive)."""
    deadline = time.monotonic() + TORCHRUN_TIMEOUT_S
    while not any(e["event"] == "BatchDone" and e["epoch"] > 1 for e in _events(run)):
        assert job.poll() is None, job.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the resumed run never trained"
        time.sleep(0.2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank through /proc")
def test_a_killed_rank_ends_a_resumed_two_process_run(two_process_run, tmp_path):
    run = Path(shutil.copytree(two_process_run, tmp_path / "run"))
    job = subprocess.Popen(_torchrun("--resume", str(run), "--epochs", "50"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        _wait_until_resumed_run_trains(job, run)
        started = [e for e in _events(run) if e["event"] == "RunStarted"]
        assert started[-1]["start_epoch"] == 1  # resumed with 2 processes, after epoch 1
        pid = _rank_pid(job.pid, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _out, err = job.communicate(timeout=90)  # never an endless wait
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode != 0
    # rank 0 says it in one line (torchrun then names the killed rank and its signal)
    assert ("another process of the run ended" in err or "torchrun ended the job" in err
            ), err[-3000:]
    assert "SIGKILL" in err
    assert _events(run)[-1]["event"] in ("Stopped", "Failed")
    assert (run / "checkpoints" / "last.pt").is_file()  # epoch 1's checkpoint is kept



@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank through /proc")
def test_a_hung_rank_ends_the_run_within_the_timeout(two_process_run, tmp_path):
    run = Path(shutil.copytree(two_process_run, tmp_path / "run"))
    env = {**_env(), "WORKBENCH_DIST_TIMEOUT": "15"}
    job = subprocess.Popen(_torchrun("--resume", str(run), "--epochs", "50"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    pid = None
    try:
        _wait_until_resumed_run_trains(job, run)
        pid = _rank_pid(job.pid, 1)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # rank 1 hangs: alive, silent
        hung = time.monotonic()
        while _events(run)[-1]["event"] not in ("Failed", "Stopped"):
            assert time.monotonic() - hung < 15 + 60, "rank 0 waited past its timeout"
            time.sleep(0.2)
        ended = _events(run)[-1]
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # let torchrun's SIGTERM reach it
        if job.poll() is None:
            try:
                job.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                job.kill()
                job.communicate()
    assert ended["event"] == "Failed"
    assert "did not answer within 15 s" in ended["message"]
    assert (run / "checkpoints" / "last.pt").is_file()


# -- the GUI's way: torchrun as a subprocess, followed through metrics.jsonl -------------------

@pytest.mark.slow
def test_a_torchrun_job_relays_events_pauses_and_stops_gracefully(demo_root, tmp_path,
                                                                     monkeypatch):
    from workbench.train.events import (
        BatchDone,
        CheckpointSaved,
        EvalDone,
        Paused,
        Resumed,
        RunStarted,
        Stopped,
    )
    from workbench.train.launch import TorchrunJob

    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    config = _config(demo_root)
    config.train.epochs = 20
    config.train.out_dir = str(tmp_path / "runs")
    job = TorchrunJob(config, processes=2)
    seen = []
    for event in job.run():
        seen.append(event)
        if isinstance(event, BatchDone) and not any(isinstance(e, Paused) for e in seen):
            job.pause()
        elif isinstance(event, Paused):
            job.resume()
        elif isinstance(event, CheckpointSaved):
            job.stop()  # after epoch 1: its checkpoint must be kept
    kinds = [type(e) for e in seen]
    assert kinds[0] is RunStarted and kinds[-1] is Stopped
    assert Paused in kinds and Resumed in kinds and EvalDone in kinds
    assert seen[0].device == "cpu" and seen[0].run_dir == str(job.run_dir)
    assert (job.run_dir / "checkpoints" / "last.pt").is_file()
    assert job._process is not None and job._process.returncode == 0  # every process ended


def test_a_torchrun_job_refused_before_training_says_why(demo_root, tmp_path, monkeypatch):
    from workbench.train.events import Failed
    from workbench.train.launch import TorchrunJob

    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    config = _config(demo_root)
    config.data.path = str(tmp_path / "not-there")
    config.train.out_dir = str(tmp_path / "runs")
    events = list(TorchrunJob(config, processes=2).run())
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "not-there" in events[0].message and events[0].user_error
    assert not list((tmp_path / "runs").iterdir())  # no empty run folder left behind
