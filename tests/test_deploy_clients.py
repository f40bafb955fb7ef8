"""Exported models used the way their users will: plain clients in a fresh interpreter that know
nothing of this project, follow the export's metadata (`model.json`, the ONNX metadata,
TorchScript's extra file) or the model card's snippet literally, and must name the same class as
`workbench predict` for every real demo image. Before this, the torchvision `model.json` said
the normalization was inside the model, and a client that believed it got 4-5 of 20 right."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_runs import DeployRuns, trained_runs
from workbench.cli import main
from workbench.deploy.export import card_path, export_model
from workbench.train.trained import load_trained

FORMATS = ("onnx", "torchscript", "torchvision")

# Reads the metadata of the file it is given and applies `preprocessing.steps` one by one, in
# order, with torchvision's building blocks; imports nothing from this project.
METADATA_CLIENT = r'''
import json, sys
import torch
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode, v2

def maybe_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return text

path, images = sys.argv[1], sys.argv[2:]
if path.endswith(".onnx"):
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    info = {k: maybe_json(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    model = lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
elif info_file := (path.endswith(".pth") and path.rsplit("/", 1)[0] + "/model.json"):
    import torchvision
    info = json.load(open(info_file, encoding="utf-8"))
    model = torchvision.models.get_model(info["backbone"], **info["builder_kwargs"]).eval()
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
else:
    extra = {"model.json": ""}
    model = torch.jit.load(path, _extra_files=extra).eval()
    info = json.loads(extra["model.json"])

def to_rgb(image, step):
    if step["exif_transpose"]:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return image.convert("RGB")

def step_function(step):
    op = step["op"]
    if op == "to_rgb":
        return lambda image: to_rgb(image, step)
    if op == "resize":
        return v2.Resize(step["shorter_side"], antialias=step["antialias"],
                         interpolation=InterpolationMode(step["interpolation"]))
    if op == "center_crop":
        return v2.CenterCrop(step["size"])
    if op == "to_float":
        assert step["layout"] == "CHW" and step["divide_by"] == 255
        return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    if op == "normalize":
        return v2.Normalize(mean=step["mean"], std=step["std"])
    raise SystemExit(f"unknown step {op}")

steps = [step_function(s) for s in info["preprocessing"]["steps"]]
batch = []
for file in images:
    x = Image.open(file)
    for step in steps:
        x = step(x)
    batch.append(x)
with torch.no_grad():
    logits = model(torch.stack(batch))
print(json.dumps({"labels": [info["class_names"][i] for i in logits.argmax(1).tolist()],
                  "ours": sorted(m for m in sys.modules if m.startswith("workbench"))}))
'''


@pytest.fixture(scope="session")
def runs(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DeployRuns:
    return trained_runs(demo_root, tmp_path_factory.mktemp("deploy"))


@pytest.fixture(scope="module")
def exported(runs: DeployRuns, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The linear run in each format: ONNX and TorchScript into one folder, torchvision into
    its own (it brings a model.json)."""
    trained = load_trained(runs.linear)
    both = tmp_path_factory.mktemp("exports")
    return {"onnx": export_model(trained, "onnx", both),
            "torchscript": export_model(trained, "torchscript", both),
            "torchvision": export_model(trained, "torchvision", both / "torchvision")}


@pytest.fixture(scope="module")
def predicted(runs: DeployRuns) -> list[str]:
    """`workbench predict`'s top-1 for every validation image of the slice."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main(["predict", str(runs.linear), str(runs.data / "val"), "--json"]) == 0
    records = json.loads(out.getvalue())
    assert [r["path"] for r in records] == [str(p) for p in runs.val_images]
    return [r["top"][0]["label"] for r in records]


def run_client(script: str, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_client_following_the_metadata_gets_predicts_classes(
        fmt: str, exported: dict[str, Path], runs: DeployRuns, predicted: list[str]) -> None:
    done = run_client(METADATA_CLIENT, exported[fmt], *runs.val_images, cwd=exported[fmt].parent)
    report = json.loads(done.stdout)
    assert report["ours"] == []
    assert report["labels"] == predicted


def test_the_torchvision_metadata_says_the_client_normalizes(exported: dict[str, Path]) -> None:
    info = json.loads((exported["torchvision"].parent / "model.json").read_text("utf-8"))
    assert info["normalization_inside_model"] is False
    assert [s["op"] for s in info["preprocessing"]["steps"]][-1] == "normalize"
    assert "does NOT normalize" in info["input"]
    assert "v2.Normalize(mean=[0.485, 0.456, 0.406]" in info["preprocessing"]["torchvision"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cards_snippet_runs_as_written(fmt: str, exported: dict[str, Path],
                                           runs: DeployRuns, predicted: list[str]) -> None:
    card = card_path(exported[fmt]).read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1)
    done = run_client(snippet, *runs.val_images, cwd=exported[fmt].parent)
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert [path for path, _ in lines] == [str(p) for p in runs.val_images]
    assert [label for _, label in lines] == predicted


def test_each_format_keeps_its_own_card(exported: dict[str, Path]) -> None:
    folder = exported["onnx"].parent
    assert exported["torchscript"].parent == folder
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
        "MODEL_CARD-model.onnx.md", "MODEL_CARD-model.torchscript.pt.md", "model.onnx",
        "model.torchscript.pt"]
    onnx_card = card_path(exported["onnx"]).read_text(encoding="utf-8")
    script_card = card_path(exported["torchscript"]).read_text(encoding="utf-8")
    assert "## How to use (onnx)" in onnx_card and "onnxruntime" in onnx_card
    assert "## How to use (torchscript)" in script_card and "torch.jit.load" in script_card
    assert "| onnxruntime |" in onnx_card and "| onnxruntime |" not in script_card
