"""`workbench predict`: the run's own preprocessing and classifier, top-k per image, unreadable
files skipped, readable errors for what is not a usable run."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.deploy_runs import DeployRuns, trained_runs
from workbench.cli import main
from workbench.data.images import load_image
from workbench.train.trained import load_trained


@pytest.fixture(scope="session")
def runs(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DeployRuns:
    return trained_runs(demo_root, tmp_path_factory.mktemp("deploy"))


def predict(capsys, *argv: object) -> tuple[int, str, str]:
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_gives_top_k_per_image_as_the_classifier_says(capsys, runs: DeployRuns) -> None:
    code, out, _ = predict(capsys, runs.linear, runs.data / "val", "--top-k", 3, "--json")
    assert code == 0
    records = json.loads(out)
    images = runs.val_images
    assert [r["path"] for r in records] == [str(p) for p in images]
    trained = load_trained(runs.linear)
    batch = torch.stack([trained.transform()(load_image(p)) for p in images])
    with torch.no_grad():
        probs = torch.softmax(trained.classifier(batch), dim=1)
    for record, row in zip(records, probs, strict=True):
        assert [set(t) for t in record["top"]] == [{"label", "prob"}] * 3
        expected = row.topk(3)
        assert [t["label"] for t in record["top"]] == [trained.class_names[i]
                                                       for i in expected.indices]
        assert [t["prob"] for t in record["top"]] == pytest.approx(expected.values.tolist(),
                                                                    abs=1e-5)


def test_unreadable_files_are_reported_and_skipped(capsys, runs: DeployRuns,
                                                   tmp_path: Path) -> None:
    good = runs.val_images[0]
    (tmp_path / "notes.png").write_text("not an image", encoding="utf-8")
    code, out, err = predict(capsys, runs.logreg, good, tmp_path, tmp_path / "missing.jpg",
                             "--json")
    assert code == 0
    assert [r["path"] for r in json.loads(out)] == [str(good)]
    assert "notes.png" in err and "missing.jpg" in err
    assert "Traceback" not in err
    assert "\r" not in err and "img/s" not in err  # no progress bar off a terminal


def test_nothing_readable_exits_2_with_one_line(capsys, runs: DeployRuns, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    code, out, err = predict(capsys, runs.linear, tmp_path)
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith("workbench: no image could be classified")


def test_csv_has_a_row_per_image(capsys, runs: DeployRuns, tmp_path: Path) -> None:
    target = tmp_path / "predictions.csv"
    code, out, _ = predict(capsys, runs.linear, *runs.val_images[:4], "--top-k", 2,
                           "--csv", target)
    assert code == 0 and out.strip().splitlines()[-1] == str(target)
    rows = list(csv.reader(target.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["path", "label1", "prob1", "label2", "prob2"]
    assert [r[0] for r in rows[1:]] == [str(p) for p in runs.val_images[:4]]
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_an_unwritable_csv_is_refused_before_any_work(capsys, runs: DeployRuns,
                                                      tmp_path: Path) -> None:
    code, _, err = predict(capsys, runs.linear, runs.val_images[0], "--csv",
                           tmp_path / "no" / "such" / "folder.csv")
    assert code == 2 and "cannot write" in err


def test_a_run_without_checkpoint_is_a_readable_error(capsys, runs: DeployRuns,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "unfinished"
    folder.mkdir()
    shutil.copy2(runs.linear / "config.toml", folder / "config.toml")
    code, _, err = predict(capsys, folder, runs.val_images[0])
    assert code == 2 and "no best.pt checkpoint" in err
    code, _, err = predict(capsys, tmp_path / "nowhere", runs.val_images[0])
    assert code == 2 and "not a run folder" in err


def test_a_checkpoint_that_does_not_fit_its_config_is_refused(capsys, runs: DeployRuns,
                                                              tmp_path: Path) -> None:
    copy = Path(shutil.copytree(runs.linear, tmp_path / "edited"))
    config = copy / "config.toml"
    config.write_text(config.read_text().replace('head = "linear"', 'head = "logreg"'))
    code, _, err = predict(capsys, copy, runs.val_images[0])
    assert code == 2 and "has no fitted logreg head" in err
    config.write_text(config.read_text().replace('backbone = "mobilenet_v2"',
                                                 'backbone = "mobilenet_v3_small"')
                      .replace('head = "logreg"', 'head = "linear"'))
    code, _, err = predict(capsys, copy, runs.val_images[0])
    assert code == 2 and "does not fit the run's model" in err


@pytest.mark.parametrize(("device", "problem"), [("gpu0", "is not a device name"),
                                                 ("cuda:9", "is not available on this machine")])
def test_a_device_that_is_not_one_or_not_here_is_one_line(capsys, runs: DeployRuns, device: str,
                                                          problem: str) -> None:
    code, out, err = predict(capsys, runs.linear, runs.val_images[0], "--device", device)
    assert code == 2 and out == "" and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"workbench: --device {device!r}" if device == "gpu0" else
                           f"workbench: --device {device}")
    assert problem in line and "here: auto, cpu" in line


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_cpu_and_auto_classify(capsys, runs: DeployRuns, device: str) -> None:
    code, out, _ = predict(capsys, runs.linear, runs.val_images[0], "--device", device)
    assert code == 0 and out.startswith(str(runs.val_images[0]))
