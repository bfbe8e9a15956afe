"""What every plot group shares: cell colours and titles, smoothing, data checks, the group base class,
sticky y ranges, heatmaps and the wide CSV table."""
from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from explorer.errors import ExplorerError
from sessions.reader import decimate

pg.setConfigOptions(background="w", foreground="k", antialias=False, imageAxisOrder="row-major")


#: gate curves take these colours in turn, across the cells (LSTM i f g o, then GRU r z n, ...)
GATE_PALETTE = ("#7b3294", "#1b9e3e", "#a6611a", "#d01c8b", "#008080", "#b8860b", "#4b0082", "#ff1493",
                "#2f4f4f", "#8b0000")
PARAM_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
BASELINE_PEN = pg.mkPen("#555555", width=1, style=QtCore.Qt.PenStyle.DashLine)
SEQ_CMAP = "viridis"
DIV_CMAP = "CET-D1"


def cell_spec(cell: str):
    """The registered spec of ``cell``, or None for a cell this program does not know (a file from elsewhere)."""
    from kernels import cells
    from kernels.errors import KernelInputError

    try:
        return cells.get(cell)
    except KernelInputError:
        return None


def cell_color(cell: str) -> str:
    """The cell's colour in every plot and export (its registry entry: RNN orange, LSTM blue, GRU green)."""
    spec = cell_spec(cell)
    return spec.color if spec else "#444444"


def cell_title(cell: str) -> str:
    """"LSTM" for a registered cell, the name upper-cased otherwise."""
    spec = cell_spec(cell)
    return spec.label if spec else str(cell).upper()


def cell_label(run) -> str:
    title = cell_title(run.cell)
    return title if run.name == run.cell else f"{title} ({run.name})"


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    return ema_carry(values, smoothing)[0]


def ema_carry(values: np.ndarray, smoothing: float, carry: tuple[float, float] = (0.0, 0.0)):
    """TensorBoard's debiased exponential moving average (``smoothing`` in [0, 1)); NaNs are skipped.

    ``y_t = a y_{t-1} + (1 - a) x_t``, divided by the same filter applied to ones
    (the debiasing), computed block-wise with cumulative sums so it stays
    vectorised (no Python loop per point, no SciPy import on the GUI thread).
    """
    v = np.asarray(values, dtype=np.float64)
    a = float(smoothing)
    if a <= 0 or v.size == 0:
        return v.copy(), carry
    finite = np.isfinite(v)
    x = np.where(finite, v, 0.0)
    w = finite.astype(np.float64)
    # a block of K steps scales by a**-K: keep that below 1e100
    K = int(max(1, min(4096, 250.0 / max(-math.log10(a), 1e-12))))
    num = np.empty_like(x)
    den = np.empty_like(x)
    carry_num, carry_den = carry
    for s in range(0, x.size, K):
        xb, wb = x[s:s + K], w[s:s + K]
        k = np.arange(xb.size, dtype=np.float64)
        up = a ** -(k + 1.0)        # a^-(k+1), k = 0..K-1
        down = a ** (k + 1.0)
        nb = (1 - a) * np.cumsum(xb * up) * down + carry_num * down
        db = (1 - a) * np.cumsum(wb * up) * down + carry_den * down
        num[s:s + K], den[s:s + K] = nb, db
        carry_num, carry_den = nb[-1], db[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~finite] = np.nan
    return out, (float(carry_num), float(carry_den))


class EmaCache:
    """EMA of growing series (one per key), computing only the rows added since the last call."""

    def __init__(self):
        self._cache: dict = {}   # key -> (smoothing, n, smoothed array, carry)

    def __call__(self, key, value: np.ndarray, smoothing: float) -> np.ndarray:
        cached = self._cache.get(key)
        n = value.shape[0]
        if cached is not None and cached[0] == smoothing and cached[1] <= n:
            _, n0, old, carry = cached
            tail, carry = ema_carry(value[n0:], smoothing, carry)
            out = np.concatenate([old, tail]) if n0 else tail
        else:
            out, carry = ema_carry(value, smoothing)
        self._cache[key] = (smoothing, n, out, carry)
        return out


def faint(color: str, alpha: int = 70) -> pg.QtGui.QColor:
    """``color`` with opacity ``alpha`` (of 255): the raw series under a smoothed one."""
    c = pg.mkColor(color)
    c.setAlpha(alpha)
    return c


def default_settings(runs) -> dict:
    """How a session's plots open: smoothing 0.6; loss and metric on a log axis when the task's metric is
    an error (MSE: lower is better), where a fall from chance to 1e-4 is otherwise a flat line at 0."""
    return {"smoothing": 0.6, "log": bool(runs) and not runs[0].higher_is_better}


def log10_safe(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.maximum(a, 1e-30))


class PlotDataError(ExplorerError):
    """A run's data cannot be drawn: the message names the run and the array and says what is wrong."""


def checked(a, run, what: str, ndim: int, row: tuple | None = None, rows: int | None = None) -> np.ndarray:
    """``a`` as an array of numbers (as it is: no copy), after checking that it holds numbers, has ``ndim``
    dimensions and, when given, ``rows`` rows of shape ``row``; raises :class:`PlotDataError` saying what
    is wrong."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise PlotDataError(f"run {run.name!r}: {what} holds {arr.dtype} values, not numbers")
    row = tuple(row) if row is not None else None
    if arr.ndim != ndim or (row is not None and arr.shape[1:] != row) or (rows is not None and arr.shape[0] != rows):
        dims = ["P" if rows is None else str(rows)] + [str(d) for d in row or ()]
        want = f"({', '.join(dims)})" if len(dims) == ndim > 1 else f"{rows} values" if ndim == 1 and rows \
            else f"{ndim} dimension(s)"
        raise PlotDataError(f"run {run.name!r}: {what} has shape {arr.shape}, expected {want}")
    return arr if arr.dtype.kind != "b" else arr.astype(np.float64)


#: a scalar series longer than this is drawn decimated: each of DISPLAY_POINTS // 2 buckets of consecutive
#: steps as its min and its max (the envelope a peak-downsampled curve shows; smoothing runs over those)
DISPLAY_POINTS = 20_000
_series_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def scalar_series(run, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(step, value)`` of a scalar series, checked: 1-D numbers of the same length; decimated past
    :data:`DISPLAY_POINTS` rows (a 1,000,000-step run draws 20,000 points, not a million), and kept per run
    until it grows, so a replayed file is read once."""
    n = len(run)
    try:
        cache = _series_cache.setdefault(run, {})
    except TypeError:        # a run that cannot be weakly referenced: no cache
        cache = {}
    if cache.get(name, (None,))[0] != n:
        step, _, value = run.scalar(name)
        step = checked(step, run, f"the steps of {name!r}", 1)
        value = checked(value, run, f"the values of {name!r}", 1, rows=step.shape[0])
        if step.shape[0] > DISPLAY_POINTS:
            first, vmin, vmax = decimate(step, value, DISPLAY_POINTS // 2)
            step, value = np.repeat(first, 2), np.stack([vmin, vmax], axis=1).ravel()
        cache[name] = (n, step, value)
    return cache[name][1:]


def style_curve(item: pg.PlotDataItem) -> pg.PlotDataItem:
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)
    return item


class PlotGroup(pg.GraphicsLayoutWidget):
    """One named, exportable figure (one or several plots in a graphics layout).

    A :class:`SessionView` redraws a group only when its :meth:`data_key` changed
    since the last draw, so calling it on every frame costs nothing when nothing new arrived.
    """

    name = ""
    title = ""
    uses_probes = False   # redraw when the selected probe changes

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(240, 180)
        self.export_handler = None   # callable(name, fmt) set by the view
        self.plots: list[pg.PlotItem] = []
        self.has_data = False
        self.drawn_key = None        # data_key() of the last draw (None: never drawn)
        # the scene paints every pixel of the view (white background): say so, or Qt repaints the
        # tab widgets beneath on every update of a plot
        self.viewport().setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent, True)

    def add_plot(self, row: int, col: int, title: str, xlabel: str, ylabel: str, **kw) -> pg.PlotItem:
        p = self.addPlot(row=row, col=col, title=title, **kw)
        loose_title(p)
        p.setLabel("bottom", xlabel)
        p.setLabel("left", ylabel)
        p.showGrid(x=True, y=True, alpha=0.2)
        # an axis draws its grid across the whole plot, so every curve update repainted it (tick text
        # included: most of a frame's cost); cached, it is redrawn only when its range changes
        for axis in p.axes.values():
            axis["item"].setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._add_export_menu(p)
        self.plots.append(p)
        return p

    def _add_export_menu(self, plot: pg.PlotItem) -> None:
        menu = plot.vb.menu
        menu.addSeparator()
        sub = menu.addMenu(f"Export “{self.name}”")
        for fmt in ("png", "svg", "csv"):
            act = sub.addAction(f"as {fmt.upper()}…")
            act.triggered.connect(lambda _=False, f=fmt: self.export_handler and self.export_handler(self.name, f))

    # -- subclasses ------------------------------------------------------------------------------
    def prepare(self, runs: list) -> None:
        """Create the per-run plot items up front (creating them mid-training stalled a frame)."""

    def data_key(self, runs: list, probes: dict[str, dict | None], settings: dict):
        """A value that changes whenever the drawing would (None: always redraw). For probe
        plots, ``probes`` may hold only each probe's ``step``."""
        return None

    def draw(self, runs: list, probes: dict[str, dict | None], settings: dict) -> None:
        raise NotImplementedError

    def csv_table(self, runs: list, probes: dict[str, dict | None]) -> tuple[list[str], list[list]]:
        """Header and rows of the data behind the plot (raw values, not smoothed)."""
        raise NotImplementedError


def set_title(plot: pg.PlotItem, text: str) -> None:
    """setTitle only when the text changed (each call re-lays-out and repaints the plot)."""
    if getattr(plot, "_title_text", None) != text:
        plot._title_text = text
        plot.setTitle(text)


def loose_title(plot: pg.PlotItem) -> None:
    """Let the layout make ``plot`` narrower than its title: pyqtgraph's LabelItem makes its text's width
    its minimum (on every text change and resize), so three long titles in a row ("LSTM forget gate f
    (step 1500)") widened a figure past the window at 1280×800. The title's preferred width stays the text's."""
    label = plot.titleLabel

    def update_min():
        bounds = label.itemRect()
        label.setMinimumWidth(0)
        label.setMinimumHeight(bounds.height())
        label._sizeHint = {QtCore.Qt.SizeHint.MinimumSize: (0, bounds.height()),
                           QtCore.Qt.SizeHint.PreferredSize: (bounds.width(), bounds.height()),
                           QtCore.Qt.SizeHint.MaximumSize: (-1, -1), QtCore.Qt.SizeHint.MinimumDescent: (0, 0)}
        label.updateGeometry()

    label.updateMin = update_min
    update_min()


def selected_steps(runs: list, probes: dict) -> tuple:
    return tuple((r.name, None if probes.get(r.name) is None else probes[r.name]["step"]) for r in runs)


def rows_key(runs: list) -> tuple:
    return tuple((r.name, len(r)) for r in runs)


def probes_key(runs: list) -> tuple:
    return tuple((r.name, int(np.asarray(r.probe_steps).shape[0])) for r in runs)


def fix_x(plot: pg.PlotItem, settings: dict) -> None:
    """Live runs know their last step: a fixed x range keeps the axes from being
    re-laid-out and repainted on every frame (the costliest part of a frame)."""
    x_max = settings.get("x_max")
    if x_max and getattr(plot, "_fixed_x", None) != x_max:
        plot._fixed_x = x_max
        plot.enableAutoRange(x=False)
        plot.setXRange(0, x_max, padding=0.01)


class StickyY:
    """Auto-range of a plot's y axis that moves only when the data leaves the view or fills
    less than half of it, instead of on every new extreme: each range change regenerates
    and repaints both axes and the grid. A range the user sets with the mouse is kept until
    they press the plot's auto-range button."""

    PAD = 0.05

    def __init__(self, plot: pg.PlotItem):
        self.plot = plot
        self.user = False
        plot.vb.sigRangeChangedManually.connect(self._on_manual)

    def _on_manual(self, mask) -> None:
        if len(mask) > 1 and mask[1]:
            self.user = True

    def fit(self, lo: float, hi: float) -> None:
        """Keep [lo, hi] (data units, log10 in log mode) in view."""
        vb = self.plot.vb
        if vb.state["autoRange"][1]:   # the auto-range button (or a fresh plot): ours again
            self.user = False
            vb.enableAutoRange(y=False)
            self._set(lo, hi)
            return
        if self.user or not (math.isfinite(lo) and math.isfinite(hi)):
            return
        v0, v1 = vb.viewRange()[1]
        span = max(hi - lo, 1e-12)
        if lo < v0 or hi > v1 or span < 0.5 * (v1 - v0):
            self._set(lo, hi)

    def _set(self, lo: float, hi: float) -> None:
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        pad = self.PAD * (hi - lo)
        self.plot.vb.setYRange(lo - pad, hi + pad, padding=0)


def finite_range(arrays, log: bool) -> tuple[float, float]:
    lo, hi = math.inf, -math.inf
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if log:
            a = a[a > 0]
            if a.size:
                a = np.log10(a)
        a = a[np.isfinite(a)] if a.size else a
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return lo, hi


def wide_table(runs: list, series: list[tuple[str, Any, str]]) -> tuple[list[str], list[list]]:
    """Rows keyed by step: ``series`` is [(column, run, scalar name)]; missing cells are empty."""
    columns = []
    all_steps = []
    for col, run, sname in series:
        step, _, value = run.scalar(sname)
        columns.append((col, dict(zip(step.tolist(), value.tolist()))))
        all_steps.append(step)
    steps = np.unique(np.concatenate(all_steps)) if all_steps else np.empty(0, np.int64)
    header = ["step"] + [c for c, _ in columns]
    rows = [[int(s)] + [m.get(int(s), "") for _, m in columns] for s in steps]
    return header, rows



class Heatmap:
    """An ImageItem inside a plot, with a colour bar of its own unless ``bar`` is one to share."""

    def __init__(self, plot: pg.PlotItem, cmap: str, levels=(0.0, 1.0), label: str = "",
                 bar: pg.ColorBarItem | None = None):
        self.plot = plot
        self.image = pg.ImageItem()
        plot.addItem(self.image)
        if bar is None:
            self.bar = pg.ColorBarItem(values=levels, colorMap=pg.colormap.get(cmap), interactive=False,
                                       width=12, label=label)
            self.bar.setImageItem(self.image, insert_in=plot)
        else:
            self.bar = bar

    def set(self, data: np.ndarray, rect: tuple[float, float, float, float], levels) -> None:
        data = np.asarray(data, dtype=np.float32)
        levels = (float(levels[0]), float(levels[1]))
        self.image.setImage(np.nan_to_num(data, nan=levels[0]), autoLevels=False)
        if levels != getattr(self, "_levels", None):   # the colour bar repaints on every setLevels
            self._levels = levels
            self.bar.setLevels(values=levels)
        if rect != getattr(self, "_rect", None):
            self._rect = rect
            self.image.setRect(QtCore.QRectF(*rect))


def probe_input(runs) -> np.ndarray | None:
    """The probe sequence ``(L, n_in)`` the runs' probes ran on (they share it), or None (files before 1.3)."""
    for run in runs:
        x = getattr(run, "probe_input", None)
        if x is not None:
            return checked(x, run, "the probe sequence", 2)
    return None


#: channels an input strip (75-100 px high, 30 in a small window) has room to label one by one
INPUT_LABELS = 3


class InputStrip:
    """The probe sequence's inputs as a strip under (or over) a plot over t: one row per input channel,
    0 white, large values black, t aligned with ``link``'s x axis (the markers of the adding problem
    show as two black ticks). Its axes take the widths of ``link``'s, and a colour bar beside ``link``
    (``bar``) leaves a margin as wide on the right, so t lines up pixel for pixel."""

    def __init__(self, group: "PlotGroup", row: int, col: int, link: pg.PlotItem, xlabel: str = "time step t",
                 bar: pg.ColorBarItem | None = None):
        self.plot = group.add_plot(row, col, "", xlabel, "input")
        self.link, self.bar = link, bar
        self.plot.setXLink(link)
        self.plot.showGrid(x=True, y=False)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255), (0, 0, 0)]))   # 0 white, large black
        self.plot.addItem(self.image)
        self.plot.setMinimumHeight(75)
        self.plot.setMaximumHeight(100)
        self.margin = None
        if bar is not None:                   # the colour bar's place in a PlotItem's layout (pyqtgraph)
            self.margin = pg.GraphicsWidget()
            self.plot.layout.addItem(self.margin, 2, 5)
            self.plot.layout.setColumnFixedWidth(4, 5)
        self._shape = None

    def align(self) -> None:
        """Match ``link``'s left axis width and its colour bar's (drawn widths change with their labels)."""
        width = int(self.link.getAxis("left").width())
        if width and width != int(self.plot.getAxis("left").width()):
            self.plot.getAxis("left").setWidth(width)
        if self.margin is not None and int(self.bar.width()) != int(self.margin.width()):
            self.margin.setFixedWidth(int(self.bar.width()))

    def draw(self, runs) -> None:
        self.align()
        x = probe_input(runs)
        if x is None or x.shape == self._shape:
            return
        self._shape = x.shape
        L, n_in = x.shape
        self.image.setImage(np.nan_to_num(x.T.astype(np.float32)), autoLevels=True)
        self.image.setRect(-0.5, -0.5, float(L), float(n_in))    # pixel t centred on t, row k on channel k
        rows = range(n_in) if n_in <= INPUT_LABELS else (0, n_in - 1)    # more: the first and the last
        self.plot.getAxis("left").setTicks([[(k, f"x{k}") for k in rows]])
        self.plot.setYRange(-0.5, n_in - 0.5, padding=0)
