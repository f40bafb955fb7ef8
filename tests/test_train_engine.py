"""The training engine end to end on a tiny real image folder (random-init mobilenet_v2, 32 px)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.builders import make_tiny_dataset, tiny_config
from workbench.train.checkpoints import load_checkpoint
from workbench.train.engine import Trainer
from workbench.train.events import (
    BatchDone,
    CheckpointSaved,
    EpochStarted,
    EvalDone,
    Failed,
    FeaturesProgress,
    Finished,
    Paused,
    RunStarted,
    Stopped,
)
from workbench.train.rundir import read_events


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def test_run_yields_events_and_records_them(tiny_root: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_root, tmp_path / "runs", epochs=2, limit_train_batches=3)
    events = list(Trainer(config).run())
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], Finished), kinds(events)
    started = events[0]
    assert (started.num_train, started.num_val, started.steps_per_epoch) == (36, 12, 3)
    batches = [e for e in events if isinstance(e, BatchDone)]
    assert [b.step for b in batches] == list(range(1, 7))
    assert set(batches[0].lrs) == {"head", *[k for k in batches[0].lrs if k.startswith("stage")]}
    assert all(b.images_per_s > 0 for b in batches)
    evals = [e for e in events if isinstance(e, EvalDone)]
    assert [e.epoch for e in evals] == [1, 2]
    assert evals[-1].metrics.num_images == 12 and len(evals[-1].metrics.confusion) == 3
    run_dir = Path(started.run_dir)
    assert [e["event"] for e in read_events(run_dir)] == kinds(events)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 2 and state["step"] == 6
    assert state["class_names"] == ["class_0", "class_1", "class_2"]
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())


def _consume_in_thread(trainer: Trainer) -> tuple[list, threading.Thread]:
    """Run the trainer in a worker thread, as the GUI does; the list fills live."""
    events: list = []

    def consume() -> None:
        for event in trainer.run():
            events.append(event)

    thread = threading.Thread(target=consume, name="trainer")
    thread.start()
    return events, thread


def _wait_for(events: list, kind: type, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(isinstance(e, kind) for e in events):
        assert time.monotonic() < deadline, f"no {kind.__name__} in {kinds(events)}"
        time.sleep(0.01)


def test_stop_mid_epoch_ends_promptly(tiny_root: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_root, tmp_path / "runs", epochs=50, batch_size=2)
    trainer = Trainer(config)
    events, thread = _consume_in_thread(trainer)
    _wait_for(events, BatchDone)
    t0 = time.monotonic()
    trainer.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 5.0  # 50 epochs were left
    assert isinstance(events[-1], Stopped)
    assert sum(isinstance(e, BatchDone) for e in events) < 18  # well before the epoch's end


def test_pause_blocks_training_until_resumed(tiny_root: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_root, tmp_path / "runs", batch_size=4)
    trainer = Trainer(config)
    trainer.pause()
    events, thread = _consume_in_thread(trainer)
    _wait_for(events, Paused)
    time.sleep(0.3)
    assert not any(isinstance(e, BatchDone) for e in events)  # nothing trains while paused
    trainer.resume()
    thread.join(timeout=30)
    names = kinds(events)
    assert names.index("Paused") < names.index("Resumed") < names.index("BatchDone")
    assert isinstance(events[-1], Finished)


def test_resume_continues_epochs_and_schedule(tiny_root: Path, tmp_path: Path) -> None:
    first = list(Trainer(tiny_config(tiny_root, tmp_path / "a", epochs=1)).run())
    run_dir = first[0].run_dir
    config = tiny_config(tiny_root, tmp_path / "a", epochs=2)
    resumed = list(Trainer(config, run_dir=run_dir, resume=True).run())
    assert isinstance(resumed[-1], Finished), kinds(resumed)
    assert resumed[0].start_epoch == 1
    assert [e.epoch for e in resumed if isinstance(e, EpochStarted)] == [2]
    steps = [e.step for e in resumed if isinstance(e, BatchDone)]
    assert steps == [6, 7, 8, 9, 10]
    # the LR continues the 2-epoch warm-up + cosine, exactly as an uninterrupted run
    straight = list(Trainer(tiny_config(tiny_root, tmp_path / "b", epochs=2)).run())
    lrs = {e.step: e.lrs for e in straight if isinstance(e, BatchDone)}
    for e in resumed:
        if isinstance(e, BatchDone):
            assert e.lrs == pytest.approx(lrs[e.step])
    recorded = read_events(run_dir)
    assert [e["step"] for e in recorded if e["event"] == "BatchDone"] == list(range(1, 11))
    assert [e["epoch"] for e in recorded if e["event"] == "EvalDone"] == [1, 2]


def test_bad_backbone_fails_with_one_line_and_no_run_dir(tiny_root: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_root, tmp_path / "runs")
    config.model.backbone = "resnet_nonexistent"
    events = list(Trainer(config).run())
    assert kinds(events) == ["Failed"]
    assert events[0].user_error and "resnet_nonexistent" in events[0].message
    assert "\n" not in events[0].message
    assert not (tmp_path / "runs").exists()


def test_corrupt_training_image_is_skipped_and_counted(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data", corrupt=True)
    config = tiny_config(root, tmp_path / "runs", batch_size=37)  # one batch holds every image
    events = list(Trainer(config).run())
    assert isinstance(events[-1], Finished), kinds(events)
    assert max(e.skipped_images for e in events if isinstance(e, BatchDone)) == 1


def test_out_of_memory_becomes_a_readable_failure(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def oom(*_args: object) -> float:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "_step", oom)
    events = list(Trainer(tiny_config(tiny_root, tmp_path / "runs")).run())
    assert isinstance(events[-1], Failed)
    assert events[-1].message == ("CUDA out of memory at batch size 8: try a smaller batch size")
    assert read_events(events[0].run_dir)[-1]["event"] == "Failed"


def test_frozen_backbone_trains_on_cached_features(tiny_root: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_root, tmp_path / "runs", epochs=2)
    from workbench.models.transfer import build_model

    config.model.freeze_stages = build_model("mobilenet_v2", "random").num_stages
    first = list(Trainer(config).run())
    assert first[0].fast_path and isinstance(first[-1], Finished), kinds(first)
    progress = [e for e in first if isinstance(e, FeaturesProgress)]
    assert progress and not any(e.cached for e in progress)
    second = list(Trainer(config).run())
    cached = [e for e in second if isinstance(e, FeaturesProgress)]
    assert [e.cached for e in cached] == [True, True]  # train and val both from the cache
    assert any(isinstance(e, CheckpointSaved) for e in second)
    # the cache is keyed by the images: touching one file invalidates it
    img = next((tiny_root / "train" / "class_1").iterdir())
    Image.new("RGB", (24, 24), (0, 0, 0)).save(img)
    third = list(Trainer(config).run())
    assert not [e for e in third if isinstance(e, FeaturesProgress)][0].cached


@pytest.mark.parametrize("head", ["logreg", "svm"])
def test_sklearn_head_on_earlier_stage_features(tiny_root: Path, tmp_path: Path, head: str) -> None:
    config = tiny_config(tiny_root, tmp_path / "runs")
    config.model.head, config.model.feature_stage = head, 2
    events = list(Trainer(config).run())
    assert isinstance(events[-1], Finished), kinds(events)
    metrics = [e for e in events if isinstance(e, EvalDone)][0].metrics
    assert metrics.balanced_acc > 0.6  # colour patches are separable even at random init
    state = load_checkpoint(Path(events[0].run_dir) / "checkpoints" / "best.pt")
    assert state["feature_stage"] == 2 and state["probe_head"]["weight"].shape[0] == 3
    # fitted once: resuming the finished run fits nothing again and records no second epoch
    again = list(Trainer(config, run_dir=events[0].run_dir, resume=True).run())
    assert kinds(again)[-1] == "Finished" and not any(isinstance(e, EvalDone | EpochStarted)
                                                       for e in again)


def test_unseeded_random_backbone_is_never_cached(tiny_root: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_root, tmp_path / "runs", seed=-1)
    config.model.head = "logreg"
    for _ in range(2):  # each run draws another random backbone: its features are its own
        events = list(Trainer(config).run())
        assert isinstance(events[-1], Finished), kinds(events)
        assert not any(e.cached for e in events if isinstance(e, FeaturesProgress))
