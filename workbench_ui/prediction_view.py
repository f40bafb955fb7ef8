"""`PredictionView`: one classified image: the crop the model saw with its Grad-CAM heatmap
over it, the file name, and the top-k classes as horizontal bars (pyqtgraph)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

IMAGE_SIDE = 168  # pixels the image is shown at, whatever the model's input size
HEAT_OPACITY = 0.6  # at the hottest point; cold areas keep the image visible
BAR_ROW_PX = 18
COLORMAP = "inferno"


def heat_overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = HEAT_OPACITY
                 ) -> np.ndarray:
    """The image (uint8 `[S, S, 3]`) with the heatmap (`[S, S]` in [0, 1]) blended over it,
    more opaque where it is hotter."""
    colors = pg.colormap.get(COLORMAP).map(heatmap.astype(np.float32), mode="byte")[..., :3]
    alpha = (opacity * np.sqrt(np.clip(heatmap, 0, 1)))[..., None]
    blended = image.astype(np.float32) * (1 - alpha) + colors.astype(np.float32) * alpha
    return blended.round().clip(0, 255).astype(np.uint8)


def to_pixmap(pixels: np.ndarray, side: int = IMAGE_SIDE, smooth: bool = True) -> QPixmap:
    """An RGB uint8 array as a square pixmap of `side` pixels (smoothly scaled, or pixelated
    to show what a model sees)."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    mode = (Qt.TransformationMode.SmoothTransformation if smooth
            else Qt.TransformationMode.FastTransformation)
    return QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode)


class TopKView(pg.PlotWidget):
    """The top-k probabilities as horizontal bars, the most probable on top."""

    def __init__(self, top: tuple[tuple[str, float], ...], parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background=None)
        self.labels = [label for label, _ in top]
        self.probs = [prob for _, prob in top]
        rows = list(range(len(top)))[::-1]  # first (most probable) at the top
        self.bars = pg.BarGraphItem(x0=0, y=rows, height=0.7, width=self.probs,
                                    brush=pg.mkBrush(70, 130, 180))
        self.addItem(self.bars)
        for row, prob in zip(rows, self.probs, strict=True):
            text = pg.TextItem(f"{prob:.1%}", anchor=(0, 0.5), color=(60, 60, 60))
            text.setPos(min(prob, 0.72) + 0.02, row)
            self.addItem(text)
        self.getAxis("left").setTicks([[(r, _short(lbl)) for r, lbl in zip(rows, self.labels,
                                                                            strict=True)]])
        self.getAxis("bottom").hide()
        self.setXRange(0, 1, padding=0)
        self.setYRange(-0.5, len(top) - 0.5, padding=0.05)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.setFixedHeight(BAR_ROW_PX * len(top) + 12)


class PredictionView(QFrame):
    """A card: the image with its heatmap, the file name, the top-k bars."""

    def __init__(self, prediction: Any, explanation: Any, show_heatmap: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.prediction, self.explanation = prediction, explanation
        self.image_label = QLabel()
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setToolTip(f"{explanation.method} for class "
                                    f"{prediction.label!r}")
        name = QLabel(Path(prediction.path).name)
        name.setToolTip(prediction.path)
        name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.top_k = TopKView(prediction.top)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.image_label)
        layout.addWidget(name)
        layout.addWidget(self.top_k)
        self.setFixedWidth(IMAGE_SIDE + 60)
        self.set_heatmap_visible(show_heatmap)

    def set_heatmap_visible(self, visible: bool) -> None:
        """Show the image with or without the heatmap over it."""
        pixels = self.explanation.image
        if visible:
            pixels = heat_overlay(pixels, self.explanation.heatmap)
        self.image_label.setPixmap(to_pixmap(pixels))
        self.heatmap_visible = visible


def _short(label: str, width: int = 12) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
