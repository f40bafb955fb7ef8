"""Long-tail training options (logit-adjusted loss, LDAM-DRW, cRT) and label corrections."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from tests.builders import make_tiny_dataset, tiny_config
from workbench.config import RunConfig, TrainConfig, load_config, save_config
from workbench.data.corrections import (
    Correction,
    add_correction,
    read_corrections,
    remove_correction,
)
from workbench.data.scan import open_dataset
from workbench.errors import UserError
from workbench.train.engine import Trainer
from workbench.train.events import EvalDone, Finished
from workbench.train.losses import LDAMLoss, LogitAdjustedLoss, build_criterion
from workbench.train.predictions import stored_predictions


def test_logit_adjusted_loss_by_hand() -> None:
    loss = LogitAdjustedLoss([30, 10], tau=1.0)
    logits, target = torch.tensor([[1.0, 2.0]]), torch.tensor([1])
    z = [1.0 + math.log(0.75), 2.0 + math.log(0.25)]
    expected = -(z[1] - math.log(math.exp(z[0]) + math.exp(z[1])))
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    plain = LogitAdjustedLoss([30, 10], tau=0.0)(logits, target)
    assert plain.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item())


def test_ldam_margins_and_deferred_reweighting_by_hand() -> None:
    loss = LDAMLoss([16, 1], max_margin=0.5, drw_start=0.5)
    # margins proportional to n^(-1/4): 1/2 and 1, scaled so the largest is 0.5
    assert loss.margins.tolist() == pytest.approx([0.25, 0.5])
    logits, target = torch.tensor([[2.0, 1.0], [0.0, 0.0]]), torch.tensor([0, 1])

    def ce(z: list[float], y: int) -> float:
        return -(z[y] - math.log(sum(math.exp(v) for v in z)))

    rows = [ce([1.75, 1.0], 0), ce([0.0, -0.5], 1)]
    loss.set_epoch(1, 4)
    assert not loss.reweighting
    assert loss(logits, target).item() == pytest.approx(sum(rows) / 2, rel=1e-6)
    loss.set_epoch(3, 4)  # past half of 4 epochs: effective-number weights (beta 0.9999)
    w = [(1 - 0.9999) / (1 - 0.9999 ** n) for n in (16, 1)]
    w = [v / (sum(w) / 2) for v in w]
    expected = (w[0] * rows[0] + w[1] * rows[1]) / (w[0] + w[1])
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_loss_choice_is_in_the_config_and_validated(tmp_path: Path) -> None:
    config = RunConfig()
    config.train.loss, config.train.loss_tau, config.train.crt_epochs = "ldam_drw", 1.5, 4
    loaded = load_config(save_config(config, tmp_path / "run.toml"))
    assert (loaded.train.loss, loaded.train.loss_tau, loaded.train.crt_epochs) == (
        "ldam_drw", 1.5, 4)
    assert isinstance(build_criterion(loaded.train, [5, 1], None), LDAMLoss)
    with pytest.raises(UserError, match="train.loss"):
        TrainConfig(loss="focal").validate()
    with pytest.raises(UserError, match="train.loss_tau"):
        TrainConfig(loss_tau=-1.0).validate()


@pytest.mark.parametrize("loss", ["logit_adjusted", "ldam_drw"])
def test_training_with_a_long_tail_loss_and_crt(tmp_path: Path, loss: str) -> None:
    root = make_tiny_dataset(tmp_path / "data", train=6, val=2)
    config = tiny_config(root, tmp_path / "runs", epochs=2, limit_train_batches=1, loss=loss,
                         crt_epochs=2)
    events = list(Trainer(config).run())
    assert isinstance(events[-1], Finished), events[-1]
    # one evaluation per epoch, and one more after the classifier was re-trained
    assert sum(isinstance(e, EvalDone) for e in events) == 3
    assert ("val", "last") in stored_predictions(events[-1].run_dir)


def test_corrections_round_trip_and_apply(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data", train=4, val=2)
    before = sorted(str(p) for p in root.rglob("*"))
    file = tmp_path / "run" / "corrections.csv"
    moved = str(root / "train" / "class_0" / "1.png")
    add_correction(file, Correction(moved, "relabel", "class_2"))
    add_correction(file, Correction("train/class_1/0.png", "exclude"))  # relative to the root
    add_correction(file, Correction(str(root / "nowhere.png"), "exclude"))
    add_correction(file, Correction(str(root / "val" / "class_1" / "0.png"), "relabel", "cat"))
    assert len(read_corrections(file)) == 4
    index = open_dataset(root, corrections=file)
    assert index.corrected == {"relabel": 1, "exclude": 1}
    assert len(index) == 3 * 6 - 1
    assert index.class_names[index.labels[index.paths.index(moved)]] == "class_2"
    bad = [p for p in index.problems if p.kind == "bad_correction"]
    assert {p.detail for p in bad} == {"not an image of this dataset",
                                       "no class 'cat' in this dataset"}
    assert sorted(str(p) for p in root.rglob("*")) == before  # nothing written into the data
    remove_correction(file, moved)
    assert open_dataset(root, corrections=file).corrected == {"exclude": 1}


def test_corrections_in_the_config_reach_training(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data", train=4, val=2)
    file = add_correction(tmp_path / "fix.csv",
                          Correction(str(root / "train" / "class_0" / "0.png"), "exclude"))
    assert file
    config = tiny_config(root, tmp_path / "runs", limit_train_batches=1)
    config.data.corrections = str(tmp_path / "fix.csv")
    events = list(Trainer(config).run())
    assert events[0].num_train == 11


def test_bad_corrections_file_is_one_readable_line(tmp_path: Path) -> None:
    file = tmp_path / "c.csv"
    file.write_text("path,action,label\nx.png,rename,cat\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2: the action must be relabel or exclude"):
        read_corrections(file)
    assert read_corrections(tmp_path / "missing.csv") == []
    assert not os.path.exists(tmp_path / "missing.csv")


def test_the_plan_warns_about_long_tail_options_that_do_not_apply(tmp_path: Path) -> None:
    from workbench.plan import plan_run

    root = make_tiny_dataset(tmp_path / "data", train=4, val=2)
    index = open_dataset(root)

    def warnings(head: str = "linear", **train: object) -> str:
        config = tiny_config(root, tmp_path / "runs", **train)
        config.model.head = head
        config.data.loss_weighting = "inverse"
        return " ".join(plan_run(config, index).warnings)

    assert "train.loss and cRT are not used" in warnings("logreg", crt_epochs=3)
    assert "data.loss_weighting is not used" in warnings(loss="ldam_drw")
    assert "the tail is favoured twice" in warnings(loss="logit_adjusted")
    assert "favoured twice" not in warnings()
