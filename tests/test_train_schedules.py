"""The loop's hooks with numbers pinned: DRW's switch, one-cycle, head-first unfreezing, early
stopping, cRT, post-hoc tau, and what a run folder records (metrics.csv, TensorBoard's axis)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.builders import make_config, plan_config, tiny_config
from workbench.data.scan import open_dataset
from workbench.errors import UserError
from workbench.plan import plan_run
from workbench.results.logit_adjust import adjust_logits, adjusted_metrics, best_tau
from workbench.train.callbacks import DeferredReweighting, EarlyStopping
from workbench.train.crt import retrain_classifier
from workbench.train.engine import Trainer
from workbench.train.epoch_table import COLUMNS
from workbench.train.events import BatchDone, CheckpointSaved, EpochStarted, Finished
from workbench.train.features import FeatureSet
from workbench.train.losses import LDAMLoss
from workbench.train.predictions import Predictions
from workbench.train.runpaths import RunPaths
from workbench.train.schedule import build_scheduler, restore_scheduler
from workbench.train.setup import seed_everything

# -- LDAM-DRW -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("epochs", "drw_start", "switched"), [
    (5, 0.8, [False, False, False, False, True]),  # int(0.8 * 5) = 4 epochs first
    (3, 0.5, [False, True, True]),  # int(1.5) = 1
    (4, 0.0, [True, True, True, True]),
])
def test_drw_switches_on_at_the_boundary_epoch(epochs, drw_start, switched):
    loss = LDAMLoss([100, 10], max_margin=0.5, drw_start=drw_start)
    hook = DeferredReweighting(loss)
    loop = SimpleNamespace(config=make_config(settings={"train.epochs": epochs}))
    seen = []
    for epoch in range(1, epochs + 1):
        assert list(hook.on_epoch_start(loop, epoch)) == []
        seen.append(loss.reweighting)
    assert seen == switched


def test_drw_loss_values_before_and_after_the_switch():
    # margins n^-1/4 scaled so the rarest is 0.5: 100 -> 0.5 * 100^-1/4 / 10^-1/4
    m0 = 0.5 * 100 ** -0.25 / 10 ** -0.25
    plain0, plain1 = math.log(1 + math.exp(m0)), math.log(1 + math.exp(0.5))  # zero logits
    # DRW weights: 1 / effective number (1 - b^n) / (1 - b), b = 0.9999, averaging 1
    inv = [(1 - 0.9999) / (1 - 0.9999 ** n) for n in (100, 10)]
    w0, w1 = (2 * v / sum(inv) for v in inv)
    loss = LDAMLoss([100, 10], max_margin=0.5, drw_start=0.8)
    logits, target = torch.zeros(2, 2), torch.tensor([0, 1])
    loss.set_epoch(4, 5)
    assert float(loss(logits, target)) == pytest.approx((plain0 + plain1) / 2, abs=1e-6)
    assert float(loss(logits, target)) == pytest.approx(0.908830, abs=1e-6)
    loss.set_epoch(5, 5)
    weighted = (w0 * plain0 + w1 * plain1) / (w0 + w1)
    assert float(loss(logits, target)) == pytest.approx(weighted, abs=1e-6)
    assert float(loss(logits, target)) == pytest.approx(0.962165, abs=1e-6)


# -- post-hoc logit adjustment ------------------------------------------------------------------

def _two_images(logits: list[list[float]]) -> Predictions:
    return Predictions("val", "best", ["head", "tail"], ["a.png", "b.png"], np.array([0, 1]),
                       np.array(logits, dtype=np.float32), [90, 10])


def test_post_hoc_tau_by_hand():
    prior = [math.log(0.9), math.log(0.1)]
    z = adjust_logits(np.array([[2.0, 1.0]]), [90, 10], tau=1.0)
    assert z[0].tolist() == pytest.approx([2 - prior[0], 1 - prior[1]])
    assert z[0].tolist() == pytest.approx([2.1053605, 3.3025851])
    assert adjust_logits(np.array([[2.0, 1.0]]), [90, 10], tau=0.0)[0].tolist() == [2.0, 1.0]
    # the tail image (logit gap 0.5) flips at tau > 0.5 / ln 9 = 0.2276; the head image (gap
    # 1.5) at tau > 1.5 / ln 9 = 0.6827: on the 0.1 grid, 0.3 is the smallest tau that gets both
    preds = _two_images([[2.0, 0.5], [2.0, 1.5]])
    assert adjusted_metrics(preds, 0.0).balanced_acc == 0.5
    assert best_tau(preds) == (pytest.approx(0.3), 1.0)
    at_one = adjusted_metrics(preds, 1.0)
    assert at_one.balanced_acc == 0.5  # both called "tail"
    gaps = [0.5 - prior[1] - (2 - prior[0]), 1.5 - prior[1] - (2 - prior[0])]
    by_hand = (math.log(1 + math.exp(gaps[0])) + math.log(1 + math.exp(-gaps[1]))) / 2
    assert at_one.loss == pytest.approx(by_hand)


# -- cRT ----------------------------------------------------------------------------------------

def _clusters(n0: int, n1: int, seed: int, dim: int) -> FeatureSet:
    """Two overlapping Gaussian classes along the first feature (means +1 and -1)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n0 + n1, dim), dtype=np.float32)
    x[:, 0] = np.r_[rng.normal(1.0, 1.0, n0), rng.normal(-1.0, 1.0, n1)]
    x[:, 1] = rng.normal(0.0, 1.0, n0 + n1)
    labels = torch.tensor([0] * n0 + [1] * n1)
    return FeatureSet(torch.from_numpy(x), labels, 0)


def test_crt_reinitialises_the_classifier_and_predicts_class_balanced():
    seed_everything(0, deterministic=False)
    model = plan_run(plan_config(device="cpu")).build_model(num_classes=2)
    last = model.head[-1]
    with torch.no_grad():  # a classifier that always says "head": cRT must start afresh
        last.weight.zero_()
        last.bias.copy_(torch.tensor([100.0, -100.0]))
    train = make_config(settings={"train.crt_epochs": 20, "train.batch_size": 32,
                                  "train.lr": 0.1}).train
    features = _clusters(380, 20, seed=1, dim=model.feature_dim)
    assert retrain_classifier(model, features, 2, train, torch.device("cpu"),
                              torch.Generator().manual_seed(0))
    assert model.head[-1] is not last and abs(float(model.head[-1].bias.detach()[0])) < 10
    test = _clusters(500, 500, seed=2, dim=model.feature_dim)
    with torch.no_grad():
        predicted = model.forward_head(test.features).argmax(1)
    recall = [float((predicted[test.labels == c] == c).float().mean()) for c in (0, 1)]
    # a balanced classifier cuts near 0 (recall ~0.84 each); an instance-balanced one (19:1)
    # cuts near -1.5 and misses most of the tail
    assert min(recall) > 0.7
    assert 0.35 < float(predicted.float().mean()) < 0.65


# -- one-cycle ----------------------------------------------------------------------------------

def _sgd(lr: float = 1.0, momentum: float = 0.9) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=momentum)


def _lrs(scheduler, optimizer, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_one_cycle_rises_over_the_warm_up_then_anneals():
    opt = _sgd()
    lrs = _lrs(build_scheduler(opt, 10, 3, "one_cycle"), opt, 10)
    assert lrs[0] == pytest.approx(1.0 / 25)  # OneCycleLR starts at max / div_factor
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 2
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert lrs == sorted(lrs[:3]) + sorted(lrs[2:], reverse=True)[1:]


def test_one_cycle_cycles_momentum_only_when_there_is_one():
    opt = _sgd()
    build_scheduler(opt, 10, 3, "one_cycle")
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)
    plain = _sgd(momentum=0.0)
    build_scheduler(plain, 10, 3, "one_cycle")
    assert plain.param_groups[0]["momentum"] == 0.0


def test_a_resumed_one_cycle_takes_the_new_length_and_a_changed_schedule_is_refused():
    opt = _sgd()
    first = build_scheduler(opt, 10, 3, "one_cycle")
    _lrs(first, opt, 6)
    state = first.state_dict()
    again = _sgd()
    longer = build_scheduler(again, 20, 3, "one_cycle")
    restore_scheduler(longer, state)
    assert longer.last_epoch == 6
    _lrs(longer, again, 13)  # beyond the first run's 10 steps: no "tried to step" error
    with pytest.raises(UserError, match='train.schedule = "one_cycle"'):
        restore_scheduler(build_scheduler(_sgd(), 10, 3, "warmup_cosine"), state)


def test_warmup_cosine_is_still_the_default_schedule():
    opt = _sgd(lr=0.5)
    lrs = _lrs(build_scheduler(opt, 4, 1), opt, 4)
    # warm-up: (0 + 1) / 2; then 0.5 * (1 + cos(pi * k / 3)) for k = 1, 2
    assert lrs == pytest.approx([0.25, 0.5, 0.5 * 0.75, 0.5 * 0.25])


# -- head first, then the slider's stages ------------------------------------------------------

def _stage_state(model, index: int) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.stages[index].state_dict().items()}


def test_unfreezing_trains_the_head_alone_then_the_slider_s_stages(tiny_root, tmp_path):
    config = tiny_config(tiny_root, tmp_path / "runs", epochs=2, unfreeze_after_epochs=1)
    config.model.freeze_stages = 3  # the slider: stages 3 and 4 fine-tune
    plan = plan_run(config, open_dataset(str(tiny_root)))
    assert any("head trains alone for 1 epoch(s), then stages 3-4" in n for n in plan.notes)
    seed_everything(0, deterministic=False)  # what the engine does before building the model
    initial = plan.build_model()
    states = []
    for event in Trainer(config, plan=plan).run():
        if isinstance(event, CheckpointSaved):
            states.append(torch.load(RunPaths.of(Path(event.path).parent.parent).last,
                                     weights_only=True)["model"])
        if isinstance(event, BatchDone):
            lr_groups = set(event.lrs)
    assert len(states) == 2 and {"head", "stage4:" + plan.stage_names[4]} <= lr_groups

    def stage(state: dict, index: int) -> dict[str, torch.Tensor]:
        prefix = f"stages.{index}."
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    for index in (3, 4):  # untouched while the head trained alone (BN statistics too)
        same = stage(states[0], index)
        assert all(torch.equal(same[k], v) for k, v in _stage_state(initial, index).items())
        moved = stage(states[1], index)
        assert any(not torch.equal(moved[k], same[k]) for k in same)
    frozen = stage(states[1], 0)  # below the slider: frozen for the whole run
    assert all(torch.equal(frozen[k], v) for k, v in _stage_state(initial, 0).items())


def test_unfreezing_that_cannot_apply_is_a_warning_not_a_failure():
    plan = plan_run(make_config(settings={"model.weights": "random", "model.freeze_stages": 5,
                                          "train.unfreeze_after_epochs": 2}))
    assert plan.unfreeze_after_epochs == 0
    assert any("nothing to unfreeze" in w for w in plan.warnings)
    late = plan_run(make_config(settings={"model.weights": "random", "train.epochs": 2,
                                          "train.unfreeze_after_epochs": 2}))
    assert any("only the head trains" in w for w in late.warnings)


# -- early stopping -----------------------------------------------------------------------------

@pytest.mark.parametrize(("epoch", "best_epoch", "stops"), [
    (4, 2, False), (5, 2, True), (5, 5, False), (10, 7, False)])  # epoch 10 is the last
def test_early_stopping_counts_epochs_since_the_best(epoch, best_epoch, stops):
    loop = SimpleNamespace(config=make_config(settings={"train.epochs": 10}), end_note="",
                           progress=SimpleNamespace(best=0.5, best_epoch=best_epoch))
    metrics = SimpleNamespace(balanced_acc=0.4)
    list(EarlyStopping(3).on_epoch_end(loop, epoch, metrics))
    assert bool(loop.end_note) == stops
    if stops:
        assert loop.end_note == ("stopped early after epoch 5 of 10: validation balanced "
                                 "accuracy did not improve for 3 epoch(s) (best 50.0% at epoch 2)")
    list(EarlyStopping(3).on_epoch_end(SimpleNamespace(**{**vars(loop), "end_note": ""}),
                                       epoch, None))  # no validation: nothing to monitor


def test_early_stopping_ends_a_run_that_stopped_improving(tiny_root, tmp_path):
    # a frozen backbone at a learning rate too small to change a prediction: every epoch after
    # the first is no better, so patience 1 ends the run after epoch 2 of 5
    config = tiny_config(tiny_root, tmp_path / "runs", epochs=5, lr=1e-6,
                         early_stopping_patience=1)
    config.model.freeze_stages = 5
    events = list(Trainer(config).run())
    assert [e.epoch for e in events if isinstance(e, EpochStarted)] == [1, 2]
    end = events[-1]
    assert isinstance(end, Finished) and end.note.startswith("stopped early after epoch 2 of 5")
    rows = _csv_rows(RunPaths.of(end.run_dir).metrics_csv)
    assert [r["epoch"] for r in rows] == ["1", "2"]


def _csv_rows(file: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(file.read_text(encoding="utf-8").splitlines()))


# -- what the run folder records ----------------------------------------------------------------

def test_metrics_csv_has_one_row_per_epoch_and_tensorboard_one_step_axis(tiny_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list(Trainer(tiny_config(tiny_root, tmp_path / "runs", epochs=2)).run())
    run = RunPaths.of(events[-1].run_dir)
    ends = {}  # epoch -> its last step
    for e in events:
        if isinstance(e, BatchDone):
            ends[e.epoch] = e.step
    rows = _csv_rows(run.metrics_csv)
    assert tuple(rows[0]) == COLUMNS
    assert [(r["epoch"], r["stage"], int(r["step"])) for r in rows] == [
        ("1", "train", ends[1]), ("2", "train", ends[2])]
    assert all(0 <= float(r["val_balanced_acc"]) <= 1 and float(r["train_loss"]) > 0
               and float(r["seconds"]) >= 0 for r in rows)
    tb = EventAccumulator(str(run.root))
    tb.Reload()
    assert [s.step for s in tb.Scalars("val/balanced_acc")] == [ends[1], ends[2]]
    assert [s.step for s in tb.Scalars("train/loss")][-1] == ends[2]


def test_a_resumed_run_rewrites_metrics_csv_up_to_its_checkpoint(tiny_root, tmp_path):
    run = tmp_path / "run"
    list(Trainer(tiny_config(tiny_root, tmp_path, epochs=1), run_dir=run).run())
    list(Trainer(tiny_config(tiny_root, tmp_path, epochs=2), run_dir=run, resume=True).run())
    rows = _csv_rows(RunPaths.of(run).metrics_csv)
    assert [r["epoch"] for r in rows] == ["1", "2"]


def test_run_paths_name_the_layout(tmp_path):
    paths = RunPaths.of(tmp_path)
    assert paths.best == tmp_path / "checkpoints" / "best.pt"
    assert paths.checkpoint("last") == paths.last == tmp_path / "checkpoints" / "last.pt"
    assert paths.prediction("val", "best") == tmp_path / "predictions" / "val-best.npz"
    assert not paths.is_run()
    with pytest.raises(UserError, match="best, last"):
        paths.checkpoint("first")


def test_the_cli_says_why_a_run_stopped_early(tiny_root, tmp_path, capsys):
    import json

    from workbench.cli import main
    from workbench.config import save_config

    config = tiny_config(tiny_root, tmp_path / "runs", epochs=4, lr=1e-6,
                         early_stopping_patience=1)
    config.model.freeze_stages = 5
    file = save_config(config, tmp_path / "run.toml")
    assert main(["train", "--config", str(file), "--set", "train.schedule=one_cycle",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["epochs"] == 2
    assert summary["message"].startswith("stopped early after epoch 2 of 4")


def test_every_numeric_setting_has_its_range_in_limits():
    import dataclasses

    from workbench.config import LIMITS, SECTIONS, RunConfig

    config = RunConfig()
    numeric = {f"{name}.{f.name}" for name in SECTIONS
               for f in dataclasses.fields(getattr(config, name))
               if type(getattr(getattr(config, name), f.name)) in (int, float)}
    assert numeric == set(LIMITS)
