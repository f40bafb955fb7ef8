"""`run_app`: start the Qt application and show the main window."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ui.main_window import MainWindow
from ui.platform_check import display_problem
from ui.state import AppState
from workbench.config import RunConfig, load_config
from workbench.errors import UserError
from workbench.paths import resources_dir

APP_NAME = "Transfer Workbench"
ORG_NAME = "transfer-workbench"
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

    The QApplication must exist already.
    """
    window = MainWindow(AppState(default_config()))
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
    code = app.exec()
    window.shutdown()  # closed by the system without a closeEvent: still join the workers
    return int(code)
