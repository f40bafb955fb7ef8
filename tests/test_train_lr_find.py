"""The LR range test: its arithmetic on hand-computed curves, a real run, and the CLI."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.cli import main
from workbench.config import RunConfig
from workbench.data.scan import open_dataset
from workbench.errors import UserError
from workbench.plan import plan_run
from workbench.train.lr_find import (
    LrFindProgress,
    LrFindResult,
    diverged,
    iter_lr_find,
    lr_schedule,
    result_of,
    smooth,
    suggest,
)

# -- the arithmetic ------------------------------------------------------------------------------


def test_the_schedule_grows_exponentially_between_its_ends():
    lrs = lr_schedule(5, 1e-4, 1.0)
    assert np.allclose(lrs, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert len(lr_schedule(100)) == 100 and lr_schedule(100)[0] == 1e-7
    assert np.isclose(lr_schedule(100)[-1], 10.0)
    with pytest.raises(UserError, match="at least 2 steps"):
        lr_schedule(1)
    with pytest.raises(UserError, match="0 < start"):
        lr_schedule(10, 1.0, 0.1)


def test_smoothing_is_fastais_bias_corrected_moving_average():
    # by hand, beta 0.98: a1 = 0.02 -> 0.02 / 0.02 = 1; a2 = 0.98 * 0.02 + 0.02 * 2 = 0.0596,
    # corrected by 1 - 0.98^2 = 0.0396 -> 1.50505...
    assert np.allclose(smooth([1.0, 2.0]), [1.0, 0.0596 / 0.0396])
    assert np.allclose(smooth([3.0, 3.0, 3.0]), [3.0, 3.0, 3.0])  # a flat curve stays flat


def test_suggestion_is_the_minimums_lr_over_ten_and_steepest_is_reported():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    losses = [2.0, 1.2, 1.0, 0.9, 3.0]
    suggested, minimum, steepest = suggest(lrs, losses, skip_start=0)
    assert minimum == 1e-1 and suggested == pytest.approx(1e-2)
    # slopes per decade up to the minimum (np.gradient): -0.8, -0.5, -0.15, -0.1
    assert steepest == 1e-4
    # skipping the first reading (the moving average settling): slopes -0.2, -0.15 before the
    # minimum (central differences, the minimum's neighbour included)
    assert suggest(lrs, losses, skip_start=1)[2] == 1e-3
    # the steepest fall into the minimum counts at the reading before it, not at the minimum
    assert suggest(lrs, [2.0, 1.9, 1.8, 0.5, 3.0], skip_start=0)[2] == 1e-2
    # too few readings past the skipped ones: no steepest descent; the suggestion is clipped
    # to train.lr's limits (1e-6 at least)
    assert suggest(lrs, losses)[2] is None
    assert suggest([1e-7, 1e-6, 1e-5], [1.0, 2.0, 9.0]) == (1e-6, 1e-7, None)


def test_divergence_is_four_times_the_minimum_or_not_finite():
    assert not diverged(3.9, 1.0) and diverged(4.1, 1.0)
    assert diverged(float("nan"), 1.0) and diverged(float("inf"), 1.0)


def test_a_result_knows_when_it_stopped_early(tmp_path):
    full = result_of([1e-3, 1e-2, 1e-1], [2.0, 1.0, 1.5], planned=3)
    assert not full.stopped_early and full.rule == "minimum / 10"
    early = result_of([1e-3, 1e-2], [2.0, 1.0], planned=100)
    assert early.stopped_early
    rows = early.write_csv(tmp_path / "curve.csv").read_text().splitlines()
    assert rows[0] == "lr,loss,raw_loss" and len(rows) == 3
    assert json.loads(json.dumps(early.to_json()))["suggested_lr"] == early.suggested


# -- a real range test on the demo ---------------------------------------------------------------


@pytest.fixture(scope="module")
def index(demo_root):
    return open_dataset(demo_root)


def _config(demo_root: Path, **model) -> RunConfig:
    config = RunConfig()
    config.data.path, config.data.input_size, config.data.num_workers = str(demo_root), 32, 0
    config.model.weights = "random"
    config.train.device, config.train.batch_size = "cpu", 8
    for key, value in model.items():
        setattr(config.model, key, value)
    return config.validate()


def test_range_test_restores_the_model_bit_for_bit_and_the_random_state(demo_root, index):
    config = _config(demo_root)
    plan = plan_run(config, index)
    model = plan.build_model()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    events = list(iter_lr_find(config, index, plan=plan, model=model, steps=6,
                               start_lr=1e-4, end_lr=1.0))
    progress = [e for e in events if isinstance(e, LrFindProgress)]
    result = events[-1]
    assert isinstance(result, LrFindResult) and len(result.lrs) == len(progress) >= 2
    assert [p.step for p in progress] == list(range(1, len(progress) + 1))
    assert result.lrs[0] == pytest.approx(1e-4) and all(np.isfinite(result.losses))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included
    assert not model.training
    assert torch.equal(rng, torch.random.get_rng_state())
    again = list(iter_lr_find(config, index, plan=plan, model=model, steps=6, start_lr=1e-4,
                              end_lr=1.0))[-1]
    assert again.raw_losses == result.raw_losses  # seeded: the same config, the same curve


def test_a_stopped_range_test_yields_no_result_and_restores(demo_root, index):
    config = _config(demo_root, freeze_stages=64)  # the fast-path plan: only the head moves
    plan = plan_run(config, index, fix=True)
    model = plan.build_model()
    before = {k: v.clone() for k, v in model.head.state_dict().items()}
    stop = threading.Event()
    events = []
    for event in iter_lr_find(plan.config, index, plan=plan, model=model, steps=50, stop=stop):
        events.append(event)
        if len(events) == 2:
            stop.set()
    assert len(events) == 2 and not any(isinstance(e, LrFindResult) for e in events)
    assert all(torch.equal(before[k], v) for k, v in model.head.state_dict().items())


def test_a_scikit_learn_head_has_no_learning_rate_to_find(demo_root, index):
    config = _config(demo_root, head="logreg", freeze_stages=64)
    with pytest.raises(UserError, match="no learning rate to find"):
        next(iter_lr_find(config, index, plan=plan_run(config, index, fix=True)))


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_prints_the_suggestion_last_and_writes_the_curve(demo_root, tmp_path, capsys):
    args = ["lr-find", str(demo_root), "--input-size", "32", "--weights", "random",
            "--batch-size", "8", "--steps", "4", "--start-lr", "1e-3", "--end-lr", "1",
            "--set", "data.num_workers=0", "--set", "train.device=cpu"]
    assert main([*args, "--csv", str(tmp_path / "lr.csv")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2] == "suggested learning rate (minimum / 10):"
    assert 1e-6 <= float(out[-1]) <= 0.1
    assert (tmp_path / "lr.csv").read_text().startswith("lr,loss,raw_loss\n")
    assert main([*args, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert {"suggested_lr", "rule", "min_loss_lr", "steepest_lr", "lrs", "losses"} <= set(found)


def _exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own errors exit through the one-line parser
        return int(exc.code)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert _exit_code(["lr-find"]) == 2
    assert _exit_code(["lr-find", str(tmp_path / "missing")]) == 2
    assert _exit_code(["lr-find", str(tmp_path), "--steps", "1"]) == 2
    for line in capsys.readouterr().err.strip().splitlines():
        assert line.startswith("workbench: ")
