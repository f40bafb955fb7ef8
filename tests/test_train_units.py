"""Imbalance weights, samplers, metrics, LR schedule, events, checkpoints and the run directory."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.config import RunConfig
from workbench.errors import UserError
from workbench.train.checkpoints import load_checkpoint, save_checkpoint
from workbench.train.events import BatchDone, EvalDone, Failed
from workbench.train.losses import class_weights
from workbench.train.metrics import compute_metrics
from workbench.train.rundir import RunDir, read_events
from workbench.train.samplers import build_sampler, sample_weights
from workbench.train.schedule import warmup_cosine


def test_inverse_weights_favour_rare_classes_and_average_one() -> None:
    w = class_weights([100, 10, 1], "inverse")
    assert w is not None
    assert w.mean().item() == pytest.approx(1.0)
    assert w[2] / w[0] == pytest.approx(100.0)
    w_sqrt = class_weights([100, 25, 1], "inverse_sqrt")
    assert w_sqrt[2] / w_sqrt[0] == pytest.approx(10.0)
    assert class_weights([5, 5], "none") is None


def test_effective_number_weights_follow_cui_et_al() -> None:
    counts, beta = [1000, 100, 10], 0.99
    w = class_weights(counts, "effective_number", beta)
    expected = np.array([(1 - beta) / (1 - beta**n) for n in counts])
    expected /= expected.mean()
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)
    # beta -> 0: every class counts once, so weights are equal
    assert torch.allclose(class_weights(counts, "effective_number", 0.0), torch.ones(3))


def test_empty_class_gets_zero_weight() -> None:
    w = class_weights([10, 0, 40], "inverse")
    assert w[1] == 0
    assert w[[0, 2]].mean().item() == pytest.approx(1.0)


def test_class_balanced_sampler_draws_classes_equally() -> None:
    labels = [0] * 900 + [1] * 90 + [2] * 10
    weights = sample_weights(labels, "class_balanced")
    assert weights[0] == pytest.approx(1 / 900) and weights[-1] == pytest.approx(1 / 10)
    sampler = build_sampler(labels, "class_balanced", torch.Generator().manual_seed(0))
    drawn = Counter(labels[i] for i in sampler)
    assert len(sampler) == len(labels)
    assert all(250 < drawn[c] < 420 for c in range(3)), drawn
    sqrt = sample_weights(labels, "sqrt")
    # class probability proportional to sqrt(n): 30 : 9.5 : 3.2
    per_class = [sqrt[np.asarray(labels) == c].sum().item() for c in range(3)]
    assert per_class[0] / per_class[2] == pytest.approx(math.sqrt(90), rel=1e-6)
    assert build_sampler(labels, "none") is None


def test_shot_band_accuracy_uses_training_counts() -> None:
    names = ["head", "mid", "tail"]
    train_counts = [500, 50, 5]
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 0, 1, 0, 0, 0])
    m = compute_metrics(y_true, y_pred, 0.5, names, train_counts)
    assert m.top1 == pytest.approx(5 / 8)
    assert m.balanced_acc == pytest.approx((1 + 0.5 + 0) / 3)
    assert m.shot_acc == {"many": 1.0, "medium": 0.5, "few": 0.0}
    assert m.per_class_acc == {"head": 1.0, "mid": 0.5, "tail": 0.0}
    assert m.confusion == [[4, 0, 0], [1, 1, 0], [2, 0, 0]]
    assert m.bands == {"head": "many", "mid": "medium", "tail": "few"}


def test_class_without_val_images_is_left_out_of_balanced_accuracy() -> None:
    m = compute_metrics(np.array([0, 0]), np.array([0, 1]), 0.1, ["a", "b"], [30, 30])
    assert m.per_class_acc["b"] is None
    assert m.balanced_acc == pytest.approx(0.5)
    assert m.shot_acc["many"] is None


def test_schedule_warms_up_then_decays_to_zero() -> None:
    f = warmup_cosine(total_steps=100, warmup_steps=10)
    ramp = [f(s) for s in range(10)]
    assert ramp == sorted(ramp) and ramp[0] < 0.2
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5, abs=0.02)
    assert f(99) < 0.01


def test_event_lines_are_json_with_kind_and_time() -> None:
    m = compute_metrics(np.array([0, 1]), np.array([0, 1]), 0.1, ["a", "b"], [5, 5])
    line = json.loads(json.dumps(EvalDone(2, m).to_dict()))
    assert line["event"] == "EvalDone" and line["epoch"] == 2
    assert line["metrics"]["balanced_acc"] == 1.0 and line["time"] > 0
    batch = BatchDone(1, 3, 10, 0.7, {"head": 0.01}, 120.0).to_dict()
    assert batch["lrs"] == {"head": 0.01} and batch["event"] == "BatchDone"


def test_checkpoint_survives_a_crash_between_write_and_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}, "epoch": 1}, path)

    def crash(*_args: object) -> None:
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint({"model": {"w": torch.zeros(3)}, "epoch": 2}, path)
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left


def test_checkpoint_with_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "obj": Path("x")}, path)
    with pytest.raises(UserError, match="cannot be read"):
        load_checkpoint(path)
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(UserError):
        load_checkpoint(tmp_path / "torn.pt")


def test_run_dir_records_events_and_truncates_on_resume(tmp_path: Path) -> None:
    config = RunConfig()
    config.train.out_dir = str(tmp_path)
    rd = RunDir.create(config)
    assert (rd.path / "config.toml").is_file() and rd.path.parent == tmp_path
    for step in (1, 2, 3, 4):
        rd.record(BatchDone(1 + (step > 2), step, 4, 1.0 / step, {"head": 0.1}, 10.0))
    rd.record(Failed("boom"))
    rd.close()
    assert [e["event"] for e in read_events(rd.path)][-1] == "Failed"
    assert any(p.name.startswith("events.out.tfevents") for p in rd.path.iterdir())
    reopened = RunDir.open(rd.path, step=2, epoch=1)
    reopened.close()
    steps = [e["step"] for e in read_events(rd.path) if e["event"] == "BatchDone"]
    assert steps == [1, 2]
    with pytest.raises(UserError, match="not a run folder"):
        RunDir.open(tmp_path / "nope")


def test_run_in_a_chosen_folder_must_not_overwrite_another(tmp_path: Path) -> None:
    rd = RunDir.create_at(tmp_path / "mine", RunConfig())
    rd.close()
    assert (tmp_path / "mine" / "config.toml").is_file()
    with pytest.raises(UserError, match="not empty"):
        RunDir.create_at(tmp_path / "mine", RunConfig())


def test_recorded_events_read_back_typed_up_to_the_last_checkpoint(tmp_path: Path) -> None:
    from workbench.train.events import CheckpointSaved, EpochStarted, RunStarted, event_from_dict
    from workbench.train.rundir import inspect_run

    metrics = compute_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), 0.5,
                              ["a", "b"], [150, 10])
    rd = RunDir.create_at(tmp_path / "run", RunConfig())
    with pytest.raises(UserError, match="no checkpoint"):
        inspect_run(rd.path)
    (rd.path / "checkpoints" / "last.pt").write_bytes(b"")
    for event in (RunStarted(str(rd.path), "cpu", 3, 3, 2, 1), EpochStarted(1),
                  BatchDone(1, 1, 2, 0.7, {"head": 0.1}, 5.0), EvalDone(1, metrics),
                  CheckpointSaved("last.pt", True), EpochStarted(2),
                  BatchDone(2, 2, 2, 0.6, {"head": 0.1}, 5.0)):
        rd.record(event)
    rd.close()
    summary = inspect_run(rd.path)
    assert summary.epochs_done == 1 and isinstance(summary.history[-1], CheckpointSaved)
    evaluated = next(e for e in summary.history if isinstance(e, EvalDone))
    assert evaluated.metrics == metrics  # balanced and shot-band accuracy come back typed
    assert event_from_dict({"event": "NoSuchEvent"}) is None
    with pytest.raises(UserError, match="not a run folder"):
        inspect_run(tmp_path)
