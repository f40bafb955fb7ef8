"""Engine fixes found by the new-user journey: divergence, pause during feature extraction, a
recorded stop when the consumer goes away, and best.pt without the optimizer state."""

from __future__ import annotations

import threading

from tests.builders import make_tiny_dataset, tiny_config
from workbench.train.checkpoints import load_checkpoint
from workbench.train.engine import Trainer
from workbench.train.events import BatchDone, Failed, FeaturesProgress, Finished, Paused, Resumed
from workbench.train.rundir import read_events


def test_a_diverging_run_stops_with_a_suggested_learning_rate(tmp_path):
    root = make_tiny_dataset(tmp_path / "data", train=16)
    config = tiny_config(root, tmp_path / "runs", lr=10.0, epochs=3)
    config.train.warmup_epochs = 0.0
    events = list(Trainer(config).run())
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.user_error
    assert "diverged" in failed.message and "try 1 or lower" in failed.message
    assert not any(isinstance(e, Finished) for e in events)


def test_pause_holds_feature_extraction_too(tmp_path):
    root = make_tiny_dataset(tmp_path / "data", train=16)
    config = tiny_config(root, tmp_path / "runs", batch_size=4)
    config.model.freeze_stages = 5  # the whole backbone frozen: features are extracted first
    trainer = Trainer(config)
    events = trainer.run()
    seen = []
    for event in events:
        seen.append(event)
        if isinstance(event, FeaturesProgress) and not any(isinstance(e, Paused) for e in seen):
            trainer.pause()
            threading.Timer(0.3, trainer.resume).start()
    kinds = [type(e) for e in seen]
    first_pause = kinds.index(Paused)
    assert kinds[first_pause - 1] is FeaturesProgress and Resumed in kinds
    assert BatchDone not in kinds[:first_pause] and kinds[-1] is Finished


def test_a_consumer_that_stops_listening_leaves_a_stopped_record(tmp_path):
    root = make_tiny_dataset(tmp_path / "data", train=16)
    config = tiny_config(root, tmp_path / "runs", batch_size=4, epochs=5)
    events = Trainer(config).run()
    run_dir = next(events).run_dir
    for event in events:
        if isinstance(event, BatchDone):
            break
    events.close()  # what the GUI's worker does when the window closes
    assert read_events(run_dir)[-1]["event"] == "Stopped"


def test_only_last_pt_carries_the_optimizer_state(tmp_path):
    root = make_tiny_dataset(tmp_path / "data")
    config = tiny_config(root, tmp_path / "runs")
    events = list(Trainer(config, run_dir=tmp_path / "run").run())
    assert isinstance(events[-1], Finished)
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert "optimizer" not in best and last["optimizer"]
    assert best["model"].keys() == last["model"].keys()


def test_a_run_gives_the_process_its_thread_count_back(tmp_path):
    import os

    import torch

    root = make_tiny_dataset(tmp_path / "data")
    before = torch.get_num_threads()
    mine = (os.cpu_count() or 1) + 2  # not what the run sets (every core but one)
    torch.set_num_threads(mine)
    try:
        events = list(Trainer(tiny_config(root, tmp_path / "runs")).run())
        assert isinstance(events[-1], Finished) and torch.get_num_threads() == mine
    finally:
        torch.set_num_threads(before)
