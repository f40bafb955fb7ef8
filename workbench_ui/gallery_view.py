"""`GalleryView`: thumbnails of evaluated images with "true → predicted (probability)" captions.

Built on the Dataset tab's thumbnail grid (decoding worker, bounded cache). Double-click an image
for the large view with its top-5; right-click to mark it mislabelled (with the right class) or
to exclude it: the panel records the mark in the run's corrections file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
from PySide6.QtWidgets import QMenu, QWidget

from workbench_ui.thumbnails_view import PixmapCache, ThumbnailModel, ThumbnailsView

THUMB_SIZE = 84


class CaptionedModel(ThumbnailModel):
    """Thumbnails captioned by the caller (a prediction) instead of by file name."""

    def __init__(self, cache: PixmapCache, request: Any, parent: Any = None) -> None:
        super().__init__(cache, request, parent)
        self.captions: list[str] = []
        self.marks: dict[str, str] = {}  # path -> its correction, shown in the caption

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The caption (with the correction mark) and a tooltip with the path."""
        if index.isValid() and role in (Qt.ItemDataRole.DisplayRole,
                                        Qt.ItemDataRole.ToolTipRole):
            path = self._paths[index.row()]
            caption = self.captions[index.row()]
            mark = self.marks.get(path)
            caption = f"✎ {mark}" if mark and role == Qt.ItemDataRole.DisplayRole else caption
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{caption}\n{path}" + (f"\ncorrection: {mark}" if mark else "")
            return caption
        return super().data(index, role)


class GalleryView(ThumbnailsView):
    """A titled grid of evaluated images; each item stands for one row of the predictions."""

    image_activated = Signal(int)  # the prediction row, on double-click
    correction_requested = Signal(int, str, str)  # row, "relabel" / "exclude" / "clear", class

    def __init__(self, parent: QWidget | None = None) -> None:
        self._closed = False
        super().__init__(parent, size=THUMB_SIZE)
        self.model = CaptionedModel(self.cache, self._request, self)
        self.list.setModel(self.model)
        self.rows: list[int] = []
        self.class_names: list[str] = []
        self._labels: dict[int, int] = {}  # prediction row -> its class in the dataset
        self.title.setText("Click a cell of the confusion matrix, or show the top losses.")
        self.list.doubleClicked.connect(lambda i: self.image_activated.emit(self.rows[i.row()]))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)

    def show_items(self, title: str, rows: Sequence[int], paths: Sequence[str],
                   captions: Sequence[str], class_names: Sequence[str],
                   labels: Sequence[int] = ()) -> None:
        """List the images of prediction `rows` (their paths and captions, in order); `labels`:
        each image's class in the dataset, which its relabel menu does not offer."""
        self.title.setText(title)
        self.rows, self.class_names = list(rows), list(class_names)
        self._labels = dict(zip(self.rows, labels, strict=False))
        self._drop_pending()
        self.model.captions = list(captions)
        self.model.set_paths(paths)
        self.list.scrollToTop()

    def set_marks(self, marks: dict[str, str]) -> None:
        """Show which images carry a correction (path -> short text)."""
        self.model.marks = dict(marks)
        self.list.viewport().update()

    def shutdown(self) -> None:
        """Stop decoding; a repaint after this asks for no new thumbnails."""
        self._closed = True
        super().shutdown()

    def _request(self, path: str) -> None:
        if not self._closed:
            super()._request(path)

    def correction_menu(self, row: int) -> QMenu:
        """The menu of fixes for one prediction row (also what tests trigger)."""
        menu = QMenu(self)
        relabel = menu.addMenu("Mislabelled: the right class is")
        own = self._labels.get(row)
        for c, name in enumerate(self.class_names):
            if c == own:
                continue  # "the right class is" the one it has: not a correction
            relabel.addAction(name, lambda n=name: self.correction_requested.emit(
                row, "relabel", n))
        menu.addAction("Exclude from the dataset",
                       lambda: self.correction_requested.emit(row, "exclude", ""))
        menu.addAction("Clear the correction",
                       lambda: self.correction_requested.emit(row, "clear", ""))
        menu.addSeparator()
        menu.addAction("View large with top-5…", lambda: self.image_activated.emit(row))
        return menu

    def _menu(self, pos: QPoint) -> None:
        index = self.list.indexAt(pos)
        if index.isValid():
            self.correction_menu(self.rows[index.row()]).exec(self.list.mapToGlobal(pos))
