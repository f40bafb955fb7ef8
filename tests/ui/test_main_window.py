"""The main window: opening, recent datasets, configs, drag and drop, and a clean close."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from workbench.config import RunConfig, load_config
from workbench.errors import UserError
from workbench_ui import workers
from workbench_ui.main_window import MAX_RECENT, RECENT_KEY, MainWindow
from workbench_ui.state import AppState


@pytest.fixture
def window(qtbot) -> MainWindow:
    """A shown main window with an empty recent list; closed (and joined) at the end."""
    win = MainWindow(AppState())
    win.settings.setValue(RECENT_KEY, [])
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def wait_opened(qtbot, win: MainWindow, source: str | Path) -> None:
    with qtbot.waitSignal(win.dataset_panel.opened, timeout=30_000):
        win.open_dataset(source)


def test_tabs_menus_and_toolbar(window):
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == [
        "Dataset", "Model", "Train", "Results", "Predict"]
    texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    for expected in ("Open folder…", "Open CSV…", "Open recent", "Open config…",
                     "Save config…", "Export model…", "Quit"):
        assert expected in texts


def test_closing_during_a_scan_leaves_no_thread_running(qtbot, demo_root, held_checks):
    win = MainWindow(AppState())
    qtbot.addWidget(win)
    win.show()
    wait_opened(qtbot, win, demo_root)  # the checks now wait in a worker until stopped
    assert win.dataset_panel.is_scanning()
    win.close()
    assert workers.live_workers() == []


def test_recent_datasets_are_remembered_pruned_and_capped(qtbot, window, demo_root, tmp_path):
    wait_opened(qtbot, window, demo_root)
    assert window.recent_datasets()[0] == str(demo_root.resolve())
    gone = tmp_path / "deleted dataset"
    window.settings.setValue(RECENT_KEY, [str(gone), str(demo_root)])
    assert window.recent_datasets() == [str(demo_root)]  # the missing one is pruned
    folders = []
    for i in range(MAX_RECENT + 2):
        folders.append(tmp_path / f"d{i}")
        folders[-1].mkdir()
        window._remember(str(folders[-1]))
    recent = window.recent_datasets()
    assert len(recent) == MAX_RECENT and recent[0] == str(folders[-1].resolve())
    window._fill_recent_menu()
    assert window.recent_menu.isEnabled()
    window.dataset_panel.shutdown()


def test_open_initial_uses_the_most_recent_dataset_else_the_demo(qtbot, window, demo_root):
    window.settings.setValue(RECENT_KEY, [str(demo_root)])
    with qtbot.waitSignal(window.dataset_panel.opened, timeout=30_000) as opened:
        window.open_initial()
    assert opened.args == [str(demo_root)]
    window.settings.setValue(RECENT_KEY, [])
    with qtbot.waitSignal(window.dataset_panel.opened, timeout=30_000) as opened:
        window.open_initial()
    assert opened.args == ["demo"]
    assert "demo" in window.windowTitle()


def test_config_round_trip_and_a_bad_config_in_a_dialog(qtbot, window, tmp_path, monkeypatch):
    window.state.update_config(train={"epochs": 3, "lr": 0.05})
    path = tmp_path / "run.toml"
    assert window.save_config(path)
    assert load_config(path).train.epochs == 3
    window.state.set_config(RunConfig())
    assert window.open_config(path)
    assert window.state.config.train.lr == 0.05
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = 'many'\n", encoding="utf-8")
    assert not window.open_config(bad)
    assert warnings and "train.epochs" in warnings[0]
    assert window.state.config.train.epochs == 3  # unchanged


def test_dropping_a_folder_opens_it(qtbot, window, demo_root):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_root))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.dataset_panel.opened, timeout=30_000) as opened:
        window.dropEvent(drop)
    assert opened.args == [str(demo_root)]
    assert drop.isAccepted()


def test_a_drag_over_the_histogram_or_the_lists_is_accepted(qtbot, window, demo_root):
    """Drag events reach the window through its children; a move that nobody accepts shows
    the "forbidden" cursor over most of the window."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_root))])
    panel = window.dataset_panel
    for target in (panel.histogram.plot.viewport(), panel.thumbnails.list.viewport(),
                   panel.problems.table.viewport()):
        enter, move = (
            kind(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                 Qt.KeyboardModifier.NoModifier) for kind in (QDragEnterEvent, QDragMoveEvent))
        QApplication.sendEvent(target, enter)
        QApplication.sendEvent(target, move)
        assert enter.isAccepted() and move.isAccepted()


def test_a_busy_panel_asks_before_quitting(qtbot, monkeypatch):
    win = MainWindow(AppState())
    qtbot.addWidget(win)
    win.show()
    train = next(p for p in win.panels if win.tabs.tabText(win.tabs.indexOf(p)) == "Train")
    monkeypatch.setattr(train, "busy", lambda: True)
    questions: list[str] = []
    answer = QMessageBox.StandardButton.No
    monkeypatch.setattr(QMessageBox, "question", lambda *a: questions.append(a[2]) or answer)
    win.close()
    assert questions == ["Training is running. Stop it and quit?"]
    assert win.isVisible()  # "No" keeps the window open
    answer = QMessageBox.StandardButton.Yes
    win.close()
    assert not win.isVisible()


def test_state_validates_config_updates():
    state = AppState()
    with pytest.raises(UserError, match="train.lr"):
        state.update_config(train={"lr": -1.0})
    with pytest.raises(UserError, match="unknown config key train.speed"):
        state.update_config(train={"speed": 2})
    assert state.config.train.lr == RunConfig().train.lr
