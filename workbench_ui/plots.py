"""Live training plots: bounded curve buffers, throttled redraws, class bars, confusion heatmap.

A run can emit a BatchDone every few milliseconds for hours. Four things keep the GUI responsive:
every series lives in a `BoundedSeries` (fixed memory, older points merged as it fills);
curves use pyqtgraph's peak downsampling and clip-to-view; a plot redraws at most a few times a
second however many points arrived in between; and the `RedrawQueue` redraws one plot per timer
tick, so plots fed by the same event do not all repaint in one pass of the event loop.
Curves use 1-pixel pens: Qt's raster engine draws wide polylines several times slower
(17 ms vs 5 ms a repaint for a 2000-point curve, measured offscreen).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QObject, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

REDRAW_INTERVAL_MS = 250  # a plot redraws at most four times a second: smooth for slow curves
REDRAW_TICK_MS = 40  # the queue redraws one plot per tick, spreading repaints over time
DEFAULT_CAPACITY = 4096
CURVE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf")
LEGEND_SPACING = 8  # pixels between legend entries
MAX_TICK_DECIMALS = 4
# A curve whose values barely differ (one epoch; one learning rate) is shown over at least this
# span of y (log10 decades on a log axis), not zoomed to floating-point noise.
MIN_Y_SPAN, MIN_LOG_Y_SPAN = 0.1, 1.0
BAND_COLORS = {"many": "#1f77b4", "medium": "#ff7f0e", "few": "#d62728"}
# On a log axis, which in-between ticks (mantissas of 10^n) get a label, by pixels per decade:
# pyqtgraph labels all eight, which pile up ("7 8 9" in a few pixels) on a short axis.
LOG_MINOR_TICKS = ((300.0, (1, 2, 3, 4, 5, 6, 7, 8, 9)), (70.0, (1, 2, 5)), (45.0, (1, 3)))


class LogAxis(pg.AxisItem):
    """An axis whose log-mode ticks thin out as decades get shorter, so labels never overlap."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 - pyqtgraph
        """pyqtgraph's log ticks, keeping only the mantissas the axis has room to label."""
        levels = super().logTickValues(minVal, maxVal, size, stdTicks)
        per_decade = size / max(maxVal - minVal, 1e-9)
        mantissas = next((m for px, m in LOG_MINOR_TICKS if per_decade >= px), (1,))
        allowed = np.log10(mantissas)
        thinned, seen = [], set()
        for spacing, values in levels:
            if spacing is None:  # the in-between level: 1..9 x 10^n for every decade shown
                values = [v for v in values if round(v, 6) not in seen
                          and np.isclose(v - np.floor(v + 1e-9), allowed, atol=1e-6).any()]
            seen.update(round(v, 6) for v in values)
            thinned.append((spacing, values))
        return thinned

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        """Linear ticks with as many decimals as their spacing needs and never more than four:
        two curves 1e-16 apart must not read "0.470000000000001"."""
        if self.logMode:
            return super().tickStrings(values, scale, spacing)
        step = abs(spacing * scale) or 1.0
        places = int(min(max(math.ceil(-math.log10(step) - 1e-9), 0), MAX_TICK_DECIMALS))
        return [f"{v * scale:.{places}f}" for v in values]


class BoundedSeries:
    """An (x, y) series whose memory never exceeds `capacity` points.

    When full, neighbouring points are merged in pairs (mean of x and y) and later points are
    averaged in buckets twice as wide, so the whole history stays visible at an even resolution.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 4 or capacity % 2:
            raise ValueError("capacity must be an even number of at least 4")
        self.capacity = capacity
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._size = 0
        self.stride = 1  # raw points per stored point
        self._pending: list[tuple[float, float]] = []
        self.total = 0  # raw points appended so far

    def __len__(self) -> int:
        return self._size + (1 if self._pending else 0)

    def append(self, x: float, y: float) -> None:
        """Add one raw point; it is stored once `stride` raw points fill a bucket."""
        self.total += 1
        self._pending.append((float(x), float(y)))
        if len(self._pending) < self.stride:
            return
        px, py = np.mean(self._pending, axis=0)
        self._pending.clear()
        if self._size == self.capacity:
            self._halve()
        self._x[self._size] = px
        self._y[self._size] = py
        self._size += 1

    def _halve(self) -> None:
        half = self.capacity // 2
        self._x[:half] = self._x[: self.capacity].reshape(half, 2).mean(axis=1)
        self._y[:half] = self._y[: self.capacity].reshape(half, 2).mean(axis=1)
        self._size = half
        self.stride *= 2

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the stored points, plus the mean of a partly filled bucket."""
        x, y = self._x[: self._size].copy(), self._y[: self._size].copy()
        if self._pending:
            px, py = np.mean(self._pending, axis=0)
            x, y = np.append(x, px), np.append(y, py)
        return x, y

    def clear(self) -> None:
        """Forget every point."""
        self._size = 0
        self.stride = 1
        self.total = 0
        self._pending.clear()


class RedrawQueue(QObject):
    """Redraws dirty plots one per tick, each no more often than `REDRAW_INTERVAL_MS`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting: list[CurvePlot] = []
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_TICK_MS)
        self._timer.timeout.connect(self._tick)

    def request(self, plot: CurvePlot) -> None:
        """Schedule a redraw of `plot` (once, however often it is requested before then)."""
        if plot not in self._waiting:
            self._waiting.append(plot)
        if not self._timer.isActive():
            self._timer.start()

    def cancel(self, plot: CurvePlot) -> None:
        """Forget a pending redraw (the plot was cleared or is being deleted)."""
        if plot in self._waiting:
            self._waiting.remove(plot)

    def _tick(self) -> None:
        now = time.monotonic()
        for plot in self._waiting:
            # the time of a plot's last redraw lives on the plot: nothing to forget when it goes
            if now - plot.flushed_at >= REDRAW_INTERVAL_MS / 1000:
                self._waiting.remove(plot)
                plot.flushed_at = now
                with contextlib.suppress(RuntimeError):  # its widget was deleted while it waited
                    plot.flush()
                break
        if not self._waiting:
            self._timer.stop()


def redraw_queue() -> RedrawQueue:
    """The application's redraw queue (created on first use, owned by the QApplication)."""
    app = QCoreApplication.instance()
    queue = app.findChild(RedrawQueue, "workbench-redraw-queue")
    if queue is None:
        queue = RedrawQueue(app)
        queue.setObjectName("workbench-redraw-queue")
    return queue


class CurvePlot(pg.PlotWidget):
    """A plot of named live curves; `add_point` is cheap, the redraw happens on a timer."""

    def __init__(self, title: str, y_label: str, parent: QWidget | None = None, *,
                 x_label: str = "epoch", log_y: bool = False, legend: bool = True,
                 capacity: int = DEFAULT_CAPACITY,
                 empty_y: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(parent=parent, title=title, axisItems={"left": LogAxis("left")})
        self.setBackground("w")
        self.showGrid(x=True, y=True, alpha=0.3)
        self.setLabel("left", y_label)
        self.setLabel("bottom", x_label)
        # "(x0.001)" scale prefixes confuse readers of a loss, an accuracy or an epoch number
        # (one batch into a run, the epoch axis read "epoch (x0.001)", ticks -400..400)
        self.getAxis("left").enableAutoSIPrefix(False)
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.getPlotItem().getViewBox().setLimits(xMin=0.0)  # no negative epochs
        self.setLogMode(x=False, y=log_y)
        self._legend = self._legend_below()
        self._legend.setVisible(legend)  # a one-curve plot is named by its title
        self.setMouseEnabled(x=True, y=False)
        self._capacity = capacity
        self._empty_y = empty_y  # the y range shown before any point (log10 values in log mode)
        self._series: dict[str, BoundedSeries] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._dirty: set[str] = set()
        self.redraw_count = 0
        self.flushed_at = 0.0  # monotonic time of the last timed redraw (see RedrawQueue)
        self._queue = redraw_queue()
        self.clear_curves()  # the empty ranges

    def _legend_below(self) -> pg.LegendItem:
        # Below the x axis, in the plot's own layout: a legend inside the view box hides the
        # curves it names (an LR plot's groups fill its whole width), wherever it is anchored.
        legend = pg.LegendItem(offset=None, horSpacing=LEGEND_SPACING, verSpacing=-6,
                               labelTextSize="8pt")
        legend.layout.setContentsMargins(0, 0, 0, 0)
        # its rows wrap to the plot's width (`_fit_legend`); it must never widen the plot
        legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        item = self.getPlotItem()
        item.layout.addItem(legend, 4, 1)
        item.legend = legend  # plot(name=...) adds its curve to this legend
        return legend

    def _fit_legend(self) -> None:
        """As many legend entries per row as the plot's width holds."""
        legend = self.__dict__.get("_legend")  # resizeEvent comes during pyqtgraph's __init__
        if legend is None or not legend.items or self.getPlotItem() is None:  # or after close
            return
        widest = max(s.boundingRect().width() + lab.item.boundingRect().width()
                     for s, lab in legend.items) + 2 * LEGEND_SPACING
        width = self.getPlotItem().vb.width() or self.width()
        legend.setColumnCount(max(1, min(len(legend.items), int(width // widest))))

    def close(self) -> bool:
        """Take the legend out of the scene first: pyqtgraph's close clears the scene, and
        PySide crashes deleting a widget still held in a layout (PlotItem.close does the same
        for its axes and view box)."""
        item = self.getPlotItem()
        legend = self.__dict__.get("_legend")
        if item is not None and legend is not None and legend.scene() is not None:
            item.layout.removeItem(legend)
            legend.scene().removeItem(legend)
        return super().close()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        """Re-wrap the legend to the new width."""
        super().resizeEvent(event)
        self._fit_legend()

    def add_point(self, name: str, x: float, y: float, *, symbol: str | None = None) -> None:
        """Append a point to curve `name` (created on first use) and schedule a redraw."""
        if not np.isfinite(y):
            return  # a NaN loss is reported elsewhere; a gap would hide the curve's scale
        if name not in self._series:
            self._add_curve(name, symbol)
        self._series[name].append(x, y)
        self._dirty.add(name)
        self._queue.request(self)

    def _add_curve(self, name: str, symbol: str | None) -> None:
        color = CURVE_COLORS[len(self._curves) % len(CURVE_COLORS)]
        curve = self.plot([], [], name=name, pen=pg.mkPen(color, width=1), symbol=symbol,
                          symbolSize=6, symbolBrush=color, symbolPen=None)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        self._series[name] = BoundedSeries(self._capacity)
        self._curves[name] = curve
        self._fit_legend()

    def flush(self) -> None:
        """Redraw the curves that got points since the last redraw."""
        for name in self._dirty:
            self._curves[name].setData(*self._series[name].arrays())
        if self._dirty:
            self.redraw_count += 1
            self._keep_y_span()
        self._dirty.clear()

    def _keep_y_span(self) -> None:
        """Show nearly flat curves over `MIN_Y_SPAN` around their values (autorange otherwise)."""
        ys = [y for series in self._series.values() for y in series.arrays()[1]]
        view = self.getPlotItem().getViewBox()
        log = self.getAxis("left").logMode
        if log:
            ys = [math.log10(y) for y in ys if y > 0]
        if not ys:
            return
        low, high = min(ys), max(ys)
        span = MIN_LOG_Y_SPAN if log else MIN_Y_SPAN
        if high - low >= span:
            view.enableAutoRange(axis=pg.ViewBox.YAxis)
            return
        centre = (low + high) / 2
        view.setYRange(centre - span / 2, centre + span / 2, padding=0)

    def series(self, name: str) -> BoundedSeries:
        """The buffer behind curve `name` (KeyError when it has no point yet)."""
        return self._series[name]

    def curve_names(self) -> list[str]:
        """Names of the curves, in the order they appeared."""
        return list(self._series)

    def clear_curves(self, epochs: float = 1.0) -> None:
        """Remove every curve (a new run starts from an empty plot spanning its `epochs`)."""
        self._queue.cancel(self)
        for curve in self._curves.values():
            self.removeItem(curve)
        legend = self.getPlotItem().legend
        if legend is not None:
            legend.clear()
        self._series.clear()
        self._curves.clear()
        self._dirty.clear()
        # forget the previous run's axis ranges: a run with no points here (an svm head has
        # no batches) must not show the last run's empty frame
        self.getPlotItem().getViewBox().setRange(xRange=(0, max(epochs, 1.0)),
                                                 yRange=self._empty_y, padding=0)
        self.getPlotItem().enableAutoRange()


class ClassAccuracyView(pg.PlotWidget):
    """Per-class validation accuracy as bars coloured by shot band (many / medium / few)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, title="Per-class accuracy (val)")
        self.setBackground("w")
        self.setLabel("left", "accuracy")
        self.setYRange(0.0, 1.0)
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(y=True, alpha=0.3)
        self._bars: pg.BarGraphItem | None = None
        self.heights = np.zeros(0)
        self.getAxis("bottom").setTicks([[]])  # no class, no tick (not 0.2 ... 0.8)

    def set_accuracy(self, class_names: Sequence[str], accuracy: Sequence[float],
                     bands: Sequence[str]) -> None:
        """Show one bar per class; `bands[i]` picks the colour of class i."""
        if self._bars is not None:
            self.removeItem(self._bars)
        x = np.arange(len(class_names))
        self.heights = np.nan_to_num(np.asarray(accuracy, dtype=float))
        brushes = [pg.mkBrush(BAND_COLORS.get(b, "#7f7f7f")) for b in bands]
        self._bars = pg.BarGraphItem(x=x, height=self.heights, width=0.8, brushes=brushes,
                                     pen=pg.mkPen("#444", width=0.5))
        self.addItem(self._bars)
        self.getAxis("bottom").setTicks([_class_ticks(class_names)])
        self.setXRange(-0.6, max(len(class_names) - 0.4, 0.4), padding=0)

    def clear_bars(self) -> None:
        """Show no class (a new run or another dataset: the old classes must not linger)."""
        if self._bars is not None:
            self.removeItem(self._bars)
            self._bars = None
        self.heights = np.zeros(0)
        self.getAxis("bottom").setTicks([[]])
        self.setXRange(-0.6, 0.4, padding=0)


class ConfusionView(pg.GraphicsLayoutWidget):
    """The validation confusion matrix, rows normalised to recall, with a colour bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setBackground("w")
        # a short title: the title's width is the plot's minimum, and the colour bar needs room
        self.plot_item = self.addPlot(title="Confusion matrix (val)")
        self.setToolTip("Rows are true classes, each normalised to sum to 1: the diagonal is "
                        "per-class recall")
        self.plot_item.setLabel("left", "true class")
        self.plot_item.setLabel("bottom", "predicted class")
        self.plot_item.setMouseEnabled(x=False, y=False)
        self.plot_item.invertY(True)  # row 0 at the top, as a matrix is read
        self.plot_item.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot_item.addItem(self.image)
        self.color_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"),
                                         interactive=False, pen="#444", width=15)
        self.color_bar.setImageItem(self.image)
        self.addItem(self.color_bar)  # its own layout column, so the plot cannot squeeze it out
        self.matrix = np.zeros((0, 0))
        for side in ("bottom", "left"):  # before the first epoch: an empty frame, no "(x0.001)"
            self.plot_item.getAxis(side).enableAutoSIPrefix(False)
            self.plot_item.getAxis(side).setTicks([[]])
        self.plot_item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)

    def set_matrix(self, confusion: Sequence[Sequence[float]], class_names: Sequence[str]) -> None:
        """Show counts `confusion[true][pred]` as per-row fractions."""
        counts = np.asarray(confusion, dtype=float)
        totals = counts.sum(axis=1, keepdims=True)
        self.matrix = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        self.image.setImage(self.matrix, autoLevels=False, levels=(0.0, 1.0))
        ticks = [_class_ticks(class_names, offset=0.5)]
        self.plot_item.getAxis("bottom").setTicks(ticks)
        self.plot_item.getAxis("left").setTicks(ticks)
        size = max(len(class_names), 1)
        self.plot_item.setRange(xRange=(0, size), yRange=(0, size), padding=0.02)

    def clear_matrix(self) -> None:
        """Show an empty frame (a new run or another dataset)."""
        self.matrix = np.zeros((0, 0))
        self.image.clear()
        for side in ("bottom", "left"):
            self.plot_item.getAxis(side).setTicks([[]])
        self.plot_item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)


def _class_ticks(class_names: Sequence[str], offset: float = 0.0) -> list[tuple[float, str]]:
    # Beyond ~30 classes labels overlap; show every k-th so the axis stays readable.
    step = max(1, len(class_names) // 30)
    return [(i + offset, str(name)[:12]) for i, name in enumerate(class_names) if i % step == 0]
