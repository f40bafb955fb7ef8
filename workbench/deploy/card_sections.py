"""The format-specific parts of the model card: the Hugging Face YAML header, the intended use,
how to feed the exported file (its preprocessing, and a snippet that runs as written in the
file's folder: `python snippet.py IMAGE...`), the weights' licence and the library versions.

The header is YAML whose values are written as JSON (a subset of YAML), so it parses with any
YAML reader and needs no YAML library here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.deploy.provenance import library_versions, weights_licence

LIBRARY_NAMES = {"onnx": "onnx", "torchscript": "pytorch", "torchvision": "pytorch"}
HUB_METRICS = ["accuracy", "balanced_accuracy"]

_LOAD_RGB = '''def load_rgb(path):
    """RGB as the workbench decodes it: EXIF orientation applied, transparency on white."""
    image = ImageOps.exif_transpose(Image.open(path))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return image.convert("RGB")'''

_IMPORTS = {"onnx": ["import onnxruntime", "import torch"], "torchscript": ["import torch"],
            "torchvision": ["import torch", "import torchvision"]}


def front_matter(trained: Any, info: dict[str, Any] | None) -> list[str]:
    """The `---` YAML header the Hugging Face Hub reads from a model card."""
    plan = trained.plan
    fmt = info["format"] if info else "torchvision"
    licence = weights_licence(plan)
    weights = plan.pretrained_weights.name if plan.pretrained_weights is not None else None
    tags = ["image-classification", "transfer-learning", "transfer-workbench", fmt, "torchvision",
            plan.backbone, *([weights] if weights else [])]
    header: dict[str, Any] = {"library_name": LIBRARY_NAMES.get(fmt, "pytorch"),
                              "pipeline_tag": "image-classification",
                              "license": licence.spdx}
    if licence.link:
        header["license_name"] = _licence_name(licence.link)
        header["license_link"] = licence.link
    header["tags"] = list(dict.fromkeys(tags))
    header["metrics"] = HUB_METRICS
    return ["---", *(f"{key}: {json.dumps(value)}" for key, value in header.items()), "---", ""]


def _licence_name(link: str) -> str:
    """A Hub licence name (lowercase, dashes) for a licence link: its GitHub repository's."""
    parts = link.split("/")
    if "github.com" in parts and len(parts) > parts.index("github.com") + 2:
        return f"{parts[parts.index('github.com') + 2].lower()}-license"
    return "weights-license"


def intended_use_section(trained: Any) -> list[str]:
    """What the model is for, and what it is not for."""
    count = len(trained.class_names)
    return ["## Intended use", "",
            f"- Sorting images into the {count} classes listed below, one label per image, for "
            f"images like those it was trained on (`{trained.plan.config.data.path}`).",
            "- Made with Transfer Workbench by fine-tuning a torchvision backbone; check it on "
            "images from your own deployment before relying on it.",
            "- Not for: images of other kinds or classes (it has no 'none of these' answer), "
            "decisions about people, or safety-critical use without validation of its own.", ""]


def usage_section(info: dict[str, Any], exported: Path) -> list[str]:
    """How to feed the exported file: the preprocessing step by step, and a snippet."""
    prep = info["preprocessing"]
    size, resize = info["input_size"], info["resize"]
    norm = (f"5. Do **not** normalize: the model does it itself (mean {_list(info['mean'])}, "
            f"std {_list(info['std'])})." if prep["normalization_inside_model"] else
            f"5. Normalize each channel: `(x - mean) / std` with mean {_list(info['mean'])} and "
            f"std {_list(info['std'])}. **The model does not normalize**: skipping this gives "
            f"wrong classes.")
    lines = [f"## How to use ({info['format']})", "",
             "The preprocessing `workbench predict` applies, in order (also in the metadata's "
             "`preprocessing`):", "",
             "1. Decode as RGB: apply the EXIF orientation, put transparency onto white.",
             f"2. Resize the shorter side to {resize} px ({info['interpolation']}, antialiased).",
             f"3. Center-crop {size} x {size} px.",
             f"4. Scale to float32 in [0, 1], channels first: `[3, {size}, {size}]`; stack a "
             f"batch `[N, 3, {size}, {size}]` (any N).", norm, "",
             f"Output: {info['output']}.", "",
             f"In torchvision: `{prep['torchvision']}`.", "",
             f"Run in the folder of `{exported.name}` as `python classify.py IMAGE...`:", "",
             "```python", *snippet(info, exported), "```", ""]
    return lines


def snippet(info: dict[str, Any], exported: Path) -> list[str]:
    """A script that classifies the image files named on its command line with the export."""
    fmt, name = info["format"], exported.name
    if fmt == "onnx":
        load = [f"session = onnxruntime.InferenceSession({name!r}, "
                f"providers=['CPUExecutionProvider'])",
                "classes = json.loads(session.get_modelmeta().custom_metadata_map"
                "['class_names'])", "", "",
                "def model(batch):",
                "    return torch.from_numpy(session.run(None, {'image': batch.numpy()})[0])"]
    elif fmt == "torchscript":
        load = ["extra = {'model.json': ''}",
                f"model = torch.jit.load({name!r}, _extra_files=extra).eval()",
                "classes = json.loads(extra['model.json'])['class_names']"]
    else:
        kwargs = ", ".join(f"{k}={v!r}" for k, v in info.get("builder_kwargs", {}).items())
        load = ["with open('model.json', encoding='utf-8') as file:",
                "    classes = json.load(file)['class_names']",
                f"model = torchvision.models.get_model({info['backbone']!r}, {kwargs})",
                f"model.load_state_dict(torch.load({name!r}, weights_only=True), strict=True)",
                "model.eval()"]
    return ["import json", "import sys", "", *_IMPORTS[fmt],
            "from PIL import Image, ImageOps",
            "from torchvision.transforms import InterpolationMode, v2", "",
            *load, f"preprocess = {info['preprocessing']['torchvision']}", "", "", _LOAD_RGB,
            "", "", "for path in sys.argv[1:]:",
            "    with torch.no_grad():",
            "        logits = model(preprocess(load_rgb(path)).unsqueeze(0))",
            "    print(path, classes[int(logits.argmax())], sep='\\t')"]


def provenance_section(trained: Any, info: dict[str, Any] | None) -> list[str]:
    """The weights' licence and the versions of the libraries that wrote the export."""
    licence = weights_licence(trained.plan)
    versions = info["versions"] if info else library_versions("torchvision")
    lines = ["## Licence", "",
             f"- Pretrained weights: {licence.words}",
             "- This model was trained from them on the dataset above: the weights' terms and "
             "your data's apply to it.", "",
             "## Versions", "", "| library | version |", "| --- | --- |"]
    lines += [f"| {name} | {version} |" for name, version in versions.items()]
    return lines + [""]


def _list(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"
