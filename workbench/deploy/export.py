"""Export a finished run's model: ONNX, TorchScript, or a torchvision state dict.

ONNX and TorchScript take an RGB image batch `[N, 3, S, S]` of floats in [0, 1] (resized and
center-cropped as the metadata's `preprocessing` says) and return logits: the normalization is
inside the model, the batch size is free. The torchvision format is the model's own state dict
under torchvision's key names, with a `model.json` beside it; torchvision's architecture has no
normalization, so its client normalizes with `mean` and `std` (`model.json` says so).

Every export is written to a temporary file in the target folder, checked (onnxruntime,
`torch.jit.load`, a strict load into a fresh torchvision model, each against the run's classifier),
and only then renamed into place, so an interrupted or failed export leaves nothing half-written
(`files.atomic_write`). A model card named after the exported file is written beside it
(`card_path`), so exports of several formats into one folder each keep their own card.
"""

from __future__ import annotations

import json
import os
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.config import NormPolicy
from workbench.deploy.card import run_metrics, write_model_card
from workbench.deploy.files import atomic_write
from workbench.deploy.preprocess import format_preprocessing, input_words, preprocessing
from workbench.deploy.provenance import library_versions
from workbench.errors import UserError

__all__ = ["EXPORT_FORMATS", "ExportFormat", "NormalizedClassifier", "card_path",
           "export_model", "export_record", "model_info", "preprocessing",
           "torchvision_state_dict"]

CHECK_ATOL = 1e-3  # the self-check's tolerance on logits (exports agree to ~1e-5 in practice)
CHECK_BATCH = 2
ONNX_MAX_BYTES = 2**31 - 2**24  # protobuf's 2 GiB limit, less room for the graph and metadata


class ExportFormat(StrEnum):
    """What `workbench export --format` writes."""

    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    TORCHVISION = "torchvision"

    @property
    def normalization_inside(self) -> bool:
        """Whether the exported model normalizes its input itself (torchvision's does not)."""
        return self is not ExportFormat.TORCHVISION


EXPORT_FORMATS = tuple(ExportFormat)
DEFAULT_NAMES = {ExportFormat.ONNX: "model.onnx", ExportFormat.TORCHSCRIPT: "model.torchscript.pt",
                 ExportFormat.TORCHVISION: "torchvision/model.pth"}


class NormalizedClassifier(nn.Module):
    """The run's classifier with its input normalization in front: [0, 1] RGB in, logits out."""

    def __init__(self, classifier: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.classifier = classifier
        # not "mean" / "std": the ONNX exporter names op outputs so, and a clash can make an
        # invalid file (it does without the exporter's optimizer)
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of an image batch `[N, 3, S, S]` with values in [0, 1]."""
        return self.classifier((x - self.input_mean) / self.input_std)


def model_info(trained: Any, fmt: str = ExportFormat.ONNX) -> dict[str, Any]:
    """The facts an export in `fmt` carries: classes, input size, the preprocessing its client
    applies (flat `resize` / `interpolation` / `mean` / `std`, and `preprocessing` step by
    step), backbone, metrics and library versions."""
    fmt, plan = ExportFormat(fmt), trained.plan
    values = preprocessing(trained)
    return {
        "format": str(fmt), "run": Path(trained.run_dir).name,
        "checkpoint": trained.checkpoint.name, "backbone": plan.backbone,
        "head": str(plan.head), "class_names": trained.class_names,
        "num_classes": len(trained.class_names), **values,
        "normalization_inside_model": fmt.normalization_inside,
        "input": input_words(values, not fmt.normalization_inside),
        "preprocessing": format_preprocessing(values, fmt.normalization_inside),
        "output": "logits [N, num_classes] in the order of class_names (softmax for "
                  "probabilities)",
        "metrics": run_metrics(trained), "versions": library_versions(fmt),
    }


def card_path(exported: Path) -> Path:
    """The model card of an exported file: `MODEL_CARD-<file name>.md` beside it."""
    return exported.with_name(f"MODEL_CARD-{exported.name}.md")


def export_model(trained: Any, fmt: str, out: str | os.PathLike[str] | None = None) -> Path:
    """Write the run's model in `fmt` to `out` (a file, or a folder: one that exists or a new
    name without an extension; default `RUN_DIR/export/`), check it, write its model card
    (`card_path`) beside it, and return the written file's path."""
    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        raise UserError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, "
                        f"not {fmt!r}") from None
    target = _target(trained, fmt, out)
    writer = {ExportFormat.ONNX: _write_onnx, ExportFormat.TORCHSCRIPT: _write_torchscript,
              ExportFormat.TORCHVISION: _write_torchvision}[fmt]
    info = {**model_info(trained, fmt), "card": card_path(target).name}
    atomic_write(target, lambda tmp: writer(trained, info, tmp))
    if fmt == ExportFormat.TORCHVISION:
        info.update(_torchvision_loading(trained, target))
        json_text = json.dumps(info, indent=2)
        atomic_write(target.with_name("model.json"),
                     lambda tmp: tmp.write_text(json_text + "\n", encoding="utf-8"))
    write_model_card(trained, card_path(target), exported=target, info=info)
    return target


def export_record(trained: Any, fmt: str, exported: Path) -> dict[str, Any]:
    """What `workbench export --json` prints: the written `path`, `format`, `card`,
    `input_size`, `classes` and `preprocessing` (with `mean`, `std` and whether the model
    normalizes its input itself)."""
    info = model_info(trained, fmt)
    extra = {"model_json": str(exported.with_name("model.json"))} \
        if ExportFormat(fmt) == ExportFormat.TORCHVISION else {}
    return {"path": str(exported), "format": str(fmt), "card": str(card_path(exported)),
            **extra, "input_size": info["input_size"], "classes": info["class_names"],
            "preprocessing": {**{k: info[k] for k in ("resize", "interpolation", "mean", "std")},
                              **info["preprocessing"]}}


def _target(trained: Any, fmt: ExportFormat, out: str | os.PathLike[str] | None) -> Path:
    """The file to write; its folder made (UserError when it cannot be)."""
    default = Path(DEFAULT_NAMES[fmt])
    if out is None:
        path = Path(trained.run_dir) / "export" / default
    else:
        path = Path(out).expanduser()
        # a folder: one that exists, or a new name without an extension (made below)
        if path.is_dir() or (not path.exists() and not path.suffix):
            path = path / default.name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"cannot write {path}: {path.parent} is not writable")
    return path


def _wrapped(trained: Any, info: dict[str, Any]) -> NormalizedClassifier:
    return NormalizedClassifier(trained.classifier, info["mean"], info["std"]).cpu().eval()


def _example(info: dict[str, Any]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    size = info["input_size"]
    return torch.rand(CHECK_BATCH, 3, size, size, generator=generator)


def _check_close(name: str, got: Any, expected: torch.Tensor) -> None:
    diff = float((torch.as_tensor(got) - expected).abs().max())
    if not diff <= CHECK_ATOL:
        raise UserError(f"the {name} export does not reproduce the run's model (logits differ "
                        f"by {diff:.2g}); nothing was written")


# -- ONNX ---------------------------------------------------------------------------------------
def _write_onnx(trained: Any, info: dict[str, Any], tmp: Path) -> None:
    """torch.onnx's exporter (torch.export based, needs onnxscript; works offline); dynamic batch,
    metadata as JSON strings, checked with onnx's checker and onnxruntime before the rename."""
    model, example = _wrapped(trained, info), _example(info)
    _check_onnx_size(model)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.onnx.export(model, (example,), None, dynamo=True, verbose=False,
                                    input_names=["image"], output_names=["logits"],
                                    dynamic_shapes=({0: batch},))
    for key, value in info.items():
        program.model.metadata_props[key] = value if isinstance(value, str) else json.dumps(value)
    program.save(str(tmp))
    import onnx
    import onnxruntime

    onnx.checker.check_model(str(tmp))
    session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(example)
    _check_close("ONNX", session.run(None, {"image": example.numpy()})[0], expected)


def _check_onnx_size(model: nn.Module) -> None:
    """Refuse a model whose weights do not fit one ONNX file: past protobuf's 2 GB the exporter
    writes them to a `.data` file named after the temporary file, which the rename would break."""
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if size > ONNX_MAX_BYTES:
        raise UserError(f"this model's weights ({size / 2**30:.1f} GiB) do not fit in one ONNX "
                        f"file (at most 2 GiB); use --format torchscript or torchvision")


# -- TorchScript --------------------------------------------------------------------------------
def _write_torchscript(trained: Any, info: dict[str, Any], tmp: Path) -> None:
    """A traced module (loads with `torch.jit.load` alone), `model.json` as an extra file."""
    model, example = _wrapped(trained, info), _example(info)
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is still what
        # loads anywhere with plain torch (C++ included); the issue asks for this format.
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(tmp), _extra_files={"model.json": json.dumps(info)})
        loaded = torch.jit.load(str(tmp))
        _check_close("TorchScript", loaded(example[:1]), model(example[:1]))


# -- torchvision --------------------------------------------------------------------------------
def _write_torchvision(trained: Any, info: dict[str, Any], tmp: Path) -> None:
    """torchvision's own key names, checked by a strict load into `get_model(...)`."""
    state = torchvision_state_dict(trained)
    torch.save(state, str(tmp))
    fresh = _torchvision_model(trained)
    fresh.load_state_dict(torch.load(str(tmp), weights_only=True), strict=True)
    example = _example(info)
    normalize = NormalizedClassifier(nn.Identity(), info["mean"], info["std"])
    with torch.no_grad():
        _check_close("torchvision", fresh.eval()(normalize(example)),
                     trained.classifier.cpu()(normalize(example)))


def torchvision_state_dict(trained: Any) -> dict[str, torch.Tensor]:
    """The run's weights under torchvision's key names for `get_model(backbone, num_classes=K)`.

    A torchvision model is built and cut into stages the way the run's model was; the stages
    reuse the model's own modules, so loading the run's weights into the cut model fills the
    torchvision model, whose `state_dict()` is then the answer.
    """
    _check_torchvision_possible(trained)
    from workbench.models.transfer import TransferModel

    model = _torchvision_model(trained)
    cut = TransferModel(model, trained.plan.backbone, pretrained=False)
    try:
        if trained.plan.head.fitted_once:
            for index, stage in enumerate(trained.classifier.stages):
                cut.stages[index].load_state_dict(stage.state_dict(), strict=True)
            last = [m for m in cut.head.modules() if isinstance(m, nn.Linear)][-1]
            last.load_state_dict(trained.classifier.head.state_dict(), strict=True)
        else:
            cut.load_state_dict(trained.classifier.state_dict(), strict=True)
    except (RuntimeError, IndexError):
        raise UserError(_no_torchvision(trained, "its weights do not map onto torchvision's "
                                                 "model")) from None
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_torchvision_possible(trained: Any) -> None:
    plan = trained.plan
    if plan.config.model.norm_policy == NormPolicy.GROUP_NORM:
        raise UserError(_no_torchvision(trained, "its BatchNorm layers were replaced by "
                                                 "GroupNorm"))
    if plan.head.fitted_once and plan.feature_stage != plan.num_stages - 1:
        stage = plan.stage_names[plan.feature_stage]
        raise UserError(_no_torchvision(trained, f"its {plan.head} head reads the pooled "
                                                 f"features of {stage}, an inner stage"))


def _no_torchvision(trained: Any, why: str) -> str:
    formats = ", ".join(f for f in EXPORT_FORMATS if f != ExportFormat.TORCHVISION)
    return (f"this run cannot be exported as a torchvision model ({why}); "
            f"use --format {formats.replace(', ', ' or ')}")


def _builder_kwargs(trained: Any) -> dict[str, Any]:
    """`get_model` arguments besides the name: the class count, and for the few families whose
    pretrained variants are built differently (GoogLeNet's input transform, ViT's image size)
    the ones the run's model was built with."""
    from workbench.models.transfer import _build_kwargs

    plan = trained.plan
    kwargs = _build_kwargs(plan.backbone, plan.family, plan.pretrained_weights,
                           plan._build_size())
    kwargs.pop("init_weights", None)  # initialisation only; every weight is loaded
    kwargs["num_classes"] = len(trained.class_names)
    return kwargs


def _torchvision_model(trained: Any) -> nn.Module:
    from torchvision.models import get_model

    kwargs = _builder_kwargs(trained)
    if trained.plan.family in ("googlenet", "inception"):
        kwargs["init_weights"] = False  # explicit, or torchvision warns
    return get_model(trained.plan.backbone, weights=None, **kwargs)


def _torchvision_loading(trained: Any, target: Path) -> dict[str, Any]:
    kwargs = _builder_kwargs(trained)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return {"builder_kwargs": kwargs,
            "load": (f"torchvision.models.get_model({trained.plan.backbone!r}, {args})"
                     f".load_state_dict(torch.load({target.name!r}, weights_only=True), "
                     f"strict=True)")}
