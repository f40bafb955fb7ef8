"""The Predict tab: dropped images get their top-k bars and a heatmap while the window stays
live; File ▸ Export writes a model from the GUI."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent

import workbench.deploy.explain as explain_module
from tests.deploy_runs import DeployRuns, trained_runs
from workbench_ui.export_dialog import ExportDialog
from workbench_ui.main_window import MainWindow
from workbench_ui.predict_panel import PredictPanel
from workbench_ui.state import AppState


@pytest.fixture(scope="session")
def runs(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DeployRuns:
    return trained_runs(demo_root, tmp_path_factory.mktemp("deploy"))


class Ticks:
    """Counts the event loop's turns while a test waits: a loop blocked by the work never
    turns. The longest pause is kept for a failure message, never asserted against a clock
    (shared machines are noisy)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.count = 0
        self.longest = 0.0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        self.count += 1
        self.longest = max(self.longest, now - self.last)
        self.last = now


def record_threads(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> set[int]:
    """Wraps `module.name` (the real function still runs) to record which threads call it."""
    real = getattr(module, name)
    seen: set[int] = set()

    def recorded(*args: object, **kwargs: object) -> object:
        seen.add(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return seen


def drop(window: MainWindow, paths: list[Path]) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    return event


def test_dropped_images_show_top_k_and_a_heatmap(qtbot, runs: DeployRuns, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    classified = record_threads(monkeypatch, explain_module, "iter_predict")
    explained = record_threads(monkeypatch, explain_module, "explain")
    window = MainWindow(AppState())
    qtbot.addWidget(window)
    window.show()
    panel = next(p for p in window.panels if isinstance(p, PredictPanel))
    window.tabs.setCurrentWidget(panel)
    panel.set_run(runs.linear, load=False)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    images = runs.val_images[::17][:3]
    ticks = Ticks()
    with qtbot.waitSignal(panel.finished, timeout=90_000):
        event = drop(window, [*images, bad])
    ticks.timer.stop()
    assert event.isAccepted()
    assert window.dataset_panel.is_scanning() is False  # the drop did not open a dataset
    assert [Path(c.prediction.path) for c in panel.cards] == images
    for card in panel.cards:
        assert len(card.top_k.labels) == 5 and card.top_k.probs == sorted(card.top_k.probs,
                                                                          reverse=True)
        assert card.top_k.labels[0] == card.prediction.label
        heat = card.explanation.heatmap
        assert heat.shape == (32, 32) and heat.min() >= 0 and heat.max() <= 1
        assert not card.image_label.pixmap().isNull()
    # at 32 px the last stage is 1x1: the heatmap comes from a stage with a real map
    assert any(c.explanation.heatmap.max() - c.explanation.heatmap.min() > 0.5
               for c in panel.cards)
    assert "broken.png" in panel.notice.text()
    # classifying and explaining run off the GUI thread, and the window kept turning meanwhile
    assert classified and explained and threading.main_thread().ident not in classified | explained
    assert ticks.count > 0, f"the window froze for {ticks.longest:.2f} s"
    plain = panel.cards[0].image_label.pixmap().toImage()
    panel.heatmap_check.setChecked(False)
    assert panel.cards[0].image_label.pixmap().toImage() != plain
    window.close()


def test_a_run_that_cannot_load_is_said_inline(qtbot, tmp_path: Path) -> None:
    panel = PredictPanel(AppState())
    qtbot.addWidget(panel)
    panel.set_run(tmp_path)  # no config.toml
    qtbot.waitUntil(lambda: "not a run folder" in panel.notice.text(), timeout=30_000)
    assert panel.cards == []
    panel.shutdown()


def test_export_dialog_writes_a_torchvision_model(qtbot, runs: DeployRuns,
                                                  tmp_path: Path) -> None:
    dialog = ExportDialog(str(runs.linear))
    qtbot.addWidget(dialog)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("torchvision"))
    dialog.out_edit.setText(str(tmp_path))
    dialog.start_export()
    qtbot.waitUntil(lambda: dialog.written is not None or dialog.worker.error is not None,
                    timeout=60_000)
    assert dialog.written == tmp_path / "model.pth"
    assert dialog.card == tmp_path / "MODEL_CARD-model.pth.md"
    assert {p.name for p in tmp_path.iterdir()} == {"model.pth", "model.json",
                                                    "MODEL_CARD-model.pth.md"}
    # the torchvision model has no normalization inside: the dialog says the client normalizes
    assert str(dialog.card) in dialog.status.text()
    assert "then normalized with mean / std (the model does not normalize)" in dialog.status.text()
    assert dialog.shutdown()
