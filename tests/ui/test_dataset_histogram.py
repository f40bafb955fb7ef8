"""The label histogram's axes as a user reads them: 200 classes, log scale, empty classes."""

from __future__ import annotations

import time

import pytest
from PySide6.QtGui import QImage, QPainter

from workbench_ui.histogram_view import LOG_FLOOR, HistogramView


@pytest.fixture
def hist(qtbot) -> HistogramView:
    view = HistogramView()
    qtbot.addWidget(view)
    view.resize(1200, 420)
    view.show()
    qtbot.waitExposed(view)
    return view


def drawn_labels(axis) -> list[str]:
    """The tick texts pyqtgraph would paint on `axis` now (after its own overlap culling)."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in specs[2]]


def test_log_scale_has_no_tick_under_one_image(qtbot, hist):
    hist.set_data({"train": {"a": 300, "b": 1, "c": 0}, "val": {"a": 5, "b": 1, "c": 0}},
                  {"many": ["a"], "few": ["b", "c"]})
    hist.set_log_scale(True)
    axis = hist.plot.getPlotItem().getAxis("left")
    qtbot.waitUntil(lambda: "1" in drawn_labels(axis), timeout=2000)
    low, high = axis.range
    values = [v for _spacing, level in axis.tickValues(low, high, 300) for v in level]
    assert values and min(values) >= 0  # log10: no 0.5 or 0.9 "images"
    assert hist.bar_heights("train")[-1] == LOG_FLOOR  # c: an empty column, no negative bar


def test_two_hundred_classes_draw_fast_with_readable_first_and_last_labels(qtbot, hist):
    names = [f"species_{i:03d}_adult" for i in range(200)]
    counts = {n: 300 - i for i, n in enumerate(names)}
    start = time.perf_counter()
    hist.set_data({"train": counts, "val": dict.fromkeys(names, 20)}, {"many": names})
    hist.set_log_scale(True)
    hist.select_class(names[5])
    assert time.perf_counter() - start < 10.0  # three full redraws (a gross bound: shared CPUs)
    labels = hist.tick_labels()
    assert labels[0] == "000" and 10 < len(labels) < 60
    bottom = hist.plot.getPlotItem().getAxis("bottom")
    qtbot.waitUntil(lambda: len(drawn_labels(bottom)) >= len(labels) - 1, timeout=2000)
    assert drawn_labels(bottom)[0] == "000"  # the largest class's label is not culled
