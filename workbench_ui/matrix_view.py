"""The rule-of-thumb matrix: 2x2 cells (similar / dissimilar x small / large), the dataset a point.

The view only paints what it is given: the cells' strategy titles, the heuristic thresholds, the
measured point and the suggested cell. Which cell a dataset belongs to is decided by the core
(`workbench.advice.matrix.classify`); the point is drawn so that the thresholds sit on the grid
lines, which is why a point left of the vertical line is "small" whatever the scale.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from workbench.advice.matrix import is_borderline

# Row 0 is "similar" (top), row 1 "dissimilar"; column 0 "small" (left), column 1 "large".
CELL_GRID = {
    "similar-small": (0, 0),
    "similar-large": (0, 1),
    "dissimilar-small": (1, 0),
    "dissimilar-large": (1, 1),
}
_SIZE_DECADES = 1.5  # the size axis spans threshold / 10**1.5 .. threshold * 10**1.5
_DIVERGENCE_DECADES = 1.0  # the similarity axis spans threshold / 10 .. threshold * 10
_EDGE = 0.06  # keep the point (and its label) inside the plot when a value is off the scale
_MARGIN_LEFT, _MARGIN_BOTTOM, _MARGIN_TOP, _MARGIN_RIGHT = 22, 40, 22, 8
_CELL_COLOURS = {
    "similar-small": QColor("#e3f0fb"),
    "similar-large": QColor("#e6f4e6"),
    "dissimilar-small": QColor("#fdf1e0"),
    "dissimilar-large": QColor("#f7e6f0"),
}


def _log_fraction(value: float, threshold: float, decades: float) -> float:
    """Position in [_EDGE, 1 - _EDGE] on a log axis centred on the threshold (0.5)."""
    ratio = max(value, 1e-9) / max(threshold, 1e-9)
    return min(max(0.5 + 0.5 * math.log10(ratio) / decades, _EDGE), 1.0 - _EDGE)


def size_fraction(images_per_class: float, threshold: float) -> float:
    """Horizontal position of a median images-per-class count (log; 0.5 = threshold)."""
    return _log_fraction(images_per_class, threshold, _SIZE_DECADES)


def divergence_fraction(divergence: float, threshold: float) -> float:
    """Vertical position from the top of a BN divergence (log; 0.5 = threshold).

    Log, like the size axis: divergences span orders of magnitude (0.06 for photos, 0.5 for
    digits, 0.75 for noise with the calibrated threshold at 0.12).
    """
    return _log_fraction(divergence, threshold, _DIVERGENCE_DECADES)


def fit_wrapped(metrics: QFontMetrics, text: str, rect: QRectF) -> str:
    """`text` word-wrapped into `rect`, or its longest start that fits followed by "…"."""
    flags = int(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap)

    def fits(candidate: str) -> bool:
        box = metrics.boundingRect(rect.toRect(), flags, candidate)
        return box.height() <= rect.height() and box.width() <= rect.width() + 1

    if fits(text):
        return text
    words = text.split()
    while words:
        words.pop()
        candidate = " ".join(words).rstrip(",;:") + "…"
        if words and fits(candidate):
            return candidate
    return ""


class MatrixView(QWidget):
    """Paints the 2x2 matrix and emits `cell_clicked(cell)` when the user clicks a cell."""

    cell_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._titles: dict[str, str] = {cell: cell.replace("-", " + ") for cell in CELL_GRID}
        self._small_threshold = 100.0
        self._divergence_threshold = 1.0
        self._point: tuple[float, float | None] | None = None
        self._highlight: str | None = None
        self._selected: str | None = None
        self._unmeasurable: str | None = None
        self._tag_rects: list[QRectF] = []  # the cells' tags, where the point's label must not go
        self._text_rects: list[QRectF] = []  # the cells' words, which it must not cover either
        self.setMinimumSize(300, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        """Room for two or three lines of strategy text in each cell."""
        return QSize(440, 300)

    # -- inputs -------------------------------------------------------------------------------
    def set_titles(self, titles: dict[str, str]) -> None:
        """Set each cell's strategy title (cell name -> short text)."""
        self._titles.update(titles)
        self.update()

    def set_thresholds(self, small_images_per_class: float, divergence: float) -> None:
        """Set the heuristic thresholds the grid lines stand for."""
        self._small_threshold = float(small_images_per_class)
        self._divergence_threshold = float(divergence)
        self.update()

    def set_point(self, images_per_class: float | None, divergence: float | None = None) -> None:
        """Place the dataset; `divergence=None` draws it as a vertical band (not measured)."""
        self._point = None if images_per_class is None else (images_per_class, divergence)
        self.update()

    def set_highlight(self, cell: str | None) -> None:
        """Outline the cell the core suggests."""
        self._highlight = cell
        self.update()

    def set_selected(self, cell: str | None) -> None:
        """Fill the cell whose strategy is applied now (it follows the slider)."""
        self._selected = cell
        self.update()

    def set_unmeasurable(self, reason: str | None) -> None:
        """Say on the matrix that similarity cannot be measured (e.g. a LayerNorm backbone)."""
        self._unmeasurable = reason
        self.update()

    # -- read back (tests, the panel) ---------------------------------------------------------
    def highlighted_cell(self) -> str | None:
        """The suggested cell, or None."""
        return self._highlight

    def selected_cell(self) -> str | None:
        """The cell matching the current settings, or None."""
        return self._selected

    def unmeasurable_reason(self) -> str | None:
        """The notice shown when similarity cannot be measured, or None."""
        return self._unmeasurable

    def point_position(self) -> QPointF | None:
        """Where the dataset point is painted, in widget coordinates (None when not placed)."""
        if self._point is None:
            return None
        plot = self._plot_rect()
        size, divergence = self._point
        x = plot.left() + plot.width() * size_fraction(size, self._small_threshold)
        frac = 0.5 if divergence is None else divergence_fraction(
            divergence, self._divergence_threshold)
        return QPointF(x, plot.top() + plot.height() * frac)

    def cell_rect(self, cell: str) -> QRectF:
        """The rectangle of a cell in widget coordinates."""
        row, col = CELL_GRID[cell]
        plot = self._plot_rect()
        w, h = plot.width() / 2, plot.height() / 2
        return QRectF(plot.left() + col * w, plot.top() + row * h, w, h)

    def cell_at(self, pos: QPointF) -> str | None:
        """The cell under a widget position, or None outside the grid."""
        return next((c for c in CELL_GRID if self.cell_rect(c).contains(pos)), None)

    # -- Qt -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        """Forward a click on a cell as `cell_clicked`."""
        cell = self.cell_at(event.position())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.cell_clicked.emit(cell)
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        """Paint cells, grid lines, axis labels and the point."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._tag_rects, self._text_rects = [], []
        for cell in CELL_GRID:
            self._paint_cell(painter, cell)
        self._paint_axes(painter)
        self._paint_point(painter)
        painter.end()

    # -- painting helpers ---------------------------------------------------------------------
    def _top_margin(self) -> int:
        # a notice (similarity not measurable) takes the title's place, on two lines
        return _MARGIN_TOP + (_MARGIN_TOP if self._unmeasurable else 0)

    def _plot_rect(self) -> QRectF:
        top = self._top_margin()
        return QRectF(_MARGIN_LEFT, top, self.width() - _MARGIN_LEFT - _MARGIN_RIGHT,
                      self.height() - top - _MARGIN_BOTTOM)

    def _paint_cell(self, painter: QPainter, cell: str) -> None:
        rect = self.cell_rect(cell).adjusted(2, 2, -2, -2)
        painter.setBrush(QColor(_CELL_COLOURS[cell]))
        suggested, current = cell == self._highlight, cell == self._selected
        painter.setPen(QPen(QColor("#9aa5b1"), 1))
        if current:  # the cell the settings correspond to: a blue frame
            painter.setPen(QPen(QColor("#1c7ed6"), 3))
        painter.drawRoundedRect(rect, 6, 6)
        if suggested:  # the measured suggestion: an orange dashed frame inside
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor("#d9480f"), 3, Qt.PenStyle.DashLine))
            painter.drawRoundedRect(rect.adjusted(4, 4, -4, -4), 5, 5)
        self._paint_cell_text(painter, cell, rect.adjusted(10, 8, -10, -8),
                              [t for t, on in (("★ suggested", suggested),
                                               ("✓ current", current)) if on], suggested)

    def _paint_cell_text(self, painter: QPainter, cell: str, inner: QRectF, tags: list[str],
                         suggested: bool) -> None:
        """Title on top, tags on their own bottom line, the strategy in between: the tags never
        cover the text, and text that does not fit ends in "…" (the tooltip has it whole)."""
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(QColor("#1f2933"))
        line = painter.fontMetrics().height()
        title = painter.fontMetrics().elidedText(cell.replace("-", " + "),
                                                 Qt.TextElideMode.ElideRight, int(inner.width()))
        top = Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft
        self._text_rects.append(painter.boundingRect(inner, top, title))
        painter.drawText(inner, top, title)
        body = inner.adjusted(0, line + 4, 0, 0)
        if tags:
            painter.setPen(QColor("#d9480f") if suggested else QColor("#1c7ed6"))
            flags = Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight
            text = painter.fontMetrics().elidedText("  ".join(tags), Qt.TextElideMode.ElideRight,
                                                    int(inner.width()))
            painter.drawText(inner, flags, text)
            self._tag_rects.append(painter.boundingRect(inner, flags, text))
            body.setBottom(inner.bottom() - line - 2)
        painter.setPen(QColor("#1f2933"))
        painter.setFont(self.font())
        wrap = top | Qt.TextFlag.TextWordWrap
        text = fit_wrapped(painter.fontMetrics(), self._titles.get(cell, ""), body)
        if text:
            self._text_rects.append(painter.boundingRect(body, wrap, text))
            painter.drawText(body, wrap, text)

    def _paint_axes(self, painter: QPainter) -> None:
        plot = self._plot_rect()
        metrics = painter.fontMetrics()
        title_box = QRectF(plot.left(), 2, plot.width(), self._top_margin() - 4)
        painter.setPen(QColor("#52606d"))
        if self._unmeasurable:  # in place of the title, so that no cell text is covered
            painter.setPen(QColor("#b35c00"))
            painter.drawText(title_box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
                             | Qt.TextFlag.TextWordWrap, self._unmeasurable)
            painter.setPen(QColor("#52606d"))
        else:
            painter.drawText(title_box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             metrics.elidedText(
                                 "rows: similarity to ImageNet (BN-statistics divergence)",
                                 Qt.TextElideMode.ElideRight, int(plot.width())))
        base = plot.bottom() + metrics.ascent() + 2
        small, large = (f"small (< {self._small_threshold:g})",
                        f"large (>= {self._small_threshold:g})")
        painter.drawText(QPointF(plot.left() + 4, base), small)
        painter.drawText(QPointF(plot.right() - metrics.horizontalAdvance(large) - 4, base), large)
        title = "columns: dataset size (median images/class)"
        painter.drawText(QPointF(plot.center().x() - metrics.horizontalAdvance(title) / 2,
                                 base + metrics.height() + 2), title)
        for row, label in enumerate(("similar", "dissimilar")):
            centre_y = plot.top() + plot.height() * (0.25 + 0.5 * row)
            label = metrics.elidedText(label, Qt.TextElideMode.ElideRight, int(plot.height() / 2))
            painter.save()
            painter.translate(plot.left() - 6, centre_y)
            painter.rotate(-90)
            painter.drawText(QPointF(-metrics.horizontalAdvance(label) / 2, 0), label)
            painter.restore()

    def _paint_point(self, painter: QPainter) -> None:
        pos = self.point_position()
        if pos is None:
            return
        painter.setPen(QPen(QColor("#ffffff"), 2))
        painter.setBrush(QColor("#d9480f"))
        if self._point is not None and self._point[1] is None:
            # size known, similarity not: a dashed vertical line rather than a false point
            painter.setPen(QPen(QColor("#d9480f"), 2, Qt.PenStyle.DashLine))
            plot = self._plot_rect()
            painter.drawLine(QPointF(pos.x(), plot.top()), QPointF(pos.x(), plot.bottom()))
            return
        painter.drawEllipse(pos, 7, 7)
        label = self.point_label()
        box = self._label_box(pos, painter.fontMetrics().horizontalAdvance(label) + 8,
                              painter.fontMetrics().height() + 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255, 210))
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(QColor("#1f2933"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)

    def _label_box(self, pos: QPointF, width: float, height: float) -> QRectF:
        """Where the point's label goes: next to it (below, above, beside, a line further off,
        on the line between the rows), the first place inside the plot that covers no cell's
        tag and no cell's words; failing that, the place covering the fewest."""
        plot = self._plot_rect()
        x, y = pos.x(), pos.y()
        candidates = [QRectF(x - width / 2, y + 10, width, height),
                      QRectF(x - width / 2, y - 10 - height, width, height),
                      QRectF(x - 12 - width, y - height / 2, width, height),
                      QRectF(x + 12, y - height / 2, width, height)]
        for dy in (10.0, -10 - height, 12 + height, -12 - 2 * height):
            candidates += [QRectF(x - width + 10, y + dy, width, height),
                           QRectF(x - 10, y + dy, width, height)]
        # on the line between the rows: the cells' words keep 10 px off their borders
        middle = plot.center().y() - height / 2
        candidates += [QRectF(x + dx, middle, width, height) for dx in
                       (-width / 2, -width + 10, -10.0)]
        inside = [box for box in candidates if plot.contains(box)] or candidates[:1]
        return min(inside, key=lambda box: (self._covered(box, self._tag_rects),
                                            self._covered(box, self._text_rects)))

    @staticmethod
    def _covered(box: QRectF, rects: list[QRectF]) -> float:
        """How much of `rects` the box covers (area)."""
        total = 0.0
        for rect in rects:
            overlap = box.intersected(rect)
            total += max(overlap.width(), 0.0) * max(overlap.height(), 0.0)
        return total

    def label_rect(self) -> QRectF | None:
        """Where "your dataset" was last drawn (for tests), or None."""
        pos = self.point_position()
        if pos is None or self._point is None or self._point[1] is None:
            return None
        metrics = self.fontMetrics()
        return self._label_box(pos, metrics.horizontalAdvance(self.point_label()) + 8,
                               metrics.height() + 2)

    def point_label(self) -> str:
        """The point's label: "your dataset", marked borderline when its measured similarity
        is too close to the threshold to put it on one side."""
        divergence = None if self._point is None else self._point[1]
        if divergence is not None and is_borderline(divergence, self._divergence_threshold):
            return "your dataset (borderline)"
        return "your dataset"

    def tag_rects(self) -> list[QRectF]:
        """Where the cells' "suggested" / "current" tags were last drawn."""
        return list(self._tag_rects)

    def text_rects(self) -> list[QRectF]:
        """Where the cells' titles and strategy texts were last drawn."""
        return list(self._text_rects)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        """The hovered cell's whole strategy title as the tooltip (the cell may shorten it)."""
        cell = self.cell_at(event.position())
        self.setToolTip("" if cell is None else
                        f"{cell.replace('-', ' + ')}: {self._titles.get(cell, '')}")
        super().mouseMoveEvent(event)

