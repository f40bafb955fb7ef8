"""The Train tab's "show a batch": augmented training images of the current plan, with labels.

The images are drawn, decoded, augmented and mixed by the core (`train.augment.iter_batch_preview`)
in a worker thread; this view only turns the finished arrays into pixmaps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench_ui.prediction_view import to_pixmap
from workbench_ui.state import AppState
from workbench_ui.workers import GeneratorWorker

COLUMNS = 4
IMAGES = 16
CELL_PX = 88  # each image is shown at this size, whatever the input size


def pixmap_of(image: np.ndarray, side: int = CELL_PX) -> QPixmap:
    """A uint8 H x W x 3 array as a pixmap scaled to `side` (pixelated: what the model sees)."""
    return to_pixmap(image, side, smooth=False)


class BatchPreviewView(QGroupBox):
    """A grid of one augmented training batch of the current plan; "Show a batch" draws a new
    one (another random draw each click)."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Augmented training batch", parent)
        self._state = state
        self._draws = 0
        self.worker: GeneratorWorker | None = None
        self.show_button = QPushButton("Show a batch")
        self.show_button.setToolTip("Draw training images through the planned augmentation "
                                    "(preset, MixUp / CutMix) as the model will see them")
        self.show_button.clicked.connect(self.show_batch)
        self.recipe_label = QLabel("Augmented training images appear here.")
        self.recipe_label.setWordWrap(True)
        self.images: list[QLabel] = []
        self.captions: list[QLabel] = []
        self._build_layout()

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.show_button)
        top.addWidget(self.recipe_label, 1)
        grid = QGridLayout()
        grid.setSpacing(4)
        for i in range(IMAGES):
            image, caption = QLabel(), QLabel()
            image.setFixedSize(CELL_PX, CELL_PX)
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image.setStyleSheet("background: #eee;")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setWordWrap(True)  # a mixed label's two shares take two lines, not clipped
            caption.setFixedWidth(CELL_PX + 16)
            row, column = divmod(i, COLUMNS)
            grid.addWidget(image, 2 * row, column, Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(caption, 2 * row + 1, column, Qt.AlignmentFlag.AlignHCenter)
            self.images.append(image)
            self.captions.append(caption)
        column = QVBoxLayout(self)
        column.addLayout(top)
        column.addLayout(grid)
        column.addStretch(1)

    def show_batch(self) -> bool:
        """Start drawing a batch in a worker; False (and a line saying why) when it cannot."""
        if self.worker is not None and self.worker.is_running():
            return False
        blocker = self._state.plan_blocker()
        if blocker:
            self.recipe_label.setText(blocker)
            return False
        plan, index = self._state.plan, self._state.index
        from workbench.train.augment import iter_batch_preview

        self._draws += 1
        self.worker = GeneratorWorker(iter_batch_preview, plan, index, IMAGES, seed=self._draws,
                                      parent=self)
        self.worker.event.connect(self._show)
        self.worker.failed.connect(self.recipe_label.setText)
        self.worker.finished.connect(self._on_finished)
        self.show_button.setEnabled(False)
        self.recipe_label.setText("Drawing a batch…")
        self.worker.start()
        return True

    def _show(self, preview: Any) -> None:  # preview: train.augment.BatchPreview
        self.recipe_label.setText(f"{preview.recipe} · {preview.images.shape[1]} px")
        for i, (image, caption) in enumerate(zip(self.images, self.captions, strict=True)):
            if i < len(preview.images):
                image.setPixmap(pixmap_of(preview.images[i]))
                caption.setText(preview.captions[i])
                caption.setToolTip(preview.captions[i])
            else:
                image.clear()
                caption.clear()

    def _on_finished(self) -> None:
        if self.worker is not None:
            self.worker.join(1.0)  # past its last event: returns at once
        self.show_button.setEnabled(True)

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop and join the worker; True when no thread is left running."""
        return self.worker is None or self.worker.shutdown(timeout)
