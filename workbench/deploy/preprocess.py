"""What an exported model takes as input, said so that a client can follow it literally.

The values come from the run's own evaluation transform (the one `workbench predict` uses), so an
export cannot describe other preprocessing than the run's. ONNX and TorchScript exports carry the
normalization inside the model (they take floats in [0, 1]); the torchvision state dict is
torchvision's bare architecture, so its client normalizes with the mean and std. `steps` lists
the operations in order; `torchvision` is the same pipeline as one line of torchvision code.
"""

from __future__ import annotations

from typing import Any

RGB_STEP = {"op": "to_rgb", "exif_transpose": True,
            "transparency": "composited onto white",
            "how": "PIL: ImageOps.exif_transpose(image); with transparency, "
                   "Image.alpha_composite onto a white RGBA image; then .convert('RGB')"}


def preprocessing(trained: Any) -> dict[str, Any]:
    """The run's evaluation preprocessing: `resize` (the shorter side), `input_size` (the center
    crop), `interpolation`, `mean`, `std`."""
    from torchvision.transforms import v2

    info: dict[str, Any] = {"input_size": trained.plan.input_size}
    for step in trained.transform().transforms:
        if isinstance(step, v2.Resize):
            info["resize"] = int(step.size[0])
            info["interpolation"] = str(step.interpolation.value)
        elif isinstance(step, v2.Normalize):
            info["mean"], info["std"] = list(step.mean), list(step.std)
    return info


def input_steps(values: dict[str, Any], normalize: bool) -> list[dict[str, Any]]:
    """The operations a client applies to one image file, in order (`normalize` only when the
    model does not normalize itself)."""
    size = values["input_size"]
    steps = [dict(RGB_STEP),
             {"op": "resize", "shorter_side": values["resize"],
              "interpolation": values["interpolation"], "antialias": True},
             {"op": "center_crop", "size": size},
             {"op": "to_float", "dtype": "float32", "layout": "CHW", "divide_by": 255,
              "range": [0, 1]}]
    if normalize:
        steps.append({"op": "normalize", "mean": values["mean"], "std": values["std"],
                      "formula": "(x - mean[c]) / std[c] per channel c"})
    return steps


def torchvision_code(values: dict[str, Any], normalize: bool) -> str:
    """The steps as a torchvision.transforms.v2 pipeline (after the RGB conversion); needs
    `import torch` and `from torchvision.transforms import InterpolationMode, v2`."""
    mode = values["interpolation"].upper()
    parts = ["v2.ToImage()",
             f"v2.Resize({values['resize']}, interpolation=InterpolationMode.{mode}, "
             f"antialias=True)",
             f"v2.CenterCrop({values['input_size']})",
             "v2.ToDtype(torch.float32, scale=True)"]
    if normalize:
        parts.append(f"v2.Normalize(mean={_floats(values['mean'])}, "
                     f"std={_floats(values['std'])})")
    return "v2.Compose([" + ", ".join(parts) + "])"


def input_words(values: dict[str, Any], normalize: bool) -> str:
    """One sentence: the input tensor and how to make it."""
    size = values["input_size"]
    words = (f"RGB float32 [N, 3, {size}, {size}]: resize the shorter side to "
             f"{values['resize']} ({values['interpolation']}, antialiased), center-crop "
             f"{size}, scale to [0, 1]")
    if normalize:
        return (words + ", then normalize with `mean` and `std` per channel: the model does "
                        "NOT normalize")
    return words + "; do not normalize: the normalization is inside the model"


def format_preprocessing(values: dict[str, Any], normalization_inside: bool) -> dict[str, Any]:
    """The `preprocessing` entry of an export's metadata."""
    normalize = not normalization_inside
    return {"normalization_inside_model": normalization_inside,
            "steps": input_steps(values, normalize),
            "torchvision": torchvision_code(values, normalize)}


def _floats(values: list[float]) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"
