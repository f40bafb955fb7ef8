"""The stage diagram: one block per stage, stem at the top, head at the bottom.

Each block shows the stage's parameter count, whether it is frozen or trainable, its learning rate
and its normalization layers. The numbers come from `TransferModel.stage_summary`; the view only
paints them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

_FROZEN = QColor("#cfd8e3")
_TRAINABLE = QColor("#b7e4c7")
_HEAD = QColor("#ffd8a8")
_ROW_HEIGHT, _ROW_GAP, _MIN_ROW = 40, 4, 18


@dataclass(frozen=True)
class StageRow:
    """What one block says, already formatted for display."""

    name: str
    params: str
    trainable: bool
    lr: str
    norm: str
    is_head: bool = False


def format_params(count: int) -> str:
    """A parameter count the way people say it: 3.5 M, 12 k, 0."""
    if count >= 1_000_000:
        return f"{count / 1e6:.1f} M"
    if count >= 1_000:
        return f"{count / 1e3:.0f} k"
    return str(count)


def format_norm(norm_layers: Any) -> str:
    """Norm layers as `3 BatchNorm2d`, from a count, a list of names or a name -> count map."""
    if not norm_layers:
        return "no norm"
    if isinstance(norm_layers, str):
        return norm_layers
    if isinstance(norm_layers, int):
        return f"{norm_layers} norm"
    counts = Counter(norm_layers) if not isinstance(norm_layers, dict) else norm_layers
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def rows_from_summary(summary: Sequence[Any], head_outputs: int | None = None) -> list[StageRow]:
    """Turn `StageInfo`s (name, params, trainable, lr, norm_layers) into display rows; the head
    row names its number of outputs (the classes) when `head_outputs` is given."""
    rows = []
    for i, info in enumerate(summary):
        is_head = i == len(summary) - 1 and "head" in info.name.lower()
        lr = f"lr {info.lr:.2g}" if info.trainable and info.lr else "frozen"
        name = f"{info.name} → {head_outputs} classes" if is_head and head_outputs else info.name
        rows.append(StageRow(name, format_params(info.params), bool(info.trainable), lr,
                             format_norm(info.norm_layers), is_head))
    return rows


class StageView(QWidget):
    """Paints the stages of the chosen backbone as a column of coloured blocks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[StageRow] = []
        self._caption = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setMinimumWidth(180)

    def set_summary(self, summary: Sequence[Any], caption: str = "",
                    head_outputs: int | None = None) -> None:
        """Show a `stage_summary` (stem first, head last) with a caption such as the norm type,
        the head with its `head_outputs` classes."""
        self._rows = rows_from_summary(summary, head_outputs)
        self._caption = caption
        self.updateGeometry()
        self.update()

    def rows(self) -> list[StageRow]:
        """The blocks as displayed (for tests and accessibility)."""
        return list(self._rows)

    def frozen_count(self) -> int:
        """How many backbone stages are shown frozen."""
        return sum(1 for row in self._rows if not row.trainable and not row.is_head)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        """Tall enough for every block at full height."""
        return QSize(320, 50 + len(self._rows) * (_ROW_HEIGHT + _ROW_GAP))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        """Paint the caption, then one block per stage."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QColor("#52606d"))
        line = painter.fontMetrics().height()
        painter.drawText(QRectF(4, 2, self.width() - 8, line), Qt.AlignmentFlag.AlignLeft,
                         self._caption or "stem (input) at the top, head at the bottom")
        self._paint_legend(painter, 4 + line + 2, line)
        header = 2 * line + 10
        if self._rows:
            free = self.height() - header - _ROW_GAP * len(self._rows)
            height = max(_MIN_ROW, min(_ROW_HEIGHT, free / len(self._rows)))
            for i, row in enumerate(self._rows):
                top = header + i * (height + _ROW_GAP)
                self._paint_row(painter, QRectF(4, top, self.width() - 8, height), row)
        painter.end()

    def _paint_legend(self, painter: QPainter, top: float, line: float) -> None:
        x = 4.0
        for colour, text in ((_FROZEN, "frozen"), (_TRAINABLE, "trainable"), (_HEAD, "head")):
            painter.setBrush(colour)
            painter.setPen(QPen(colour.darker(140), 1))
            painter.drawRoundedRect(QRectF(x, top + 2, line - 4, line - 4), 2, 2)
            painter.setPen(QColor("#52606d"))
            painter.drawText(QPointF(x + line, top + painter.fontMetrics().ascent()), text)
            x += line + painter.fontMetrics().horizontalAdvance(text) + 12

    def _paint_row(self, painter: QPainter, rect: QRectF, row: StageRow) -> None:
        fill = _HEAD if row.is_head else (_TRAINABLE if row.trainable else _FROZEN)
        painter.setBrush(fill)
        painter.setPen(QPen(fill.darker(140), 1))
        painter.drawRoundedRect(rect, 5, 5)
        inner = rect.adjusted(8, 2, -8, -2)
        two_lines = inner.height() >= 2 * painter.fontMetrics().height()
        top = inner.adjusted(0, 0, 0, -inner.height() / 2) if two_lines else inner
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(QColor("#1f2933"))
        left = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        painter.drawText(top, left, row.name)
        name_width = painter.fontMetrics().horizontalAdvance(row.name)
        painter.setFont(self.font())
        params = f"{row.params} params"
        painter.drawText(top, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, params)
        detail = f"{row.lr} · {row.norm}"
        # on one line, the detail takes the room between the name and the parameter count
        params_width = painter.fontMetrics().horizontalAdvance(params)
        bottom = inner.adjusted(0, inner.height() / 2, 0, 0) if two_lines else inner.adjusted(
            max(inner.width() * 0.3, name_width + 8), 0, -(params_width + 8), 0)
        painter.setPen(QColor("#3e4c59"))
        elided = painter.fontMetrics().elidedText(detail, Qt.TextElideMode.ElideRight,
                                                  int(bottom.width()))
        painter.drawText(bottom, left, elided)
