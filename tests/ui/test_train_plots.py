"""Live plots stay bounded and throttled, and the class views show what they are given."""

from __future__ import annotations

import numpy as np
import pytest

from workbench_ui.plots import BoundedSeries, ClassAccuracyView, ConfusionView, CurvePlot


def test_series_memory_stays_bounded_over_100k_points():
    series = BoundedSeries(capacity=1024)
    for i in range(100_000):
        series.append(i, np.sin(i / 1000))
    x, y = series.arrays()
    assert len(x) <= 1025
    assert series.total == 100_000
    # the whole history is still there: first and last points near the ends of the run
    assert x[0] < 200 and x[-1] > 99_000
    assert np.all(np.diff(x) > 0)


def test_series_keeps_every_point_until_full():
    series = BoundedSeries(capacity=8)
    for i in range(5):
        series.append(i, i * 2)
    x, y = series.arrays()
    assert x.tolist() == [0, 1, 2, 3, 4]
    assert y.tolist() == [0, 2, 4, 6, 8]


def test_series_rejects_odd_capacity():
    with pytest.raises(ValueError):
        BoundedSeries(capacity=7)


def test_curve_plot_coalesces_redraws(qtbot):
    plot = CurvePlot("Loss", "loss")
    qtbot.addWidget(plot)
    for i in range(100_000):
        plot.add_point("train", i / 1000, 1.0 / (1 + i))
    assert plot.redraw_count == 0  # nothing drawn synchronously, per point
    qtbot.waitUntil(lambda: plot.redraw_count == 1, timeout=2000)
    x, _ = plot.getPlotItem().listDataItems()[0].getOriginalDataset()
    assert 0 < len(x) <= 4097
    assert plot.series("train").total == 100_000


def test_curve_plot_skips_nan_and_clears(qtbot):
    plot = CurvePlot("Loss", "loss")
    qtbot.addWidget(plot)
    plot.add_point("train", 0, float("nan"))
    assert plot.curve_names() == []
    plot.add_point("val", 1, 0.5, symbol="o")
    plot.flush()
    assert plot.curve_names() == ["val"]
    plot.clear_curves()
    assert plot.curve_names() == []
    assert plot.getPlotItem().listDataItems() == []


def test_class_accuracy_bars_coloured_by_band(qtbot):
    view = ClassAccuracyView()
    qtbot.addWidget(view)
    view.set_accuracy(["a", "b", "c"], [0.9, 0.5, float("nan")], ["many", "medium", "few"])
    assert view.heights.tolist() == [0.9, 0.5, 0.0]
    view.set_accuracy(["a", "b"], [0.1, 0.2], ["many", "few"])
    assert len(view.heights) == 2


def test_confusion_matrix_is_row_normalised(qtbot):
    view = ConfusionView()
    qtbot.addWidget(view)
    view.set_matrix([[8, 2], [0, 0]], ["cat", "dog"])
    assert view.matrix.tolist() == [[0.8, 0.2], [0.0, 0.0]]
    assert view.image.image.shape == (2, 2)


def test_legend_sits_below_the_plot_and_wraps_to_its_width(qtbot):
    plot = CurvePlot("Learning rate per group", "lr", log_y=True)
    qtbot.addWidget(plot)
    plot.resize(420, 260)
    plot.show()
    groups = ["head", "stage4:block4", "stage3:block3", "stage2:block2", "stage1:block1"]
    for i, group in enumerate(groups):
        plot.add_point(group, 0.0, 0.01 * 0.4**i)
        plot.add_point(group, 1.0, 0.005 * 0.4**i)
    plot.flush()
    qtbot.wait(50)
    item = plot.getPlotItem()
    view = item.vb.sceneBoundingRect()
    legend = item.legend.sceneBoundingRect()
    assert legend.top() >= view.bottom()  # never over the curves it names
    assert 1 < item.legend.columnCount < len(groups)  # wrapped into rows that fit
    assert view.right() <= plot.width() + 4  # and it did not widen the plot
    plot.close()  # pyqtgraph clears the scene: the legend must not crash it


def test_clearing_forgets_the_previous_runs_range(qtbot):
    plot = CurvePlot("Throughput", "images / s")
    qtbot.addWidget(plot)
    plot.show()
    qtbot.waitExposed(plot)
    for x, y in ((0.0, 500.0), (1.0, 800.0), (2.0, 900.0)):
        plot.add_point("images/s", x, y)
    plot.flush()
    box = plot.getPlotItem().getViewBox()
    qtbot.waitUntil(lambda: box.viewRange()[1][1] > 100, timeout=2000)
    plot.clear_curves()
    qtbot.wait(50)
    assert box.viewRange()[1][1] <= 1.0 + 1e-9  # not the 500-900 of the last run


def _tick_labels(plot: CurvePlot) -> list[str]:
    axis = plot.getAxis("left")
    low, high = axis.range
    return [label for spacing, values in axis.tickValues(low, high, 200)
            for label in axis.tickStrings(values, 1.0, spacing)]


@pytest.mark.parametrize("log_y", [False, True])
def test_one_epoch_of_nearly_equal_values_gets_readable_ticks(qtbot, log_y):
    """Issue 16: top-1 0.47 and balanced 0.4700000000000001 zoomed the axis to
    floating-point noise, with ticks like 0.470000000000001."""
    plot = CurvePlot("Accuracy (val)", "fraction", log_y=log_y)
    qtbot.addWidget(plot)
    plot.resize(400, 250)
    plot.show()
    plot.add_point("top-1", 1.0, 0.47, symbol="o")
    plot.add_point("balanced", 1.0, 0.4700000000000001, symbol="o")
    plot.flush()
    qtbot.wait(50)
    low, high = plot.getAxis("left").range
    assert high - low >= (0.99 if log_y else 0.099)
    labels = _tick_labels(plot)
    assert labels and all(len(label.lstrip("-").split(".")[-1]) <= 4 for label in labels
                          if "." in label), labels
    plot.add_point("top-1", 2.0, 0.01 if log_y else 0.9)  # a real spread: autorange again
    plot.flush()
    qtbot.wait(50)
    assert plot.getPlotItem().getViewBox().autoRangeEnabled()[1]
