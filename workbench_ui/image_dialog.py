"""`ImageDialog`: one evaluated image, large, with its true class and the model's top-5."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from workbench.errors import UserError
from workbench_ui.thumbnails_view import pil_to_qimage

LARGE = 384


class ImageDialog(QDialog):
    """The image at up to 384 px (small images enlarged with crisp pixels) and its top-5."""

    def __init__(self, path: str, true_class: str, top: Sequence[tuple[str, float]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(Path(path).name)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 200)
        self._show_image(path)
        lines = [f"<b>true class:</b> {true_class}", "<b>top-5:</b>"]
        for name, prob in top:
            style = "color:#2ca02c" if name == true_class else ""
            lines.append(f"<span style='{style}'>{name}: {100 * prob:.1f} %</span>")
        self.top = QLabel("<br>".join(lines))
        self.top.setTextFormat(Qt.TextFormat.RichText)
        self.path = QLabel(path)
        self.path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.image, self.top, self.path, buttons):
            layout.addWidget(widget)

    def _show_image(self, path: str) -> None:
        from workbench.data.images import load_image

        try:
            image = pil_to_qimage(load_image(path))
        except (UserError, OSError) as exc:
            self.image.setText(f"cannot show the image: {exc}")
            return
        side = max(image.width(), image.height(), 1)
        mode = (Qt.TransformationMode.FastTransformation if side < LARGE else
                Qt.TransformationMode.SmoothTransformation)
        self.image.setPixmap(QPixmap.fromImage(image).scaled(
            LARGE, LARGE, Qt.AspectRatioMode.KeepAspectRatio, mode))
