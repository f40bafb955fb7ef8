"""An inline notice over the charts: errors and warnings reach the user without a modal dialog.

A modal box would block the event loop's user input while the run's last events arrive; an inline
banner keeps the window live and stays until dismissed or the next run starts. It floats over the
top of the charts rather than taking a row of the layout, so nothing moves when it appears.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

OOM_HINT = "try a smaller batch size (or a smaller input size, or freeze more stages)"
STYLES = {
    "error": "background:#fdecea; color:#611a15; border:1px solid #f5c2c0; border-radius:4px;",
    "info": "background:#e8f4fd; color:#0d3c61; border:1px solid #b6dcf7; border-radius:4px;",
}
OVERLAY_MARGIN = 6  # pixels between a floating notice and its host's edges


def explain_failure(message: str) -> str:
    """The engine's message, with advice added when the cause is a known one."""
    lowered = message.lower()
    if "out of memory" in lowered and "batch size" not in lowered:
        return f"{message.rstrip('. ')}. Out of memory: {OOM_HINT}."
    return message


class NoticeBanner(QFrame):
    """A one-line coloured message with a close button; hidden when there is nothing to say."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.kind = ""
        self._host: QWidget | None = None
        self.hide()

    def float_over(self, host: QWidget) -> None:
        """Float over the top of `host` instead of taking a place in a layout: showing or
        hiding the notice then moves nothing under the user's cursor (a banner in the layout
        pushed the whole form down when a typed value was refused)."""
        self.setParent(host)
        self._host = host
        host.installEventFilter(self)
        self._place()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        """Follow the host's width."""
        if watched is self._host and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        if self._host is None:
            return
        width = max(self._host.width() - 2 * OVERLAY_MARGIN, 120)
        height = (self.heightForWidth(width) if self.hasHeightForWidth()
                  else self.sizeHint().height())
        self.setGeometry(OVERLAY_MARGIN, OVERLAY_MARGIN, width, max(height, 0))
        self.raise_()

    def show_error(self, message: str) -> None:
        """Show an error in red."""
        self._show("error", message)

    def show_info(self, message: str) -> None:
        """Show a notice in blue."""
        self._show("info", message)

    def _show(self, kind: str, message: str) -> None:
        self.kind = kind
        self.setStyleSheet(f"NoticeBanner {{{STYLES[kind]}}} QLabel {{border:none;}}")
        self.label.setText(message)
        self.show()
        self._place()  # a floating notice's height follows its text

    def text(self) -> str:
        """The message shown ("" when hidden)."""
        return self.label.text() if not self.isHidden() else ""

    def clear(self) -> None:
        """Hide the banner."""
        self.kind = ""
        self.label.clear()
        self.hide()
