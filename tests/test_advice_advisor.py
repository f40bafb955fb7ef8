"""The whole advisor on the real demo (MNIST digits) with mobilenet_v2's offline weights."""

import threading

import pytest

from workbench.advice.advisor import AdviceReport, iter_advice, stratified_sample
from workbench.advice.events import AdviceProgress
from workbench.advice.matrix import CELLS
from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.errors import UserError


def _config(sample=64):
    config = RunConfig()
    config.model.backbone = "mobilenet_v2"
    config.advice.sample_size = sample
    config.train.device = "cpu"
    return config


@pytest.fixture(scope="module")
def demo_report(demo_root):
    from workbench.data.scan import open_dataset

    index = open_dataset(demo_root)
    events = list(iter_advice(index, _config(), input_size=64))  # 64 px keeps it quick
    return index, events


def test_demo_lands_in_a_dissimilar_cell_with_its_numbers(demo_root, demo_report):
    from workbench.data.stats import dataset_stats

    index, events = demo_report
    report = events[-1]
    assert isinstance(report, AdviceReport)
    ipc = dataset_stats(index).images_per_class
    assert report.images_per_class == ipc
    size = "small" if ipc["median"] < 100 else "large"
    # handwritten digits are far from ImageNet's photos: well above the similarity threshold
    assert report.cell == f"dissimilar-{size}" and report.cell in CELLS
    assert report.similarity["bn_divergence"] > 2 * RunConfig().advice.similarity_threshold
    assert report.num_stages == len(report.bn_profile.per_stage) > 1
    assert report.sample["images"] == 64 and report.sample["classes"] == index.num_classes
    assert report.sample["input_size"] == 64


def test_progress_covers_the_feature_pass_and_the_probe(demo_report):
    _, events = demo_report
    progress = [e for e in events if isinstance(e, AdviceProgress)]
    # the similarity pass and its probe, then the trials' own pass and probes, then the quick
    # fine-tuning trial (at the trials' own size here: the images alone are loaded again)
    assert {e.stage for e in progress} == {"features", "probe", "trial features", "probes",
                                           "trial images", "trial: fine-tune all, one LR"}
    features = [e for e in progress if e.stage == "features"]
    assert features[-1].done == features[-1].total == 2  # 64 images in batches of 32


def test_report_json_follows_the_cli_contract(demo_report):
    report = demo_report[1][-1]
    data = report.to_json()
    assert set(data["images_per_class"]) == {"min", "median", "max"}
    assert {"bn_divergence", "nce", "leep", "probe_best_acc"} <= set(data["similarity"])
    assert data["similarity"]["nce"] <= 0 and data["similarity"]["leep"] <= 0
    # the recommendation (the measured pick, else the cell) decides the settings
    assert data["freeze_stages"] == report.freeze_stages == data["recommended"]["freeze_stages"]
    assert data["strategy_detail"]["feature_stage"] == data["recommended"]["feature_stage"]
    assert data["strategy_detail"]["input_size"] == data["recommended"]["input_size"] == 64
    assert data["trials"] and data["textbook"]["cell"] == data["cell"]
    assert data["num_stages"] == report.num_stages
    assert isinstance(data["strategy"], str) and data["cell"] in CELLS
    table = data["probe"]["table"]
    assert {row["pooling"] for row in table} == {"gap", "grid2x2"}
    # digits are learnable from frozen ImageNet features: far above chance (10 classes)
    assert data["probe"]["best"]["accuracy"] > 0.3


def test_one_class_dataset_is_a_user_error(tmp_path):
    index = DatasetIndex(root=tmp_path, source="folder", class_names=["cat"],
                         paths=[str(tmp_path / f"{i}.png") for i in range(4)],
                         labels=[0] * 4, splits=["train"] * 4)
    with pytest.raises(UserError, match="two classes"):
        next(iter_advice(index, _config()))


def test_random_weights_are_a_user_error(demo_root):
    from workbench.data.scan import open_dataset

    config = _config()
    config.model.weights = "random"
    with pytest.raises(UserError, match="pretrained weights"):
        next(iter_advice(open_dataset(demo_root), config))


def test_stop_ends_without_a_report(demo_root):
    from workbench.data.scan import open_dataset

    stop = threading.Event()
    stop.set()
    events = list(iter_advice(open_dataset(demo_root), _config(), stop=stop))
    assert not any(isinstance(e, AdviceReport) for e in events)


def test_stratified_sample_keeps_tail_classes_and_is_seeded():
    labels = [0] * 900 + [1] * 90 + [2] * 10
    picked = stratified_sample(labels, 100, seed=1)
    got = [labels[i] for i in picked]
    assert len(picked) == 100 and len(set(picked)) == 100
    assert got.count(2) >= 3 and got.count(0) > got.count(1) > got.count(2)
    assert stratified_sample(labels, 100, seed=1) == picked
    assert stratified_sample(labels, 5000) == list(range(1000))


def test_missing_weights_offline_is_a_user_error(demo_root, monkeypatch):
    from workbench.data.scan import open_dataset
    from workbench.models import weights

    # resnet18's weights are not on this machine; pretend there is no network either
    monkeypatch.setattr(weights, "weights_cached", lambda w: False)
    monkeypatch.setattr(weights, "network_available", lambda url, timeout=2.0: False)
    config = _config()
    config.model.backbone = "resnet18"
    with pytest.raises(UserError, match="no network"):
        next(iter_advice(open_dataset(demo_root), config))


def test_without_bn_statistics_the_users_cell_is_kept():
    import numpy as np

    from workbench.advice.advisor import FeaturePass, _report
    from workbench.advice.probe import run_probe
    from workbench.advice.similarity import unavailable

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 6)
    features = {(0, "gap"): rng.normal(size=(12, 4)) + labels[:, None]}
    passed = FeaturePass(bn=unavailable("LayerNorm"), features=features,
                         logits=rng.normal(size=(12, 1000)), labels=labels, skipped=0)

    class FakeModel:  # a LayerNorm backbone cut into 4 stages
        num_stages, stage_names = 4, ["s0", "s1", "s2", "s3"]

    config = _config()
    config.model.freeze_stages, config.model.head = 4, "logreg"
    report = _report(FakeModel(), config, {"min": 5.0, "median": 6.0, "max": 6.0}, passed,
                     run_probe(features, labels), 1.0)
    assert report.cell == "dissimilar-small" and report.cell_source == "your settings"
    assert report.similarity["bn_divergence"] is None
    assert "not available for LayerNorm" in report.to_json()["bn_divergence"]["message"]
