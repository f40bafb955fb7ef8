"""Preprocessing from the weights' own `transforms()`, with a lower input size and augmentation.

torchvision's `ImageClassification` preset fixes the resize, the crop, the interpolation and the
normalization the weights were trained with; we read those values and build the same pipeline
(torchvision.transforms.v2), scaling resize and crop together when the user lowers the input
size for small images, and swapping the center crop for a preset's random steps (crops, flips,
TrivialAugmentWide, erasing) when training with augmentation. Batch-level mixing (MixUp,
CutMix) lives in workbench.train.augment.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.models import get_model_weights
from torchvision.transforms import InterpolationMode, v2

from workbench.config import MIN_INPUT_SIZE, Augment
from workbench.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LIGHT_SCALE = (0.35, 1.0)  # the area a light preset's crop keeps
STANDARD_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop default
ERASE_P = 0.25  # the strong preset's RandomErasing probability


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
                    augment: str = "none") -> v2.Compose:
    """PIL image -> normalized float tensor, as the weights expect.

    `input_size` (0: the weights' own) sets the crop; the resize keeps the preset's ratio
    (e.g. 256/224). For training, `augment` names a preset of `config.Augment` (see
    `augment_steps`); evaluation always resizes and center-crops.
    """
    values = preset_values(weights)
    crop = input_size or values["crop"]
    if crop < MIN_INPUT_SIZE:
        raise UserError(f"input size {crop} is too small (at least {MIN_INPUT_SIZE})")
    resize = round(crop * values["resize"] / values["crop"])
    interpolation = values["interpolation"]
    preset = Augment(augment) if train else Augment.NONE
    if preset is Augment.NONE:
        geometry = [v2.Resize(resize, interpolation=interpolation, antialias=True),
                    v2.CenterCrop(crop)]
    else:
        geometry = augment_steps(preset, crop, interpolation)
    erase = [v2.RandomErasing(p=ERASE_P, value=0)] if preset is Augment.STRONG else []
    return v2.Compose([
        v2.ToImage(),
        *geometry,
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(values["mean"]), std=list(values["std"])),
        *erase,  # after normalising: erased pixels are 0, the dataset's mean
    ])


def augment_steps(preset: Augment, crop: int,
                  interpolation: InterpolationMode = InterpolationMode.BILINEAR) -> list[Any]:
    """The random steps of a training preset on a uint8 image, before scaling to floats.

    light: RandomResizedCrop keeping 35-100 % of the area (fastai's usual `min_scale`) and a
    horizontal flip; standard: the crop over 8-100 % (torchvision's ImageNet recipe) and the
    flip; strong: standard, then TrivialAugmentWide (Muller & Hutter 2021; no magnitudes to
    tune), and RandomErasing with p=0.25 after normalisation (`build_transform`).
    """
    if preset is Augment.NONE:
        return []
    scale = LIGHT_SCALE if preset is Augment.LIGHT else STANDARD_SCALE
    steps = [v2.RandomResizedCrop(crop, scale=scale, interpolation=interpolation, antialias=True),
             v2.RandomHorizontalFlip()]
    if preset is Augment.STRONG:
        steps.append(v2.TrivialAugmentWide(interpolation=interpolation))
    return steps
