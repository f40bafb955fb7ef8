"""The weights choice: download with progress and cancel, and a plain failure when offline."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtWidgets import QMessageBox

import workbench_ui.weights_view as weights_view
from workbench.models.registry import backbone_info
from workbench.models.weights import DownloadProgress, network_available, resolve_weights
from workbench_ui.weights_view import WeightsView


@pytest.fixture
def view(qtbot):
    widget = WeightsView()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_cached_weights_need_no_download(view):
    view.show_weights(backbone_info("mobilenet_v2"), "IMAGENET1K_V1")
    assert view.status.text().startswith("✓ IMAGENET1K_V1 is on disk")
    assert view.download_button.isHidden()
    choices = [view.combo.itemData(i) for i in range(view.combo.count())]
    assert choices[-2:] == ["random", "__import__"]


def test_download_shows_progress_and_cancel_stops_it(view, qtbot, monkeypatch):
    def slow_download(backbone: str, spec: str, stop: threading.Event | None = None):
        for i in range(1, 200):
            if stop is not None and stop.is_set():
                return
            time.sleep(0.01)
            yield DownloadProgress("file:///x", i * 1000, 200_000, None)

    monkeypatch.setattr(weights_view, "download_weights", slow_download)
    view.show_weights(backbone_info("resnet18"), "DEFAULT")
    if view.download_button.isHidden():
        pytest.skip("resnet18 weights are already on disk here")
    view.download_button.click()
    assert view.is_busy() and view.progress.isVisibleTo(view)
    qtbot.waitUntil(lambda: view.progress.maximum() == 1000, timeout=5_000)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=5_000)
    assert "Cancelled" in view.status.text()
    assert not view.progress.isVisibleTo(view)


def test_offline_download_fails_fast_and_plainly(view, qtbot, monkeypatch):
    info = backbone_info("resnet18")
    if info.weights_cached or network_available(resolve_weights("resnet18", "DEFAULT").url):
        pytest.skip("needs a machine without network and without resnet18 weights")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda _p, _title, text, *a: shown.append(text)))
    view.show_weights(info, "DEFAULT")
    start = time.monotonic()
    view.download_button.click()
    qtbot.waitUntil(lambda: bool(shown) and not view.is_busy(), timeout=10_000)
    assert time.monotonic() - start < 8
    assert shown[0].startswith("no network") and "import a weights file" in shown[0]
