"""`workbench export`: ONNX agrees with torch (onnxruntime), TorchScript loads without this
project, the torchvision state dict loads strictly into torchvision's own model, a model card is
written, and a failed export leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.deploy_runs import DeployRuns, trained_runs
from workbench.cli import main
from workbench.data.images import load_image
from workbench.deploy.predict import iter_predict
from workbench.train.trained import load_trained


@pytest.fixture(scope="session")
def runs(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DeployRuns:
    return trained_runs(demo_root, tmp_path_factory.mktemp("deploy"))


def export(capsys, run: Path, fmt: str, out: Path | None = None) -> tuple[int, str, str]:
    code = main(["export", str(run), "--format", fmt,
                 *(["--out", str(out)] if out is not None else [])])
    stdout, stderr = capsys.readouterr()
    return code, stdout, stderr


def pixels(trained, paths: list[Path]) -> torch.Tensor:
    """Images as an exported model takes them: resized and cropped, in [0, 1], not normalized."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return torch.stack([trained.transform()(load_image(p)) * std + mean for p in paths])


def reference_logits(trained, batch: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return trained.classifier((batch - mean) / std)


def test_onnx_gives_the_same_top1_and_logits_as_torch(capsys, runs: DeployRuns,
                                                      tmp_path: Path) -> None:
    import onnx
    import onnxruntime

    folder = tmp_path / "exported"  # a new name without an extension: a folder
    code, out, _ = export(capsys, runs.linear, "onnx", folder)
    assert code == 0
    path = Path(out.strip().splitlines()[-1])
    assert path == folder / "model.onnx" and path.is_file()
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    trained = load_trained(runs.linear)
    assert json.loads(meta["class_names"]) == trained.class_names
    assert json.loads(meta["input_size"]) == 32
    assert "balanced_acc" in json.loads(meta["metrics"])
    images = runs.val_images
    batch = pixels(trained, images)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": batch.numpy()})[0]
    single = session.run(None, {"image": batch[:1].numpy()})[0]  # the batch size is free
    expected = reference_logits(trained, batch).numpy()
    assert np.abs(got - expected).max() <= 1e-4
    assert np.abs(single - expected[:1]).max() <= 1e-4
    predicted = [p.label for b in iter_predict(trained, images) for p in b.predictions]
    assert [trained.class_names[i] for i in got.argmax(1)] == predicted
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD-model.onnx.md", "model.onnx"]


def test_torchscript_loads_with_torch_alone(capsys, runs: DeployRuns, tmp_path: Path) -> None:
    """A scikit-learn head on an inner stage exports too; the file runs in a fresh interpreter
    that never imports this project."""
    code, out, _ = export(capsys, runs.logreg, "torchscript", tmp_path / "m.pt")
    assert code == 0 and out.strip().splitlines()[-1] == str(tmp_path / "m.pt")
    trained = load_trained(runs.logreg)
    batch = pixels(trained, runs.val_images[:3])
    torch.save(batch, tmp_path / "batch.pt")
    script = (
        "import json, sys, torch\n"
        "extra = {'model.json': ''}\n"
        "model = torch.jit.load(sys.argv[1], _extra_files=extra)\n"
        "logits = model(torch.load(sys.argv[2], weights_only=True))\n"
        "torch.save(logits, sys.argv[3])\n"
        "print(json.dumps({'classes': json.loads(extra['model.json'])['class_names'],\n"
        "                  'ours': sorted(m for m in sys.modules if m.startswith(('workbench',"
        " 'ui')))}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.pt"),
                           str(tmp_path / "batch.pt"), str(tmp_path / "out.pt")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"classes": trained.class_names, "ours": []}
    logits = torch.load(tmp_path / "out.pt", weights_only=True)
    assert (logits - reference_logits(trained, batch)).abs().max() <= 1e-4


def test_torchvision_state_dict_loads_strictly(capsys, runs: DeployRuns) -> None:
    from torchvision.models import get_model

    code, out, _ = export(capsys, runs.linear, "torchvision")
    assert code == 0
    path = Path(out.strip().splitlines()[-1])
    assert path == runs.linear / "export" / "torchvision" / "model.pth"
    info = json.loads((path.parent / "model.json").read_text(encoding="utf-8"))
    trained = load_trained(runs.linear)
    assert info["class_names"] == trained.class_names and info["input_size"] == 32
    assert info["mean"] == pytest.approx([0.485, 0.456, 0.406])
    model = get_model("mobilenet_v2", num_classes=len(trained.class_names))
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    batch = pixels(trained, runs.val_images[:4])
    mean = torch.tensor(info["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(info["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model.eval()((batch - mean) / std)
    assert (logits - reference_logits(trained, batch)).abs().max() <= 1e-5


def test_model_card_describes_data_metrics_and_limits(runs: DeployRuns) -> None:
    card = (runs.linear / "export" / "torchvision" / "MODEL_CARD-model.pth.md").read_text(
        encoding="utf-8")
    for heading in ("## Model", "## Intended use", "## How to use (torchvision)", "## Data",
                    "## Metrics", "## Classes", "## Known limits", "## Licence", "## Versions",
                    "## Configuration"):
        assert heading in card
    assert "Balanced accuracy:" in card and "imbalance ratio" in card
    assert "| 9 | 8 | 5 | few |" in card  # digit 9: 8 training images in the slice, 5 val
    assert 'backbone = "mobilenet_v2"' in card
    assert "Few training images" in card
    assert "**The model does not normalize**" in card


def test_model_card_has_a_hugging_face_header_licence_and_versions(runs: DeployRuns) -> None:
    import torch
    import torchvision

    card = (runs.linear / "export" / "torchvision" / "MODEL_CARD-model.pth.md").read_text(
        encoding="utf-8")
    assert card.startswith("---\n")
    header_lines = card.split("---\n")[1].splitlines()
    # written as YAML whose values are JSON (a subset of YAML)
    header = {k: json.loads(v) for k, v in (line.split(": ", 1) for line in header_lines)}
    assert header["library_name"] == "pytorch"
    assert header["pipeline_tag"] == "image-classification"
    # torchvision's metadata states no licence for mobilenet_v2's ImageNet weights: say so
    assert header["license"] == "unknown"
    assert {"torchvision", "mobilenet_v2", "IMAGENET1K_V1"} <= set(header["tags"])
    assert "accuracy" in header["metrics"]
    assert "no licence for mobilenet_v2 IMAGENET1K_V1" in card
    assert f"| torch | {torch.__version__} |" in card
    assert f"| torchvision | {torchvision.__version__} |" in card
    assert "| workbench |" in card


def test_a_licence_from_the_weights_metadata_is_named() -> None:
    from types import SimpleNamespace

    from torchvision.models import ViT_B_16_Weights

    from workbench.deploy.provenance import weights_licence

    plan = SimpleNamespace(backbone="vit_b_16", weights_file=None,
                           pretrained_weights=ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1)
    licence = weights_licence(plan)
    assert licence.spdx == "other"
    assert licence.link == "https://github.com/facebookresearch/SWAG/blob/main/LICENSE"


def test_torchvision_refuses_a_head_on_an_inner_stage(capsys, runs: DeployRuns,
                                                      tmp_path: Path) -> None:
    code, out, err = export(capsys, runs.logreg, "torchvision", tmp_path)
    assert code == 2 and out == ""
    assert "use --format onnx or torchscript" in err
    assert list(tmp_path.iterdir()) == []


def test_weights_too_large_for_one_onnx_file_are_refused(capsys, runs: DeployRuns,
                                                          tmp_path: Path, monkeypatch) -> None:
    from workbench.deploy import export as export_module

    monkeypatch.setattr(export_module, "ONNX_MAX_BYTES", 1000)  # as a 2.5 GiB vit_h_14 would
    code, out, err = export(capsys, runs.linear, "onnx", tmp_path)
    assert code == 2 and out == ""
    assert "do not fit in one ONNX file" in err and "use --format torchscript" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_target_is_a_readable_error(capsys, runs: DeployRuns,
                                                  tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    code, _, err = export(capsys, runs.linear, "torchscript", blocker / "model.pt")
    assert code == 2 and "cannot write" in err


def test_an_interrupted_export_leaves_nothing_half_written(capsys, runs: DeployRuns,
                                                          tmp_path: Path, monkeypatch) -> None:
    """The file is written under a temporary name and checked before the rename: stop it
    during the check (as Ctrl-C would) and neither the model nor its temporary file remains."""
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.jit, "load", interrupted)
    code, out, _ = export(capsys, runs.linear, "torchscript", tmp_path)
    assert code == 130 and out == ""
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    # a process killed mid-write leaves its temporary file: the next export removes it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f".model.torchscript.pt.{dead}-0a1b2c3d.tmp").write_bytes(b"half a model")
    (tmp_path / f".MODEL_CARD-model.onnx.md.{dead}-99aabbcc.tmp").write_bytes(b"half a card")
    (tmp_path / f".notes.{dead}.tmp").write_bytes(b"another program's")  # not our naming: kept
    code, out, _ = export(capsys, runs.linear, "torchscript", tmp_path)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".notes.{dead}.tmp", "MODEL_CARD-model.torchscript.pt.md", "model.torchscript.pt"]


def test_json_names_the_file_its_card_and_the_preprocessing(capsys, runs: DeployRuns,
                                                            tmp_path: Path) -> None:
    code = main(["export", str(runs.linear), "--format", "torchvision", "--out", str(tmp_path),
                 "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    record = json.loads(out)  # one object, nothing else on stdout
    assert record["path"] == str(tmp_path / "model.pth")
    assert record["card"] == str(tmp_path / "MODEL_CARD-model.pth.md")
    assert Path(record["card"]).is_file() and Path(record["model_json"]).is_file()
    assert record["format"] == "torchvision" and record["input_size"] == 32
    assert record["classes"] == load_trained(runs.linear).class_names
    prep = record["preprocessing"]
    assert prep["normalization_inside_model"] is False
    assert (prep["resize"], prep["interpolation"]) == (37, "bilinear")
    assert prep["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert [s["op"] for s in prep["steps"]] == ["to_rgb", "resize", "center_crop", "to_float",
                                                "normalize"]
