"""Where an exported model comes from: the library versions that wrote it and the licence of
the pretrained weights it started from, as the model card and the export metadata state them.

The licence is read from torchvision's weights metadata (`weights.meta["license"]`, which only
some weights carry, e.g. the SWAG ones); where torchvision states none, the card says "unknown"
rather than guess: the pretrained weights are not covered by torchvision's BSD-3-Clause code
licence, and the datasets they were trained on have terms of their own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

DISTRIBUTION = "transfer-workbench"  # this project, as pip knows it
FORMAT_LIBRARIES = {"onnx": ("onnx", "onnxruntime", "onnxscript"), "torchscript": (),
                    "torchvision": ()}


def library_versions(fmt: str) -> dict[str, str]:
    """Versions of what wrote an export in `fmt`: workbench, torch, torchvision, and for ONNX
    onnx, onnxruntime (the self-check) and onnxscript (the exporter)."""
    versions = {"workbench": workbench_version()}
    for name in ("torch", "torchvision", *FORMAT_LIBRARIES.get(str(fmt), ())):
        versions[name] = _version(name)
    return versions


def _version(name: str) -> str:
    """A module's own `__version__` when it is loaded (torch's names its CUDA build, e.g.
    "2.14.1+cu130"), else the installed distribution's."""
    loaded = getattr(sys.modules.get(name), "__version__", None)
    if loaded:
        return str(loaded)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def workbench_version() -> str:
    """This project's version (installed, or the checkout's own)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from workbench import __version__

        return __version__


@dataclass(frozen=True)
class WeightsLicence:
    """The licence of the weights a run started from: `spdx` is what a Hugging Face header can
    name ("unknown", or "other" with `link`), `words` one sentence for the card."""

    spdx: str
    link: str | None
    words: str


def weights_licence(plan: Any) -> WeightsLicence:
    """What torchvision says about the licence of the run's pretrained weights."""
    weights = plan.pretrained_weights
    if weights is None:
        source = (f"weights from the file {plan.weights_file}" if plan.weights_file
                  else "randomly initialised weights")
        return WeightsLicence("unknown", None, f"unknown: the run started from {source}; "
                              f"their terms (and those of your data) apply.")
    name = f"{plan.backbone} {weights.name}"
    link = weights.meta.get("license")
    if link:
        return WeightsLicence("other", str(link), f"{name}: see {link} (from torchvision's "
                              f"weights metadata).")
    return WeightsLicence("unknown", None, (
        f"unknown: torchvision's weights metadata states no licence for {name}. torchvision's "
        f"BSD-3-Clause licence covers its code, not these weights, which were trained on "
        f"{_trained_on(weights)}; check those terms before commercial use."))


def _trained_on(weights: Any) -> str:
    metrics = weights.meta.get("_metrics") or {}
    return " and ".join(metrics) if metrics else "a dataset torchvision does not name"


def pretraining_datasets(plan: Any) -> list[str]:
    """The datasets torchvision's weights metadata names for the run's pretrained weights."""
    weights = plan.pretrained_weights
    return list(weights.meta.get("_metrics") or {}) if weights is not None else []
