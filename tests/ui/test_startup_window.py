"""A fast start: the window shows with the Dataset tab working while torch loads behind it.

The application builds its window with `defer_panels`: the Model and Train tabs show a
"Loading…" page until a worker has imported torch, then the real panels take their place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from workbench_ui import main_window as main_window_module
from workbench_ui import workers
from workbench_ui.app import create_window
from workbench_ui.main_window import LoadingView, MainWindow
from workbench_ui.model_panel import ModelPanel
from workbench_ui.predict_panel import PredictPanel
from workbench_ui.results_panel import ResultsPanel
from workbench_ui.state import AppState
from workbench_ui.train_panel import TrainPanel


def _tabs(win: MainWindow) -> list[tuple[str, type]]:
    return [(win.tabs.tabText(i), type(win.tabs.widget(i))) for i in range(win.tabs.count())]


def test_the_window_shows_loading_pages_then_the_panels(qtbot, demo_root):
    win = create_window(demo_root)
    qtbot.addWidget(win)
    win.show()
    assert [title for title, _ in _tabs(win)] == ["Dataset", "Model", "Train", "Results",
                                                  "Predict"]
    assert [kind for _, kind in _tabs(win)][1:] == [LoadingView] * 4
    assert "Loading the Model tab" in win.tabs.widget(1).label.text()
    win.tabs.setCurrentIndex(1)  # the user looks at the Model tab while it loads
    with qtbot.waitSignals([win.panels_ready, win.dataset_panel.opened], timeout=60_000):
        pass
    assert _tabs(win) == [("Dataset", type(win.dataset_panel)), ("Model", ModelPanel),
                          ("Train", TrainPanel), ("Results", ResultsPanel),
                          ("Predict", PredictPanel)]
    assert win.tabs.currentIndex() == 1  # still on the Model tab, now the real one
    assert len(win.panels) == 5 and win.panels_loaded
    win.close()
    assert workers.live_workers() == []


def test_closing_while_the_panels_load_joins_the_loader_and_builds_nothing(qtbot):
    win = MainWindow(AppState(), defer_panels=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.wait(1)  # the loader starts once the event loop runs
    win.close()
    assert workers.live_workers() == []
    qtbot.wait(50)  # a queued "finished" must not build panels into a closed window
    assert win.panels == [win.dataset_panel] and not win.panels_loaded


def test_a_tab_that_cannot_load_says_why(qtbot, monkeypatch):
    monkeypatch.setattr(main_window_module, "SLOW_IMPORTS", ("workbench.no_such_module",))
    win = MainWindow(AppState(), defer_panels=True)
    qtbot.addWidget(win)
    win.show()
    page = win.tabs.widget(1)
    qtbot.waitUntil(lambda: "could not be loaded" in page.label.text(), timeout=10_000)
    assert "no_such_module" in page.label.text() and page.bar.isHidden()
    assert not win.panels_loaded


def test_the_window_module_imports_no_torch():
    """What the first paint needs (the app, the window, the Dataset tab) must not wait for
    torch; checked in a fresh interpreter, since this one has imported torch already."""
    code = ("import json, sys\nimport workbench_ui.app\n"
            "print(json.dumps([m for m in ('torch', 'torchvision', 'sklearn') "
            "if m in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert json.loads(done.stdout) == []
