"""`run_app`: start the Qt application and show the main window."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from workbench.config import RunConfig, load_config
from workbench.errors import UserError
from workbench.paths import resources_dir
from workbench_ui.main_window import MainWindow
from workbench_ui.platform_check import display_problem
from workbench_ui.state import AppState

APP_NAME = "Transfer Workbench"
ORG_NAME = "transfer-workbench"
# Set by benchmarks/startup.py: print when the window is shown and when every tab is built, quit.
STARTUP_PROBE_ENV = "WORKBENCH_STARTUP_PROBE"
log = logging.getLogger(__name__)


def configure_application(app: QApplication) -> None:
    """Names (for QSettings), icon, stylesheet and plot colours of the application."""
    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    resources = resources_dir()
    icon = resources / "icons" / "workbench.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    style = resources / "style.qss"
    if style.exists():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    # plots match the light stylesheet
    pg.setConfigOptions(background="w", foreground=(60, 60, 60), antialias=True)


def default_config() -> RunConfig:
    """The configuration a new session starts from (resources/default_config.toml)."""
    path = resources_dir() / "default_config.toml"
    try:
        return load_config(path)
    except UserError as exc:  # a broken install should still open, with built-in defaults
        log.warning("ignoring %s: %s", path, exc)
        return RunConfig()


def create_window(path: str | Path | None = None) -> MainWindow:
    """A configured main window that starts opening `path` (or the recent dataset, or the demo).

    The QApplication must exist already. The tabs that need torch are built once it is
    imported in the background, so the window can show at once.
    """
    window = MainWindow(AppState(default_config()), defer_panels=True)
    window.open_initial(path)
    return window


def run_app(path: str | Path | None = None) -> int:
    """Open the workbench window (on `path` if given) and run until it closes; the exit code."""
    problem = display_problem()
    if problem and QApplication.instance() is None:
        raise UserError(problem)  # instead of Qt's plugin error and an abort
    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_application(app)
    window = create_window(path)
    window.show()
    if os.environ.get(STARTUP_PROBE_ENV):
        _StartupProbe(app, window)
    code = app.exec()
    window.shutdown()  # closed by the system without a closeEvent: still join the workers
    return int(code)


class _StartupProbe(QObject):
    """For benchmarks/startup.py: prints "startup: shown" at the window's first paint,
    "startup: ready <longest GUI-thread stall in s>" once the tabs needing torch are built,
    then quits. A 10 ms heartbeat measures how long the event loop was held up meanwhile."""

    def __init__(self, app: QApplication, window: MainWindow) -> None:
        super().__init__(window)
        self._app, self._window = app, window
        self._last, self.stall = 0.0, 0.0
        self._beat = QTimer(self, interval=10, timeout=self._heartbeat)
        window.installEventFilter(self)
        if window.panels_loaded:
            QTimer.singleShot(0, self._ready)
        else:
            window.panels_ready.connect(self._ready)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Report the first paint of the window, and start the heartbeat."""
        if event.type() == QEvent.Type.Paint and not self._beat.isActive():
            print("startup: shown", flush=True)
            self._last = time.perf_counter()
            self._beat.start()
            self._window.removeEventFilter(self)
        return False

    def _heartbeat(self) -> None:
        now = time.perf_counter()
        self.stall, self._last = max(self.stall, now - self._last), now

    def _ready(self) -> None:
        self._heartbeat()
        print(f"startup: ready {self.stall:.3f}", flush=True)
        QTimer.singleShot(0, self._app.quit)
