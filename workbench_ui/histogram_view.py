"""`HistogramView`: the label histogram, one bar set per split, shot bands shaded behind.

The view draws counts it is given (from `workbench.data.stats.DatasetStats`); it computes no
statistics. It only decides the display order (by count or by name) and the log transform.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench_ui.plots import LogAxis

BAND_COLORS = {"many": (46, 160, 67, 38), "medium": (230, 160, 20, 45), "few": (214, 60, 60, 40)}
BAND_TEXT = {"many": "many-shot (>100)", "medium": "medium (20-100)", "few": "few-shot (<20)"}
SPLIT_COLORS = ((52, 101, 164), (150, 170, 200), (120, 120, 120))  # train, val, test
SELECTED_COLORS = ((214, 100, 0), (245, 170, 90), (200, 140, 90))  # the clicked class
# below a count of 1 in log mode: bars start here so that a class with one image is visible
LOG_FLOOR = -0.3
MIN_TICK_SPACING_PX = 42
MAX_LABEL_CHARS = 12
TICK_OVERHANG_PX = 48  # half of the widest (elided) class label


class CountAxis(LogAxis):
    """A y axis of image counts: in log mode, no tick below one image (0.5 images means
    nothing; the space under 1 is only there to make a class of one image visible), in-between
    ticks thinned to what the axis can label, and counts written as counts (50, not 5·10¹)."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 - pyqtgraph
        """The thinned log ticks, without those under a count of one."""
        levels = super().logTickValues(minVal, maxVal, size, stdTicks)
        return [(spacing, [v for v in values if v >= -1e-9]) for spacing, values in levels]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph
        """Whole image counts with thousands separators."""
        return [f"{round(10 ** v * scale):,}" for v in values]


class HistogramView(QWidget):
    """Bars of images per class for each split, sortable, with a log-scale toggle.

    Signals:
        class_clicked(str): the user clicked the column of a class.
    """

    class_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts: dict[str, dict[str, int]] = {}
        self._band_of: dict[str, str] = {}
        self._order: list[str] = []
        self._selected: str | None = None
        self._bars: dict[str, pg.BarGraphItem] = {}
        self._tick_labels: list[str] = []
        self._build()

    # -- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.sort_combo = QComboBox()
        self.sort_combo.addItem("Sort by count", "count")
        self.sort_combo.addItem("Sort by name", "name")
        self.sort_combo.currentIndexChanged.connect(self._redraw)
        self.log_check = QCheckBox("Log scale")
        self.log_check.toggled.connect(self._redraw)
        self.hint = QLabel("Shaded: shot bands by training images per class.")
        self.hint.setObjectName("hint")
        controls = QHBoxLayout()
        controls.addWidget(self.sort_combo)
        controls.addWidget(self.log_check)
        controls.addStretch(1)
        controls.addWidget(self.hint)
        self.plot = pg.PlotWidget(axisItems={"left": CountAxis("left")})
        # let the first and last class names reach past the plot's edges instead of vanishing
        self.plot.getPlotItem().getAxis("bottom").setStyle(hideOverlappingLabels=TICK_OVERHANG_PX)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(y=True, alpha=0.15)
        self.plot.setLabel("left", "images")
        for side in ("left", "bottom"):  # counts and class positions, not units: no "(x0.001)"
            self.plot.getPlotItem().getAxis(side).enableAutoSIPrefix(False)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_click)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="9pt")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)

    # -- public API --------------------------------------------------------------------------
    def set_data(
        self, class_counts: Mapping[str, Mapping[str, int]], bands: Mapping[str, Sequence[str]]
    ) -> None:
        """Show `class_counts` (split -> class -> count; the first split is the training one)
        with the shot `bands` (band -> class names) shaded behind the bars."""
        self._counts = {split: dict(c) for split, c in class_counts.items()}
        self._band_of = {name: band for band, names in bands.items() for name in names}
        if self._selected not in self.class_names():
            self._selected = None
        self._redraw()

    def clear(self) -> None:
        """Show nothing."""
        self.set_data({}, {})

    def class_names(self) -> list[str]:
        """All classes, in the order of the first split's counts."""
        first = next(iter(self._counts.values()), {})
        return list(first)

    def splits(self) -> list[str]:
        """The splits drawn, left to right within each class."""
        return list(self._counts)

    def class_order(self) -> list[str]:
        """Classes in their current left-to-right order."""
        return list(self._order)

    def bar_heights(self, split: str) -> list[float]:
        """Drawn bar tops of one split, left to right (log10 values in log mode)."""
        bars = self._bars.get(split)
        return [] if bars is None else [float(h) for h in bars.opts["y1"]]

    def tick_labels(self) -> list[str]:
        """The class labels written under the axis (thinned and shortened when many)."""
        return list(self._tick_labels)

    def set_sort(self, key: str) -> None:
        """Order bars by "count" (training count, largest first) or "name"."""
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(key))

    def set_log_scale(self, on: bool) -> None:
        """Switch the y axis between linear and log10."""
        self.log_check.setChecked(on)

    def select_class(self, name: str | None) -> None:
        """Highlight one class's bars (None: no highlight); does not emit `class_clicked`."""
        self._selected = name
        self._redraw()

    def bar_center(self, name: str) -> QPointF:
        """Where a class's column is, in the plot widget's pixel coordinates (for tests)."""
        x = self._order.index(name)
        scene = self.plot.getViewBox().mapViewToScene(QPointF(x, self._y_top() * 0.5))
        return QPointF(self.plot.mapFromScene(scene))

    # -- drawing -----------------------------------------------------------------------------
    def _redraw(self) -> None:
        self.plot.clear()  # also empties the legend
        self._bars = {}
        self._order = self._sorted_names()
        log = self.log_check.isChecked()
        # the range first: a linear range of hundreds read as log10 would overflow the axis
        self.plot.setYRange(LOG_FLOOR if log else 0, self._y_top() * 1.08, padding=0)
        self.plot.getPlotItem().getAxis("left").setLogMode(log)
        self.plot.setLabel("left", "images (log scale)" if log else "images")
        by = "name" if self.sort_combo.currentData() == "name" else "training images"
        self.plot.setLabel("bottom", f"class (sorted by {by}; click one)")
        if not self._order:  # no dataset: no class positions (not 0.1 ... 0.9)
            self.plot.getPlotItem().getAxis("bottom").setTicks([[], []])
            return
        self._draw_bands()
        self._draw_bars(log)
        self._update_ticks()
        self.plot.setXRange(-0.6, len(self._order) - 0.4, padding=0)

    def _sorted_names(self) -> list[str]:
        names = self.class_names()
        if self.sort_combo.currentData() == "name":
            return sorted(names, key=natural_key)
        first = next(iter(self._counts.values()), {})
        return sorted(names, key=lambda n: (-first.get(n, 0), natural_key(n)))

    def _value(self, count: int) -> float:
        if not self.log_check.isChecked():
            return float(count)
        return math.log10(count) if count > 0 else LOG_FLOOR

    def _y_top(self) -> float:
        peak = max((max(c.values(), default=0) for c in self._counts.values()), default=0)
        return max(self._value(max(peak, 1)), 1.0)

    def _draw_bars(self, log: bool) -> None:
        splits = self.splits()[:3]
        width = 0.8 / len(splits)
        for k, split in enumerate(splits):
            counts = self._counts[split]
            xs = [i - 0.4 + width * (k + 0.5) for i in range(len(self._order))]
            tops = [self._value(counts.get(n, 0)) for n in self._order]
            color, selected = SPLIT_COLORS[k], SELECTED_COLORS[k]
            brushes = [pg.mkBrush(selected if n == self._selected else color)
                       for n in self._order]
            bars = pg.BarGraphItem(  # `brush` is what the legend shows
                x=xs, y0=LOG_FLOOR if log else 0.0, y1=tops, width=width * 0.92,
                brush=pg.mkBrush(color), brushes=brushes, pen=pg.mkPen(None), name=split,
            )
            self.plot.addItem(bars)
            self._bars[split] = bars

    def _draw_bands(self) -> None:
        top = self._y_top() * 1.06
        for band, start, end in _runs([self._band_of.get(n, "") for n in self._order]):
            if not band:
                continue
            region = pg.LinearRegionItem(
                (start - 0.5, end + 0.5), movable=False, brush=pg.mkBrush(BAND_COLORS[band]),
                pen=pg.mkPen(None),
            )
            region.setZValue(-10)
            self.plot.addItem(region, ignoreBounds=True)
            text = BAND_TEXT[band] if end - start >= 1 else band
            label = pg.TextItem(text, color=BAND_COLORS[band][:3] + (255,), anchor=(0.5, 0))
            label.setPos((start + end) / 2, top)
            self.plot.addItem(label, ignoreBounds=True)

    def _update_ticks(self) -> None:
        """Class names under the bars, thinned so that no two labels overlap."""
        n = len(self._order)
        labels = dict(zip(self._order, _short_labels(self._order), strict=True))
        axis = self.plot.getPlotItem().getAxis("bottom")
        metrics = QFontMetrics(axis.style.get("tickFont") or self.font())
        widest = max(metrics.horizontalAdvance(text) for text in labels.values())
        width_px = max(self.plot.getViewBox().width(), 200.0)
        spacing = max(MIN_TICK_SPACING_PX, widest + 12)
        step = max(1, math.ceil(n * spacing / width_px))
        ticks = [(i, labels[name]) for i, name in enumerate(self._order) if i % step == 0]
        self._tick_labels = [text for _, text in ticks]
        axis.setTicks([ticks, []])

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Thin the class labels again for the new width."""
        super().resizeEvent(event)
        if self._order:
            self._update_ticks()

    # -- interaction -------------------------------------------------------------------------
    def _on_scene_click(self, event) -> None:
        if not self._order or event.button() != Qt.MouseButton.LeftButton:
            return
        view_box = self.plot.getViewBox()
        if not view_box.sceneBoundingRect().contains(event.scenePos()):
            return
        x = view_box.mapSceneToView(event.scenePos()).x()
        i = round(x)
        if 0 <= i < len(self._order) and abs(x - i) <= 0.5:
            self._selected = self._order[i]
            self._redraw()
            self.class_clicked.emit(self._selected)


def _runs(values: Sequence[str]) -> list[tuple[str, int, int]]:
    """Maximal runs of equal adjacent values: (value, first index, last index)."""
    runs: list[tuple[str, int, int]] = []
    for i, value in enumerate(values):
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1], i)
        else:
            runs.append((value, i, i))
    return runs


def natural_key(name: str) -> tuple:
    """Sort "class2" before "class10", as a file browser does."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


def _short_labels(names: Sequence[str]) -> list[str]:
    """Tick labels: long names lose the prefix and suffix they all share, then get elided.

    ("species_07_adult", "species_12_adult") -> ("07", "12"): the part that tells them apart.
    """
    if len(names) > 1 and max(len(n) for n in names) > MAX_LABEL_CHARS:
        prefix = len(os.path.commonprefix(list(names)))
        suffix = len(os.path.commonprefix([n[::-1] for n in names]))
        cores = [n[prefix: len(n) - suffix] for n in names]
        if all(cores) and len(set(cores)) == len(cores):
            names = cores
    return [n if len(n) <= MAX_LABEL_CHARS else n[: MAX_LABEL_CHARS - 1] + "…" for n in names]
