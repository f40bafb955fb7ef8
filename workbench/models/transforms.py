"""Preprocessing from the weights' own `transforms()`, with a lower input size and augmentation.

torchvision's `ImageClassification` preset fixes the resize, the crop, the interpolation and the
normalization the weights were trained with; we read those values and build the same pipeline
(torchvision.transforms.v2), scaling resize and crop together when the user lowers the input
size for small images, and swapping the center crop for RandomResizedCrop + flip when training
with augmentation.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.models import get_model_weights
from torchvision.transforms import InterpolationMode, v2

from workbench.config import MIN_INPUT_SIZE
from workbench.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preset_values(weights: Any) -> dict[str, Any]:
    """crop, resize, mean, std and interpolation of the weights' preset (ImageNet defaults
    for None; a backbone name means its default weights' preset, used for random init too)."""
    if isinstance(weights, str):
        weights = get_model_weights(weights).DEFAULT
    if weights is None:
        return {"crop": 224, "resize": 256, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                "interpolation": InterpolationMode.BILINEAR}
    preset = weights.transforms()
    return {
        "crop": int(preset.crop_size[0]),
        "resize": int(preset.resize_size[0]),
        "mean": tuple(preset.mean),
        "std": tuple(preset.std),
        "interpolation": preset.interpolation,
    }


def build_transform(weights: Any, input_size: int = 0, train: bool = False,
                    augment: bool = False) -> v2.Compose:
    """PIL image -> normalized float tensor, as the weights expect.

    `input_size` (0: the weights' own) sets the crop; the resize keeps the preset's ratio
    (e.g. 256/224). With `train and augment`: RandomResizedCrop and a horizontal flip.
    """
    values = preset_values(weights)
    crop = input_size or values["crop"]
    if crop < MIN_INPUT_SIZE:
        raise UserError(f"input size {crop} is too small (at least {MIN_INPUT_SIZE})")
    resize = round(crop * values["resize"] / values["crop"])
    interpolation = values["interpolation"]
    if train and augment:
        geometry = [v2.RandomResizedCrop(crop, interpolation=interpolation, antialias=True),
                    v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.Resize(resize, interpolation=interpolation, antialias=True),
                    v2.CenterCrop(crop)]
    return v2.Compose([
        v2.ToImage(),
        *geometry,
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(values["mean"]), std=list(values["std"])),
    ])
