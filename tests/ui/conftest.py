"""GUI test fixtures: offscreen Qt, and a check that no QThread outlives its test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import traceback  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from weakref import WeakKeyDictionary  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings, QThread  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """QSettings (recent datasets, geometry) go to a temporary folder, not the user's."""
    QCoreApplication.setOrganizationName("transfer-workbench-tests")
    QCoreApplication.setApplicationName("Transfer Workbench Tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    folder = str(tmp_path_factory.mktemp("qsettings"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)


@pytest.fixture(autouse=True)
def _dangling_qthreads(monkeypatch: pytest.MonkeyPatch, qtbot) -> Iterator[None]:
    """Fail a test that leaves a QThread running (after napari's fixture of the same name).

    Every `QThread.start` is recorded with the stack that called it, so a failure says which
    code started the thread that was never joined.
    """
    started: WeakKeyDictionary[QThread, str] = WeakKeyDictionary()
    base_start = QThread.start

    def recording_start(self: QThread, *args: object) -> None:
        started[self] = "".join(traceback.format_stack(limit=8))
        base_start(self, *args)

    monkeypatch.setattr(QThread, "start", recording_start)
    yield
    dangling = []
    for thread, stack in list(started.items()):
        try:
            # a thread that is just past its last signal gets a moment to end
            if thread.isRunning() and not thread.wait(500):
                dangling.append(stack)
        except RuntimeError:  # the C++ object is already deleted: not running
            continue
    if dangling:  # end them anyway, so the rest of the session does not crash at exit
        from workbench_ui.workers import stop_all

        stop_all(5.0)
    assert not dangling, "QThread left running, started at:\n" + "\n---\n".join(dangling)


@pytest.fixture
def model_panel(qtbot):
    """A Model panel at 1280x800 on a default config (64 px input, a 16-image advice sample),
    with its skeleton model built; shut down after the test."""
    from workbench.config import RunConfig
    from workbench_ui.model_panel import ModelPanel
    from workbench_ui.state import AppState

    config = RunConfig()
    config.data.input_size = 64  # demo digits are 28 px: no need for 224
    config.advice.sample_size = 16
    widget = ModelPanel(AppState(config))
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    qtbot.waitUntil(lambda: widget.model is not None, timeout=10_000)
    yield widget
    widget.shutdown()


@pytest.fixture
def held_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Dataset tab's image checks wait after the listing until the scan is stopped, so a
    test sees a scan in progress however fast the machine checks the demo's images."""
    from workbench.data import checks
    from workbench_ui import dataset_panel

    def listing_then_wait(source, data, stop):
        events = checks.iter_open_and_check(source, data, stop=stop)
        yield next(events)  # the Listed event: the dataset is shown
        stop.wait(30.0)
        yield from events

    monkeypatch.setattr(dataset_panel, "iter_open_and_check", listing_then_wait)
