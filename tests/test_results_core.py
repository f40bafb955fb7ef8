"""Evaluation of finished runs: stored predictions, metrics against a direct computation, the
CLI, calibration, post-hoc logit adjustment, and what happens with stale or partial input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support

from tests.builders import make_config, make_tiny_dataset, tiny_config
from workbench.config import RunConfig
from workbench.data.scan import open_dataset
from workbench.data.torch_dataset import ImageDataset
from workbench.errors import UserError
from workbench.results.calibration import reliability
from workbench.results.evaluate import evaluate_run, iter_evaluate
from workbench.results.logit_adjust import adjusted_metrics, best_tau
from workbench.train.engine import Trainer
from workbench.train.events import Finished
from workbench.train.predictions import load_predictions, stored_predictions
from workbench.train.trained import load_trained


def demo_config(root: Path, out: Path) -> RunConfig:
    """digits-lt on a frozen ImageNet mobilenet_v2 at 32 px: the cached-features fast path."""
    return make_config(root, out, {"data.input_size": 32, "data.num_workers": 0,
                                   "model.weights": "IMAGENET1K_V1", "model.freeze_stages": 5,
                                   "train.epochs": 3, "train.batch_size": 64, "train.lr": 0.05})


VAL_PER_CLASS = 30


@pytest.fixture(scope="session")
def demo_lt(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits-lt as a CSV manifest: its whole long-tailed train split, 30 val images a class."""
    rows = ["path,label,split"]
    for split, per_class in (("train", None), ("val", VAL_PER_CLASS)):
        for folder in sorted((demo_root / split).iterdir()):
            for image in sorted(folder.iterdir())[:per_class]:
                rows.append(f"{image},{folder.name},{split}")
    manifest = tmp_path_factory.mktemp("digits-lt") / "digits-lt.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


@pytest.fixture(scope="session")
def demo_run(demo_lt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run on the long-tailed demo (a few seconds on 2 cores)."""
    last = list(Trainer(demo_config(demo_lt, tmp_path_factory.mktemp("runs"))).run())[-1]
    assert isinstance(last, Finished), last
    return Path(last.run_dir)


def test_training_stores_val_predictions(demo_run: Path) -> None:
    assert set(stored_predictions(demo_run)) >= {("val", "last")}
    preds = load_predictions(demo_run, "val", "last")
    assert preds.logits.shape == (300, 10) and len(preds.paths) == 300
    assert preds.train_counts[0] == 400 and preds.train_counts[9] == 8
    assert all(Path(p).is_file() for p in preds.paths[:5])


def test_evaluation_matches_a_direct_computation(demo_run: Path) -> None:
    result = evaluate_run(demo_run, "val", "last")
    trained = load_trained(demo_run, "last")
    index = open_dataset(trained.plan.config.data.path)
    data = ImageDataset(index, index.indices("val"), trained.transform())
    with torch.no_grad():
        logits = trained.classifier(torch.stack([data[i][0] for i in range(len(data))])).numpy()
    y = np.array(data.targets)
    y_pred = logits.argmax(1)
    assert np.allclose(result.predictions.logits, logits, atol=1e-4)
    assert result.metrics.balanced_acc == pytest.approx(balanced_accuracy_score(y, y_pred))
    precision, recall, f1, support = precision_recall_fscore_support(y, y_pred, zero_division=0)
    assert result.recall == pytest.approx(list(recall))
    assert result.support == list(support)
    assert [p or 0.0 for p in result.precision] == pytest.approx(list(precision))
    assert [f or 0.0 for f in result.f1] == pytest.approx(list(f1))
    probs = torch.softmax(torch.from_numpy(logits).double(), 1).numpy()
    conf, hit = probs.max(1), (y_pred == y)
    bins = np.minimum((conf * 15).astype(int), 14)
    ece = sum(abs(hit[bins == b].sum() - conf[bins == b].sum()) for b in range(15)) / len(y)
    assert result.calibration.ece == pytest.approx(ece, abs=1e-6)
    top = result.top_losses(3)
    assert top[0]["loss"] >= top[1]["loss"] >= top[2]["loss"]
    assert top[0]["path"] == result.predictions.paths[top[0]["row"]]


def test_cli_evaluate_json(demo_run: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "workbench", "evaluate", str(demo_run),
                          "--checkpoint", "last", "--tau", "1", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["num_images"] == 300 and len(report["per_class"]) == 10
    assert set(report["shot_accuracy"]) == {"many", "medium", "few"}
    assert len(report["confusion"]["matrix"]) == 10 and 0 <= report["calibration"]["ece"] <= 1
    assert all(Path(row["path"]).is_file() for row in report["top_losses"])
    assert report["logit_adjustment"]["tau"] == 1.0


def test_logit_adjustment_tau_zero_is_identity_and_lifts_the_tail(demo_run: Path) -> None:
    preds = load_predictions(demo_run, "val", "last")
    plain = evaluate_run(demo_run, "val", "last").metrics
    same = adjusted_metrics(preds, 0.0)
    assert same.per_class_acc == plain.per_class_acc and same.loss == pytest.approx(plain.loss)
    adjusted = adjusted_metrics(preds, 1.0)
    assert adjusted.shot_acc["few"] > plain.shot_acc["few"]
    assert adjusted.balanced_acc > plain.balanced_acc
    tau, acc = best_tau(preds)
    assert tau > 0 and acc >= adjusted.balanced_acc


def test_run_without_predictions_is_evaluated_on_demand(demo_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old-run"
    shutil.copytree(demo_run, old, ignore=shutil.ignore_patterns("predictions"))
    with pytest.raises(UserError, match="no stored val predictions"):
        load_predictions(old, "val", "best")
    gen = iter_evaluate(old, "val", "best")
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as end:
            result = end.value
            break
    assert progress[-1].done == progress[-1].total == 300
    assert result.metrics.num_images == 300
    assert ("val", "best") in stored_predictions(old)
    with pytest.raises(UserError, match="no test split"):
        evaluate_run(old, "test")


def test_renamed_class_is_left_out_with_a_note(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "data", train=4, val=2)
    last = list(Trainer(tiny_config(root, tmp_path / "runs", limit_train_batches=1)).run())[-1]
    assert isinstance(last, Finished)
    (root / "val" / "class_2").rename(root / "val" / "class_new")
    (root / "train" / "class_2").rename(root / "train" / "class_new")
    result = evaluate_run(last.run_dir, "val", "best", recompute=True)
    assert result.metrics.num_images == 4
    assert any("class_new" in note for note in result.predictions.notes)


def test_reliability_of_hand_made_probabilities() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 0, 1])
    rel = reliability(probs, labels, num_bins=10)
    # bin 0.9: confidence 0.9, accuracy 0.5; bin 0.6: 0.6 vs 1; bin 0.7: 0.7 vs 1
    assert rel.ece == pytest.approx((2 * 0.4 + 0.4 + 0.3) / 4)
    assert rel.count[9] == 2 and rel.accuracy[9] == pytest.approx(0.5)


def test_scikit_learn_head_predictions_match_a_recomputation(tmp_path: Path) -> None:
    """What `train --demo` trains (logistic regression on frozen features) is evaluated from
    its stored predictions exactly as by classifying the images again."""
    root = make_tiny_dataset(tmp_path / "data", train=6, val=3)
    config = tiny_config(root, tmp_path / "runs")
    config.model.head = "logreg"
    last = list(Trainer(config).run())[-1]
    assert isinstance(last, Finished), last
    stored = evaluate_run(last.run_dir, "val", "best")
    again = evaluate_run(last.run_dir, "val", "best", recompute=True)
    assert np.allclose(stored.predictions.logits, again.predictions.logits, atol=1e-4)
    assert stored.metrics.balanced_acc == again.metrics.balanced_acc
