"""The window fits a 1024x700 screen (issue 16): no tab forces it wider, no child overlaps."""

from __future__ import annotations

from itertools import combinations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QWidget

from workbench_ui.main_window import MainWindow
from workbench_ui.state import AppState

SMALL_SCREEN = (1024, 700)


@pytest.fixture
def window(qtbot, demo_root):
    """The main window with the demo open and every tab built."""
    win = MainWindow(AppState())
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.dataset_panel.opened, timeout=30_000):
        win.open_dataset(demo_root)
    qtbot.waitUntil(lambda: not win.dataset_panel.is_scanning(), timeout=60_000)
    yield win
    win.close()


def laid_out_children(parent: QWidget) -> list[QWidget]:
    """The visible widgets a layout places directly in `parent`."""
    layout = parent.layout()
    if layout is None:
        return []
    return [w for w in parent.findChildren(QWidget, options=_direct())
            if w.isVisible() and layout.indexOf(w) >= 0]


def _direct():
    from PySide6.QtCore import Qt

    return Qt.FindChildOption.FindDirectChildrenOnly


def layout_problems(root: QWidget) -> list[str]:
    """Siblings that overlap, and widgets squeezed narrower or shorter than their minimum."""
    problems = []
    for parent in [root, *root.findChildren(QWidget)]:
        if not parent.isVisible():
            continue
        children = laid_out_children(parent)
        for a, b in combinations(children, 2):
            if a.geometry().intersects(b.geometry()):
                problems.append(f"{_name(a)} {a.geometry()} overlaps {_name(b)} {b.geometry()}")
        for child in children:
            # a maximum set on purpose (a spin box for small numbers) bounds what it needs
            need = child.minimumSizeHint().expandedTo(child.minimumSize()).boundedTo(
                child.maximumSize())
            if child.width() < need.width() or child.height() < need.height():
                problems.append(f"{_name(child)} is {child.size()}, needs {need}")
    return problems


def _name(widget: QWidget) -> str:
    text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
    return f"{type(widget).__name__}({text[:30]!r})" if text else type(widget).__name__


def test_the_window_fits_1024x700_and_no_tab_overlaps(qtbot, window):
    hint = window.minimumSizeHint()
    assert hint.width() <= SMALL_SCREEN[0] and hint.height() <= SMALL_SCREEN[1], hint
    window.resize(*SMALL_SCREEN)
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        qtbot.wait(300)  # layouts settle over a few posted events (scroll areas last)
        assert window.size().toTuple() == SMALL_SCREEN, window.tabs.tabText(i)
        problems = layout_problems(window.tabs.currentWidget())
        assert not problems, f"{window.tabs.tabText(i)}: " + "\n".join(problems)


def test_the_model_tab_columns_do_not_overlap_at_1024(qtbot, window):
    window.resize(*SMALL_SCREEN)
    window.tabs.setCurrentIndex(1)
    qtbot.wait(300)
    panel = window.tabs.currentWidget()
    splitter = panel.layout().itemAt(0).widget()
    columns = [QRect(splitter.widget(i).mapTo(panel, splitter.widget(i).rect().topLeft()),
                     splitter.widget(i).size()) for i in range(splitter.count())]
    for a, b in combinations(columns, 2):
        assert not a.intersects(b)
    assert all(c.right() <= panel.width() for c in columns)


def test_at_1280x800_the_stage_list_shows_every_stage_whole(qtbot, window):
    """Issue 16: under a long "Next run" note the Stages box showed a row and a half."""
    window.resize(1280, 800)
    window.tabs.setCurrentIndex(1)
    panel = window.tabs.currentWidget()
    qtbot.waitUntil(lambda: panel.model is not None, timeout=30_000)
    qtbot.wait(300)
    stages = panel.stages
    viewport = stages.parentWidget()
    assert len(stages.rows()) == panel.model.num_stages + 1  # the head too
    assert viewport.height() >= stages.sizeHint().height(), (viewport.height(),
                                                            stages.sizeHint().height())
