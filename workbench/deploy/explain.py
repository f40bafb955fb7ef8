"""Why the model said what it said: a Grad-CAM heatmap (captum's `LayerGradCam`) over the image.

Grad-CAM (Selvaraju et al. 2017) weighs the feature maps of the classifier's last stage by the
gradient of the class's logit, keeps the positive part and upsamples it to the input. For a run
whose scikit-learn head reads an inner stage, that stage is the last one the classifier has, so
the map shows what the head actually looked at. Small inputs shrink the last maps to 1x1 or 2x2
(32 px through a stride-32 backbone), where a heatmap says nothing: then the deepest stage whose
maps are at least `MIN_CAM_SIDE` wide is used (Grad-CAM applies to any convolutional layer).
Backbones whose stages do not output `[N, C, H, W]` maps (ViT tokens, Swin's NHWC) get captum's
`Saliency` (absolute input gradient) instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from workbench.data.images import load_image
from workbench.deploy.predict import PredictBatch, iter_predict
from workbench.errors import UserError

MIN_CAM_SIDE = 4
EXPLAIN_BATCH = 8  # images classified at once before their heatmaps: results appear early


@dataclass(frozen=True)
class Explanation:
    """The image the model saw (after resize and crop) and a heatmap of the same size."""

    image: np.ndarray  # uint8 [S, S, 3]
    heatmap: np.ndarray  # float32 [S, S] in [0, 1]
    target: int  # the class explained (index into the class names)
    method: str  # "Grad-CAM" or "saliency"


def explain(trained: Any, image: Image.Image, target: int | None = None) -> Explanation:
    """Explain the prediction for `target` (default: the top class) on one PIL image."""
    batch = trained.transform()(image).unsqueeze(0)
    classifier = trained.classifier
    device = next(classifier.parameters()).device
    batch = batch.to(device)
    if target is None:
        with torch.no_grad():
            target = int(classifier(batch).argmax(1))
    if getattr(classifier, "layout", "nchw") == "nchw":
        heat, method = _grad_cam(classifier, batch, target), "Grad-CAM"
    else:
        heat, method = _saliency(classifier, batch, target), "saliency"
    return Explanation(_seen_image(trained, batch), _unit(heat), target, method)


def _grad_cam(classifier: Any, batch: torch.Tensor, target: int) -> np.ndarray:
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(classifier, _cam_stage(classifier, batch))
    with torch.enable_grad():
        attribution = cam.attribute(batch, target=target, relu_attributions=True)
    size = tuple(batch.shape[-2:])
    upsampled = LayerAttribution.interpolate(attribution, size, interpolate_mode="bilinear")
    return upsampled[0, 0].detach().float().cpu().numpy()


def _cam_stage(classifier: Any, batch: torch.Tensor) -> torch.nn.Module:
    """The deepest stage whose output is at least MIN_CAM_SIDE wide (else the first stage)."""
    sides: list[int] = []
    hooks = [stage.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
             for stage in classifier.stages]
    try:
        with torch.no_grad():
            classifier(batch)
    finally:
        for hook in hooks:
            hook.remove()
    wide = [i for i, side in enumerate(sides) if side >= MIN_CAM_SIDE]
    return classifier.stages[wide[-1] if wide else 0]


def _saliency(classifier: Any, batch: torch.Tensor, target: int) -> np.ndarray:
    from captum.attr import Saliency

    with torch.enable_grad():
        grads = Saliency(classifier).attribute(batch.clone().requires_grad_(True), target=target)
    return grads[0].abs().amax(0).detach().float().cpu().numpy()


def _unit(heat: np.ndarray) -> np.ndarray:
    heat = np.nan_to_num(np.maximum(heat, 0.0)).astype(np.float32)
    top = float(heat.max())
    return heat / top if top > 0 else heat


def _seen_image(trained: Any, batch: torch.Tensor) -> np.ndarray:
    """The normalized input turned back into pixels: exactly the crop the model classified."""
    from workbench.deploy.preprocess import preprocessing

    info = preprocessing(trained)
    mean = torch.tensor(info["mean"]).view(3, 1, 1)
    std = torch.tensor(info["std"]).view(3, 1, 1)
    pixels = (batch[0].detach().cpu().float() * std + mean).clamp(0, 1)
    return (pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@dataclass(frozen=True)
class Explained:
    """One classified image with the heatmap of its top class."""

    prediction: Any  # predict.Prediction
    explanation: Explanation


def iter_explained(trained: Any, paths: Sequence[str | os.PathLike[str]], *,
                   top_k: int = 5, stop: threading.Event | None = None,
                   ) -> Iterator[PredictBatch | Explained]:
    """What the GUI shows: each batch's `PredictBatch` (progress, skipped files), then one
    `Explained` per image of it. Stops between images when `stop` is set."""
    for batch in iter_predict(trained, paths, top_k=top_k, batch_size=EXPLAIN_BATCH, stop=stop):
        yield batch
        for prediction in batch.predictions:
            if stop is not None and stop.is_set():
                return
            try:
                image = load_image(prediction.path)
            except UserError:  # changed since it was classified: the prediction still stands
                continue
            target = trained.class_names.index(prediction.label)
            yield Explained(prediction, explain(trained, image, target))
