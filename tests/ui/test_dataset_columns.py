"""An unrecognised CSV header in the Dataset tab: the notice names what was found, a dialog asks
for the columns, and the dataset opens with the choice (stored as data.path_column/label_column)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench_ui.dataset_panel import DatasetPanel
from workbench_ui.state import AppState


@pytest.fixture
def panel(qtbot) -> DatasetPanel:
    widget = DatasetPanel(AppState())
    qtbot.addWidget(widget)
    widget.resize(1024, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def _odd_csv(root: Path, demo_root: Path) -> Path:
    rows = ["picture,note,digit_name"]
    for digit in (2, 7):
        for src in sorted((demo_root / "val" / str(digit)).iterdir())[:6]:
            shutil.copy(src, root / f"{digit}_{src.name}")
            rows.append(f"{digit}_{src.name},handwritten,{digit}")
    csv = root / "odd.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return csv


def test_an_unrecognised_header_asks_for_the_columns_then_opens(qtbot, panel, demo_root,
                                                                 tmp_path):
    csv = _odd_csv(tmp_path, demo_root)
    with qtbot.waitSignal(panel.open_failed, timeout=10_000):
        panel.open_path(csv)
    qtbot.waitUntil(lambda: panel.columns_dialog is not None and panel.columns_dialog.isVisible(),
                    timeout=5000)
    assert "picture,note,digit_name" in panel.notice.text()
    assert "file_name" in panel.notice.text()  # the accepted names are spelled out
    dialog = panel.columns_dialog
    assert dialog.path_box.currentText() == "picture"  # no recognised name: the first cell
    dialog.label_box.setCurrentIndex(0)
    assert not dialog.ok_button.isEnabled()  # one column cannot be both
    dialog.label_box.setCurrentText("digit_name")
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        dialog.ok_button.click()
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=60_000)
    data = panel.state.config.data
    assert (data.path_column, data.label_column) == ("picture", "digit_name")
    assert len(panel.state.index) == 12 and panel.state.index.class_names == ["2", "7"]


def test_a_recognised_csv_asks_nothing(qtbot, panel, demo_root, tmp_path):
    csv = _odd_csv(tmp_path, demo_root)
    csv.write_text(csv.read_text(encoding="utf-8").replace("picture,note,digit_name",
                                                           "file_name,note,label"),
                   encoding="utf-8")
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        panel.open_path(csv)
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=60_000)
    assert panel.columns_dialog is None and len(panel.state.index) == 12
