"""`ThumbnailsView`: one class's images as an icon grid, decoded lazily off the GUI thread.

The list view asks only for the icons it shows, so a class of 50,000 images costs nothing until
the user scrolls. Each request goes to a decoding worker; decoded thumbnails come back as QImage
(safe to build off the GUI thread), become pixmaps here, and live in a bounded LRU cache.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListView, QVBoxLayout, QWidget

from workbench.errors import UserError
from workbench_ui.workers import GeneratorWorker

THUMB_SIZE = 96
CACHE_LIMIT = 800  # thumbnails kept (~30 MB at 96 px)

_ModelIndex = QModelIndex | QPersistentModelIndex


def pil_to_qimage(img: Any) -> QImage:
    """An RGB PIL image as a QImage that owns its pixels (usable from any thread)."""
    rgb = img.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    qimage = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888)
    return qimage.copy()  # detach from `data`, which Python frees


def decode_requests(
    requests: queue.Queue[str], size: int, stop: threading.Event
) -> Iterator[tuple[str, QImage | None, str]]:
    """Decode thumbnails for paths put on `requests` until `stop` is set.

    Yields (path, image, "") or (path, None, reason) for a file that does not decode.
    """
    from workbench.data.images import load_thumbnail

    while not stop.is_set():
        try:
            path = requests.get(timeout=0.05)
        except queue.Empty:
            continue
        try:
            yield path, _fit(pil_to_qimage(load_thumbnail(path, size)), size), ""
        except (UserError, OSError) as exc:  # OSError: e.g. the file vanished since the scan
            yield path, None, str(exc)


def _fit(image: QImage, size: int) -> QImage:
    """Enlarge a small image by a whole factor (crisp pixels), so 28 px digits are visible."""
    factor = size // max(image.width(), image.height(), 1)
    if factor < 2:
        return image
    return image.scaled(image.width() * factor, image.height() * factor)


class PixmapCache:
    """A least-recently-used map of path -> QPixmap holding at most `limit` entries."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self._items: OrderedDict[str, QPixmap] = OrderedDict()

    def get(self, key: str) -> QPixmap | None:
        """The cached pixmap (marked as recently used), or None."""
        pixmap = self._items.get(key)
        if pixmap is not None:
            self._items.move_to_end(key)
        return pixmap

    def put(self, key: str, pixmap: QPixmap) -> None:
        """Store a pixmap, dropping the least recently used ones beyond the limit."""
        self._items[key] = pixmap
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ThumbnailModel(QAbstractListModel):
    """Paths of one class; icons are requested from a worker the first time they are shown."""

    def __init__(self, cache: PixmapCache, request: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._paths: list[str] = []
        self._rows: dict[str, int] = {}
        self._cache, self._request = cache, request
        self._asked: set[str] = set()
        self._failed: dict[str, str] = {}
        self._placeholder = _placeholder_icon()

    def set_paths(self, paths: Sequence[str]) -> None:
        """Replace the listed images."""
        self.beginResetModel()
        self._paths = list(paths)
        self._rows = {p: i for i, p in enumerate(self._paths)}
        self._asked.clear()
        self.endResetModel()

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        """Number of images (a flat list)."""
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The file name, its tooltip, and its icon (a placeholder until decoded)."""
        if not index.isValid():
            return None
        path = self._paths[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._failed.get(path, path)
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(path).name
        return None

    def _icon(self, path: str) -> QIcon:
        pixmap = self._cache.get(path)
        if pixmap is not None:
            return QIcon(pixmap)
        if path not in self._asked and path not in self._failed:
            self._asked.add(path)  # ask once; if evicted later it is asked again on re-show
            self._request(path)
        return self._placeholder

    def thumbnail_ready(self, path: str, image: QImage | None, reason: str) -> None:
        """Store a decoded thumbnail (GUI thread) and repaint its cell."""
        self._asked.discard(path)
        if image is None:
            self._failed[path] = f"cannot show {Path(path).name}: {reason}"
        else:
            self._cache.put(path, QPixmap.fromImage(image))
        row = self._rows.get(path)
        if row is not None:
            cell = self.index(row)
            self.dataChanged.emit(cell, cell, [Qt.ItemDataRole.DecorationRole])


class ThumbnailsView(QWidget):
    """A titled icon grid of one class's images."""

    def __init__(self, parent: QWidget | None = None, size: int = THUMB_SIZE) -> None:
        super().__init__(parent)
        self._size = size
        self._requests: queue.Queue[str] = queue.Queue()
        self._worker: GeneratorWorker | None = None
        self.cache = PixmapCache()
        self.model = ThumbnailModel(self.cache, self._request, self)
        self.title = QLabel("Click a bar of the histogram to see that class's images.")
        self.title.setObjectName("sectionTitle")
        self.list = QListView()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setUniformItemSizes(True)  # lets the view ask only for visible icons
        self.list.setIconSize(QSize(size, size))
        self.list.setGridSize(QSize(size + 16, size + 26))
        self.list.setMovement(QListView.Movement.Static)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setSpacing(2)
        self.list.setModel(self.model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)

    def show_class(self, name: str, paths: Sequence[str], split: str = "") -> None:
        """List `paths` (one class's images) and title them."""
        where = f" in {split}" if split else ""
        self.title.setText(f"Class '{name}': {len(paths)} image(s){where}")
        self._drop_pending()
        self.model.set_paths(paths)
        self.list.scrollToTop()  # another class starts at its first image, not the old offset

    def clear(self) -> None:
        """Show no images."""
        self.title.setText("Click a bar of the histogram to see that class's images.")
        self._drop_pending()
        self.model.set_paths([])
        self.list.scrollToTop()

    def decoded_count(self) -> int:
        """Thumbnails decoded and cached so far."""
        return len(self.cache)

    def shutdown(self) -> None:
        """Stop the decoding worker and wait for it."""
        if self._worker is not None:
            self._worker.shutdown(5.0)
            self._worker = None

    def _request(self, path: str) -> None:
        if self._worker is None:
            self._worker = GeneratorWorker(
                decode_requests, self._requests, self._size, parent=self
            )
            self._worker.event.connect(lambda e: self.model.thumbnail_ready(*e))
            worker = self._worker
            worker.finished.connect(lambda: self._worker_ended(worker))
            self._worker.start()
        self._requests.put(path)

    def _worker_ended(self, worker: GeneratorWorker) -> None:
        # only after a crash (shutdown() clears it first): the next request starts a new worker
        if worker is self._worker:
            worker.join(1.0)
            self._worker = None

    def _drop_pending(self) -> None:
        # requests for the previous class are no longer wanted
        while True:
            try:
                self._requests.get_nowait()
            except queue.Empty:
                break


def _placeholder_icon() -> QIcon:
    pixmap = QPixmap(THUMB_SIZE, THUMB_SIZE)
    pixmap.fill(QColor(225, 228, 232))
    return QIcon(pixmap)
