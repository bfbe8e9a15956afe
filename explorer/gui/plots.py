"""The plot panels: one :class:`PlotGroup` per exportable plot name, and :class:`SessionView`.

Every group draws from run objects with the ``sessions.Run`` read API (a replayed
file) or :class:`explorer.gui.data.LiveRun` (a training in progress) — the same
code path. Plot items are created once and updated with ``setData`` from the
view's timer; curves use peak downsampling and clip-to-view.

Plot names (stable; used by the context menus, File > Export all and
``lstm-explorer export --plot``): see :data:`PLOT_NAMES`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from explorer.errors import ExplorerError
from explorer.gui.names import PLOT_NAMES
from explorer.training import PARAM_GRAD_NAMES

pg.setConfigOptions(background="w", foreground="k", antialias=False, imageAxisOrder="row-major")


#: gate curves take these colours in turn, across the cells (LSTM i f g o, then GRU r z n, ...)
GATE_PALETTE = ("#7b3294", "#1b9e3e", "#a6611a", "#d01c8b", "#008080", "#b8860b", "#4b0082", "#ff1493",
                "#2f4f4f", "#8b0000")
PARAM_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
BASELINE_PEN = pg.mkPen("#555555", width=1, style=QtCore.Qt.PenStyle.DashLine)
SEQ_CMAP = "viridis"
DIV_CMAP = "CET-D1"


def _spec(cell: str):
    """The registered spec of ``cell``, or None for a cell this program does not know (a file from elsewhere)."""
    from kernels import cells
    from kernels.errors import KernelInputError

    try:
        return cells.get(cell)
    except KernelInputError:
        return None


def cell_color(cell: str) -> str:
    """The cell's colour in every plot and export (its registry entry: RNN orange, LSTM blue, GRU green)."""
    spec = _spec(cell)
    return spec.color if spec else "#444444"


def cell_title(cell: str) -> str:
    """"LSTM" for a registered cell, the name upper-cased otherwise."""
    spec = _spec(cell)
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


def _series(run, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(step, value)`` of a scalar series, checked: 1-D numbers of the same length."""
    step, _, value = run.scalar(name)
    step = checked(step, run, f"the steps of {name!r}", 1)
    return step, checked(value, run, f"the values of {name!r}", 1, rows=step.shape[0])


def _style_curve(item: pg.PlotDataItem) -> pg.PlotDataItem:
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


def _set_title(plot: pg.PlotItem, text: str) -> None:
    """setTitle only when the text changed (each call re-lays-out and repaints the plot)."""
    if getattr(plot, "_title_text", None) != text:
        plot._title_text = text
        plot.setTitle(text)


def _selected_steps(runs: list, probes: dict) -> tuple:
    return tuple((r.name, None if probes.get(r.name) is None else probes[r.name]["step"]) for r in runs)


def _rows_key(runs: list) -> tuple:
    return tuple((r.name, len(r)) for r in runs)


def _probes_key(runs: list) -> tuple:
    return tuple((r.name, int(np.asarray(r.probe_steps).shape[0])) for r in runs)


def _fix_x(plot: pg.PlotItem, settings: dict) -> None:
    """Live runs know their last step: a fixed x range keeps the axes from being
    re-laid-out and repainted on every frame (the costliest part of a frame)."""
    x_max = settings.get("x_max")
    if x_max and getattr(plot, "_fixed_x", None) != x_max:
        plot._fixed_x = x_max
        plot.enableAutoRange(x=False)
        plot.setXRange(0, x_max, padding=0.01)


class _StickyY:
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


def _finite_range(arrays, log: bool) -> tuple[float, float]:
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


def _wide_table(runs: list, series: list[tuple[str, Any, str]]) -> tuple[list[str], list[list]]:
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


class ScalarGroup(PlotGroup):
    """A per-step scalar of every run (loss or metric) with EMA smoothing and the chance baseline."""

    scalar = "loss"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.add_plot(0, 0, self.title, "training step", self.ylabel())
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.raw: dict[str, pg.PlotDataItem] = {}
        self.smooth: dict[str, pg.PlotDataItem] = {}
        self.baseline = self.plot.plot([], [], pen=BASELINE_PEN, name="chance")
        self._log = False
        self._ema: dict[str, tuple] = {}   # run name -> (smoothing, n, smoothed array, carry)
        self._sticky = _StickyY(self.plot)

    def _smoothed(self, run, value: np.ndarray, smoothing: float) -> np.ndarray:
        """EMA of ``value``, computing only the rows added since the last frame."""
        cached = self._ema.get(run.name)
        n = value.shape[0]
        if cached is not None and cached[0] == smoothing and cached[1] <= n:
            _, n0, old, carry = cached
            tail, carry = ema_carry(value[n0:], smoothing, carry)
            out = np.concatenate([old, tail]) if n0 else tail
        else:
            out, carry = ema_carry(value, smoothing)
        self._ema[run.name] = (smoothing, n, out, carry)
        return out

    def ylabel(self) -> str:
        return "loss"

    def _curves(self, run):
        if run.name not in self.raw:
            c = pg.mkColor(cell_color(run.cell))
            faint = pg.mkColor(c)
            faint.setAlpha(70)
            self.raw[run.name] = _style_curve(self.plot.plot([], [], pen=pg.mkPen(faint, width=1)))
            self.smooth[run.name] = _style_curve(self.plot.plot([], [], pen=pg.mkPen(c, width=getattr(self, "_width", 2)),
                                                                name=cell_label(run)))
        return self.raw[run.name], self.smooth[run.name]

    def prepare(self, runs) -> None:
        for run in runs:
            self._curves(run)

    def data_key(self, runs, probes, settings):
        return (_rows_key(runs), float(settings.get("smoothing", 0.6)), bool(settings.get("log", False)),
                settings.get("x_max"), bool(settings.get("live")))

    def _set_width(self, width: int) -> None:
        """Smoothed curves 2 px wide, but 1 px while a run is live: a wide pen costs about three
        times as much to paint (pyqtgraph strokes it), and each live frame repaints every point."""
        if width != getattr(self, "_width", 2):
            self._width = width
            for name, curve in self.smooth.items():
                curve.setPen(pg.mkPen(curve.opts["pen"].color(), width=width))

    def draw(self, runs, probes, settings) -> None:
        self._set_width(1 if settings.get("live") else 2)
        log = bool(settings.get("log", False))
        if log != self._log:
            self._log = log
            self.plot.setLogMode(False, log)
            self.plot.vb.enableAutoRange(y=True)   # new units: let the sticky range start over
        smoothing = float(settings.get("smoothing", 0.6))
        _fix_x(self.plot, settings)
        last = 1
        shown = []
        for run in runs:
            raw, smooth = self._curves(run)
            step, value = _series(run, self.scalar)
            if step.size == 0:
                continue
            raw.setData(step, value)
            smooth.setData(step, self._smoothed(run, value, smoothing))
            shown.append(value)
            last = max(last, int(step[-1]))
            self.has_data = True
        if runs:
            b = runs[0].baseline["loss" if self.scalar == "loss" else "metric"]
            if math.isfinite(b):
                end = max(last, int(settings.get("x_max") or 0))
                if getattr(self, "_baseline_at", None) != (end, b):
                    self._baseline_at = (end, b)
                    self.baseline.setData([0, end], [b, b])
                shown.append(np.array([b]))
        if shown:
            self._sticky.fit(*_finite_range(shown, log))

    def csv_table(self, runs, probes):
        return _wide_table(runs, [(f"{r.name}_{self.scalar}", r, self.scalar) for r in runs])


class LossGroup(ScalarGroup):
    name, title, scalar = "loss", "Loss", "loss"

    def ylabel(self) -> str:
        return "loss (task loss, per batch)"


class MetricGroup(ScalarGroup):
    name, title, scalar = "metric", "Task metric", "metric"

    def ylabel(self) -> str:
        return "metric (MSE: lower is better; accuracy: fraction)"

    def draw(self, runs, probes, settings) -> None:
        super().draw(runs, probes, settings)
        if runs:
            r = runs[0]
            better = "higher" if r.higher_is_better else "lower"
            label = f"{r.metric_name} ({better} is better)"
            if getattr(self, "_ylabel", None) != label:
                self._ylabel = label
                self.plot.setLabel("left", label)


class GradFlowGroup(PlotGroup):
    """log10 ‖∂L/∂h_t‖ against t at the selected probe of each run."""

    name, title, uses_probes = "grad-flow", "Gradient flow through time", True

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.add_plot(0, 0, self.title, "time step t", "log10 ‖∂L/∂h_t‖")
        self.legend = self.plot.addLegend(offset=(10, 10))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._sticky = _StickyY(self.plot)

    def prepare(self, runs) -> None:
        for run in runs:
            self._curve(run)

    def _curve(self, run) -> pg.PlotDataItem:
        if run.name not in self.curves:
            self.curves[run.name] = self.plot.plot([], [], pen=pg.mkPen(cell_color(run.cell), width=2),
                                                   name=cell_label(run))
        return self.curves[run.name]

    def data_key(self, runs, probes, settings):
        return _selected_steps(runs, probes)

    def draw(self, runs, probes, settings) -> None:
        steps, shown = [], []
        for run in runs:
            p = probes.get(run.name)
            curve = self._curve(run)
            if p is None:
                continue
            y = log10_safe(checked(p["grad_norm_t"], run, "the probe's grad_norm_t", 1))
            curve.setData(np.arange(y.shape[0]), y)
            shown.append(y)
            steps.append(str(p["step"]))
            self.has_data = True
        _set_title(self.plot, f"{self.title}" + (f" (step {'/'.join(sorted(set(steps)))})" if steps else ""))
        if shown:
            self._sticky.fit(*_finite_range(shown, False))

    def csv_table(self, runs, probes):
        cols = [(r, probes.get(r.name)) for r in runs if probes.get(r.name) is not None]
        L = max((p["grad_norm_t"].shape[0] for _, p in cols), default=0)
        header = ["t"] + [f"{r.name}_grad_norm_at_step_{p['step']}" for r, p in cols]
        rows = [[t] + [float(p["grad_norm_t"][t]) if t < p["grad_norm_t"].shape[0] else "" for _, p in cols]
                for t in range(L)]
        return header, rows


class _Heatmap:
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


class GradHeatmapGroup(PlotGroup):
    """log10 ‖∂L/∂h_t‖ over (training step × t), one heatmap per run."""

    name, title = "grad-heatmap", "Gradient flow over training"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.maps: dict[str, _Heatmap] = {}
        self.bar: pg.ColorBarItem | None = None  # one colour bar for every run: they share the levels
        self._linked = 0  # heatmaps the bar drives

    def prepare(self, runs) -> None:
        for run in runs:
            self._map(run)
        self._link_bar()

    def _map(self, run) -> _Heatmap:
        if run.name not in self.maps:
            p = self.add_plot(0, len(self.maps), f"{cell_label(run)}: log10 ‖∂L/∂h_t‖",
                              "time step t", "training step")
            self.maps[run.name] = _Heatmap(p, "inferno", bar=self.bar or self._new_bar())
        return self.maps[run.name]

    def _new_bar(self) -> pg.ColorBarItem:
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("inferno"), interactive=False,
                                   width=12)
        return self.bar

    def _link_bar(self) -> None:
        """Put the shared colour bar beside the last heatmap, driving every heatmap's colours."""
        images = [hm.image for hm in self.maps.values()]
        if self.bar is not None and images and self._linked != len(images):
            last = list(self.maps.values())[-1].plot
            self.bar.setImageItem(images, insert_in=None if self._linked else last)
            self._linked = len(images)

    def data_key(self, runs, probes, settings):
        return (_probes_key(runs), settings.get("x_max"))

    def draw(self, runs, probes, settings) -> None:
        data = {}
        x_max = settings.get("x_max")
        for run in runs:
            hm = self._map(run)
            self._link_bar()
            if x_max and getattr(hm.plot, "_fixed_y", None) != x_max:
                # a live run grows upwards inside a fixed frame instead of re-ranging the axes each probe
                hm.plot._fixed_y = x_max
                hm.plot.enableAutoRange(x=False, y=False)
                hm.plot.setXRange(0, run.length, padding=0.0)
                hm.plot.setYRange(0, x_max, padding=0.01)
            steps = checked(run.probe_steps, run, "the probe steps", 1)
            gn = checked(run.probe_series("grad_norm_t"), run, "the probes' grad_norm_t", 2, rows=steps.shape[0])
            if gn.shape[0]:
                data[run.name] = (log10_safe(gn), steps)
        finite = [d[np.isfinite(d)] for d, _ in data.values()]
        finite = [f for f in finite if f.size]
        if not finite:
            return
        lo = float(min(f.min() for f in finite))
        hi = float(max(f.max() for f in finite))
        if hi <= lo:
            hi = lo + 1.0
        for name, (d, steps) in data.items():
            L = d.shape[1]
            s0, s1 = float(steps[0]), float(steps[-1])
            # the P rows share the span from the first probe's step to the last one's, so the picture
            # never reaches past the steps trained (row k lies on or next to probe k's step)
            self.maps[name].set(d, (0.0, s0, float(L), max(s1 - s0, 1.0)), (lo, hi))
            self.has_data = True

    def csv_table(self, runs, probes):
        L = max((r.length for r in runs), default=0)
        header = ["run", "step"] + [f"t{t}" for t in range(L)]
        rows = []
        for run in runs:
            gn = np.asarray(run.probe_series("grad_norm_t"))
            for s, row in zip(np.asarray(run.probe_steps).tolist(), gn):
                rows.append([run.name, int(s)] + [float(v) for v in row])
        return header, rows


def gate_panels(run) -> list[tuple[str, str, str, tuple | None]]:
    """The heatmaps of one run's insides: ``(quantity, title, colour map, levels)`` for each sigmoid gate,
    then each tanh gate, then the cell state c (cells with one) — or h for a cell without gates.
    ``levels`` None: symmetric around 0 from the data."""
    spec = _spec(run.cell)
    names = tuple(run.gate_names)
    labels = dict(zip(spec.gates, spec.gate_labels)) if spec else {}
    tanh = set(spec.tanh_gates) if spec else set()
    who = cell_label(run)
    panels = [(g, f"{who} {labels.get(g, 'gate')} gate {g}", SEQ_CMAP, (0.0, 1.0)) for g in names if g not in tanh]
    panels += [(g, f"{who} candidate {g}", DIV_CMAP, (-1.0, 1.0)) for g in names if g in tanh]
    if run.has_cell_state:
        panels.append(("c", f"{who} cell state c_t", DIV_CMAP, None))
    if not names:
        panels.append(("h", f"{who} hidden state h_t", DIV_CMAP, (-1.0, 1.0)))
    return panels


class GatesGroup(PlotGroup):
    """Each cell's insides on the probe sequence (t × unit): its gates (LSTM i, f, o, g; GRU r, z, n),
    the LSTM's cell state c_t, and h_t for a cell without gates (the RNN)."""

    name, title, uses_probes = "gates", "Inside the cells on the probe sequence", True
    COLUMNS = 3

    def __init__(self, parent=None):
        super().__init__(parent)
        self.maps: dict[tuple[str, str], _Heatmap] = {}
        self.panels: dict[str, list] = {}

    def prepare(self, runs) -> None:
        for run in runs:
            if run.name in self.panels:
                continue
            self.panels[run.name] = gate_panels(run)
            for q, title, cmap, levels in self.panels[run.name]:
                k = len(self.maps)
                p = self.add_plot(k // self.COLUMNS, k % self.COLUMNS, title, "time step t", "unit")
                self.maps[(run.name, q)] = _Heatmap(p, cmap, levels or (-1.0, 1.0))

    def data_key(self, runs, probes, settings):
        return _selected_steps(runs, probes)

    def _arrays(self, runs, probes):
        """(run, quantity) -> (array (L, H), step) for the selected probes."""
        out = {}
        for run in runs:
            p = probes.get(run.name)
            if p is None:
                continue
            gates = p.get("gates")
            if gates is not None:
                gates = checked(gates, run, "the probe's gates", 3, row=(run.length, run.hidden))
                if gates.shape[0] != len(run.gate_names):
                    raise PlotDataError(f"run {run.name!r}: the probe has {gates.shape[0]} gates, its gate order "
                                        f"names {len(run.gate_names)}")
                for j, q in enumerate(run.gate_names):
                    out[(run.name, q)] = (gates[j], p["step"])
            for q in ("c", "h"):
                if p.get(q) is not None:
                    out[(run.name, q)] = (checked(p[q], run, f"the probe's {q}", 2, row=(run.hidden,)), p["step"])
        return out

    def draw(self, runs, probes, settings) -> None:
        self.prepare(runs)
        arrays = self._arrays(runs, probes)
        for run in runs:
            for q, title, _cmap, levels in self.panels[run.name]:
                got = arrays.get((run.name, q))
                if got is None:
                    continue
                a, step = got
                a = a.astype(np.float32)
                L, H = a.shape
                if levels is None:
                    finite = np.abs(a[np.isfinite(a)])
                    m = float(finite.max()) if finite.size else 1.0
                    levels = (-max(m, 1e-6), max(m, 1e-6))
                hm = self.maps[(run.name, q)]
                hm.set(a.T, (0.0, 0.0, float(L), float(H)), levels)
                _set_title(hm.plot, f"{title} (step {step})")
                self.has_data = True

    def csv_table(self, runs, probes):
        arrays = self._arrays(runs, probes)
        H = max((a.shape[1] for a, _ in arrays.values()), default=0)
        header = ["cell", "quantity", "step", "t"] + [f"unit{u}" for u in range(H)]
        rows = []
        for run in runs:
            for q, *_rest in gate_panels(run):
                if (run.name, q) not in arrays:
                    continue
                a, step = arrays[(run.name, q)]
                for t, row in enumerate(np.asarray(a, dtype=np.float64)):
                    rows.append([run.cell, q, int(step), t] + [float(v) for v in row])
        return header, rows


class SaturationGroup(PlotGroup):
    """Fraction of saturated gate values over training, per gate, for every cell with gates."""

    name, title = "saturation", "Gate saturation"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.add_plot(0, 0, self.title + " (value &lt; 0.1 or &gt; 0.9)", "training step",
                                  "fraction saturated")
        self.plot.setYRange(0, 1)
        self.legend = self.plot.addLegend(offset=(10, 10))
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}

    def prepare(self, runs) -> None:
        gated = [r for r in runs if r.gate_names]
        for run in gated:
            for g in run.gate_names:
                self._curve(run, g, len(gated))

    def _curve(self, run, g: str, n_gated: int) -> pg.PlotDataItem:
        key = (run.name, g)
        if key not in self.curves:
            label = f"{cell_title(run.cell)} {g}" if n_gated > 1 else g
            colour = GATE_PALETTE[len(self.curves) % len(GATE_PALETTE)]
            runs_seen = list(dict.fromkeys(k[0] for k in self.curves))
            k = runs_seen.index(run.name) if run.name in runs_seen else len(runs_seen)
            style = (QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenStyle.DashLine)[k % 2]   # one style per cell
            self.curves[key] = self.plot.plot([], [], pen=pg.mkPen(colour, width=2, style=style), name=label,
                                              symbol="o", symbolSize=4, symbolBrush=colour, symbolPen=None)
        return self.curves[key]

    def data_key(self, runs, probes, settings):
        return (_probes_key(runs), settings.get("x_max"))

    def draw(self, runs, probes, settings) -> None:
        gated = [r for r in runs if r.gate_names]
        _fix_x(self.plot, settings)
        for run in gated:
            steps = checked(run.probe_steps, run, "the probe steps", 1)
            sat = checked(run.probe_series("saturation"), run, "the probes' saturation", 2,
                          row=(len(run.gate_names),), rows=steps.shape[0])
            for j, g in enumerate(run.gate_names):
                curve = self._curve(run, g, len(gated))
                if sat.shape[0]:
                    curve.setData(steps, sat[:, j])
                    self.has_data = True

    def csv_table(self, runs, probes):
        header, rows = ["run", "step", "gate", "saturated"], []
        for run in runs:
            if not run.gate_names:
                continue
            sat = np.asarray(run.probe_series("saturation"))
            for s, row in zip(np.asarray(run.probe_steps).tolist(), sat):
                rows += [[run.name, int(s), g, float(v)] for g, v in zip(run.gate_names, row)]
        return header, rows


class ParamGradsGroup(PlotGroup):
    """Gradient L2 norm per parameter over training, one plot per run."""

    name, title = "param-grads", "Gradient norm per parameter"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.subplots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._sticky: dict[str, _StickyY] = {}

    def prepare(self, runs) -> None:
        for run in runs:
            self._subplot(run)

    def _subplot(self, run) -> pg.PlotItem:
        if run.name not in self.subplots:
            p = self.add_plot(0, len(self.subplots), f"{cell_label(run)}: ‖∂L/∂θ‖ per parameter",
                              "training step", "gradient L2 norm (log scale)")
            p.setLogMode(False, True)
            p.addLegend(offset=(-10, 10))
            self.subplots[run.name] = p
            self._sticky[run.name] = _StickyY(p)
            for k, param in enumerate(PARAM_GRAD_NAMES):
                if f"grad_norm/{param}" in run.scalar_names:
                    self.curves[(run.name, param)] = _style_curve(
                        p.plot([], [], pen=pg.mkPen(PARAM_COLORS[k], width=1), name=param))
        return self.subplots[run.name]

    def data_key(self, runs, probes, settings):
        return (_rows_key(runs), settings.get("x_max"))

    def draw(self, runs, probes, settings) -> None:
        for run in runs:
            p = self._subplot(run)
            _fix_x(p, settings)
            shown = []
            for param in PARAM_GRAD_NAMES:
                curve = self.curves.get((run.name, param))
                if curve is None or f"grad_norm/{param}" not in run.scalar_names:
                    continue
                step, value = _series(run, f"grad_norm/{param}")
                if step.size:
                    curve.setData(step, value)
                    shown.append(value)
                    self.has_data = True
            if shown:
                self._sticky[run.name].fit(*_finite_range(shown, True))

    def csv_table(self, runs, probes):
        series = [(f"{r.name}_{p}", r, f"grad_norm/{p}") for r in runs for p in PARAM_GRAD_NAMES
                  if f"grad_norm/{p}" in r.scalar_names]
        return _wide_table(runs, series)


GROUP_CLASSES = (LossGroup, MetricGroup, GradFlowGroup, GradHeatmapGroup, GatesGroup, SaturationGroup,
                 ParamGradsGroup)
assert tuple(c.name for c in GROUP_CLASSES) == tuple(PLOT_NAMES)


class SessionView(QtWidgets.QWidget):
    """All plot groups for one session (live or replayed), a probe slider and a play button.

    ``session`` is a ``sessions.Session`` or an :class:`explorer.gui.data.LiveSession`.
    Call :meth:`refresh` from a timer: it redraws only what changed.
    """

    probe_changed = QtCore.Signal(int)
    #: a followed session file's writer finished (or died): the view stopped following it
    following_ended = QtCore.Signal()

    def __init__(self, session, parent=None, follow_file: bool = False):
        super().__init__(parent)
        self.session = session
        self.follow_file = follow_file
        self.groups: dict[str, PlotGroup] = {c.name: c() for c in GROUP_CLASSES}
        runs = session.runs
        for grp in self.groups.values():
            grp.prepare(runs)
        self.settings = {"smoothing": 0.6, "log": False}
        self._drawn_key = None
        self._stale = True         # some group may be behind the data (drawn lazily, or hidden)
        self._next_group = 0       # round-robin start when a frame draws only some groups
        self._follow_latest = True
        self._last_file_refresh = 0.0
        self.export_handler = None

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QtWidgets.QHBoxLayout()
        self.log_box = QtWidgets.QCheckBox("log scale")
        self.log_box.setToolTip("logarithmic y axis for loss and metric")
        self.log_box.toggled.connect(self._on_log)
        bar.addWidget(self.log_box)
        bar.addWidget(QtWidgets.QLabel("smoothing"))
        self.smooth_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(60)
        self.smooth_slider.setMaximumWidth(160)
        self.smooth_slider.setToolTip("EMA smoothing of loss and metric, as in TensorBoard (0 = raw)")
        self.smooth_slider.valueChanged.connect(self._on_smoothing)
        bar.addWidget(self.smooth_slider)
        self.smooth_label = QtWidgets.QLabel("0.60")
        bar.addWidget(self.smooth_label)
        bar.addStretch(1)
        self.info_label = QtWidgets.QLabel("")
        bar.addWidget(self.info_label)
        layout.addLayout(bar)

        self.tabs = QtWidgets.QTabWidget()
        g = self.groups
        if len(session.runs) <= 2:
            first = [[g["loss"], g["metric"]], [g["grad-flow"], g["grad-heatmap"]]]
        else:   # a heatmap per run needs the whole width
            first = [[g["loss"], g["metric"], g["grad-flow"]], [(g["grad-heatmap"], 3)]]
        self.tabs.addTab(self._grid(first), "Loss && gradient flow")
        self.tabs.addTab(self._grid([[g["gates"]]]), "Inside the cells")
        self.tabs.addTab(self._grid([[g["saturation"]], [g["param-grads"]]]), "Saturation && parameter gradients")
        self.tabs.currentChanged.connect(self._on_inner_tab)
        layout.addWidget(self.tabs, 1)

        probe_bar = QtWidgets.QHBoxLayout()
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setText("▶")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("play through the probe snapshots")
        self.play_button.toggled.connect(self._on_play)
        probe_bar.addWidget(self.play_button)
        probe_bar.addWidget(QtWidgets.QLabel("probe"))
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("scrub through the probe snapshots: gate heatmaps and gradient flow at that step")
        self.slider.valueChanged.connect(self._on_slider)
        probe_bar.addWidget(self.slider, 1)
        self.probe_label = QtWidgets.QLabel("no probe yet")
        self.probe_label.setMinimumWidth(150)
        probe_bar.addWidget(self.probe_label)
        layout.addLayout(probe_bar)

        # widgets updated while training paint their own background, so an update does not repaint
        # the tab widgets beneath them too
        for w in (self.info_label, self.probe_label, self.slider):
            w.setAutoFillBackground(True)

        self._play_timer = QtCore.QTimer(self)
        self._play_timer.setInterval(150)
        self._play_timer.timeout.connect(self._play_tick)
        for grp in self.groups.values():
            grp.export_handler = self._export

    # -- layout helpers --------------------------------------------------------------------------
    @staticmethod
    def _grid(rows) -> QtWidgets.QWidget:
        """A widget laying ``rows`` of plot groups out in a grid; an item ``(group, n)`` spans n columns."""
        w = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(w)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        for r, row in enumerate(rows):
            c = 0
            for item in row:
                item, span = item if isinstance(item, tuple) else (item, 1)
                grid.addWidget(item, r, c, 1, span)
                c += span
        return w

    def _export(self, name: str, fmt: str) -> None:
        if self.export_handler is not None:
            self.export_handler(self, name, fmt)

    # -- state -----------------------------------------------------------------------------------
    @property
    def runs(self) -> list:
        return self.session.runs

    def reference_steps(self) -> np.ndarray:
        """Probe steps of the run with the most probes (the slider's positions)."""
        best = np.empty(0, np.int64)
        for run in self.runs:
            s = np.asarray(run.probe_steps)
            if s.shape[0] > best.shape[0]:
                best = s
        return best

    def _selection(self) -> dict[str, tuple[int, int] | None]:
        """Per run: (index, step) of the probe at the slider's step (the newest at or before it), or None."""
        ref = self.reference_steps()
        if ref.shape[0] == 0:
            return {r.name: None for r in self.runs}
        target = int(ref[min(self.slider.value(), ref.shape[0] - 1)])
        out: dict[str, tuple[int, int] | None] = {}
        for run in self.runs:
            steps = np.asarray(run.probe_steps)
            if steps.shape[0] == 0:
                out[run.name] = None
                continue
            i = max(int(np.searchsorted(steps, target, side="right")) - 1, 0)
            out[run.name] = (i, int(steps[i]))
        return out

    def selected_probes(self) -> dict[str, dict | None]:
        """Per run: the probe at the slider's step (the newest at or before it), or None."""
        runs = {r.name: r for r in self.runs}
        return {name: None if sel is None else runs[name].probe(sel[0]) for name, sel in self._selection().items()}

    def _data_key(self):
        return tuple((r.name, len(r), int(np.asarray(r.probe_steps).shape[0]), r.status) for r in self.runs)

    # -- slots -----------------------------------------------------------------------------------
    def _on_log(self, on: bool) -> None:
        self.settings["log"] = bool(on)
        self.refresh(force=True)

    def _on_smoothing(self, v: int) -> None:
        self.settings["smoothing"] = v / 100.0
        self.smooth_label.setText(f"{v / 100:.2f}")
        self.refresh(force=True)

    def _on_slider(self, v: int) -> None:
        self._follow_latest = v >= self.slider.maximum()
        self.refresh_probes()
        self.probe_changed.emit(v)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._stale = True

    def _on_inner_tab(self, _index: int) -> None:
        self._stale = True          # the groups now shown may have skipped frames while hidden
        self.refresh()

    def _on_play(self, on: bool) -> None:
        self.play_button.setText("⏸" if on else "▶")
        if on:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self._play_timer.start()
        else:
            self._play_timer.stop()

    def _play_tick(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play_button.setChecked(False)
        else:
            self.slider.setValue(self.slider.value() + 1)

    # -- drawing ---------------------------------------------------------------------------------
    def refresh(self, force: bool = False, max_groups: int | None = None) -> bool:
        """Redraw what changed since the last call; returns True when something was drawn.

        A frame redraws only the groups on screen whose data changed (hidden ones catch up
        when their tab is shown); ``max_groups`` caps how many it draws (the others follow
        on the next frames, round-robin), so one frame never holds the event loop long.
        ``force`` redraws every group, shown or not.
        """
        if self.follow_file:
            import time

            now = time.monotonic()
            if now - self._last_file_refresh > 1.0:
                self._last_file_refresh = now
                self.session.refresh()
                if not getattr(self.session, "live", False):
                    self.follow_file = False
                    self.following_ended.emit()
        key = self._data_key()
        if key != self._drawn_key or force:
            self._drawn_key = key
            self._stale = True
            n = self.reference_steps().shape[0]
            if n and (self.slider.maximum() != n - 1 or (self._follow_latest and self.slider.value() != n - 1)):
                self.slider.blockSignals(True)
                self.slider.setRange(0, n - 1)
                if self._follow_latest:
                    self.slider.setValue(n - 1)
                self.slider.blockSignals(False)
            self._update_info()
        if not self._stale:
            return False
        drew, pending = self._draw_groups(list(self.groups.values()), force=force, all_groups=force,
                                          max_groups=max_groups)
        self._stale = pending
        self._update_probe_label()
        return drew > 0

    def refresh_probes(self) -> None:
        """Redraw the probe plots (gradient flow, gates) for the slider's step, shown or not."""
        self._update_probe_label()
        self._draw_groups([g for g in self.groups.values() if g.uses_probes], all_groups=True)

    def draw_group(self, name: str) -> None:
        """Bring one group up to date now (before exporting it, say)."""
        self._draw_groups([self.groups[name]], all_groups=True)

    def _draw_groups(self, groups: list, force: bool = False, all_groups: bool = False,
                     max_groups: int | None = None) -> tuple[int, bool]:
        runs = self.runs
        selection = self._selection()
        steps_only = {n: None if sel is None else {"step": sel[1]} for n, sel in selection.items()}
        loaded: list = []

        def probes() -> dict:
            """The selected probes' arrays, read once and only when a probe plot redraws."""
            if not loaded:
                by_name = {r.name: r for r in runs}
                loaded.append({n: None if sel is None else by_name[n].probe(sel[0]) for n, sel in selection.items()})
            return loaded[0]

        n = len(groups)
        start = self._next_group % n if (max_groups is not None and n) else 0
        drew, pending = 0, False
        for k in range(n):
            grp = groups[(start + k) % n]
            if not (all_groups or grp.isVisible()):
                continue           # caught up when its tab is shown (see _on_inner_tab, showEvent)
            key = grp.data_key(runs, steps_only if grp.uses_probes else {}, self.settings)
            if not force and key is not None and key == grp.drawn_key:
                continue
            if max_groups is not None and drew >= max_groups:
                pending = True
                continue
            grp.draw(runs, probes() if grp.uses_probes else {}, self.settings)
            grp.drawn_key = key
            drew += 1
            if max_groups is not None:
                self._next_group = (start + k + 1) % n
        return drew, pending

    def _update_probe_label(self) -> None:
        ref = self.reference_steps()
        if ref.shape[0]:
            v = min(self.slider.value(), ref.shape[0] - 1)
            text = f"step {int(ref[v])}  ({v + 1}/{ref.shape[0]})"
            if self.probe_label.text() != text:
                self.probe_label.setText(text)

    def _update_info(self) -> None:
        parts = []
        for run in self.runs:
            init = getattr(run, "init", "default")
            extra = "".join(f", {v}" for v in getattr(run, "cell_options", {}).values() if v != "tanh")
            extra += f", init {init}" if init != "default" else ""
            parts.append(f"{cell_label(run)}: {run.status}, step {run.steps}, {run.param_count} params{extra}")
        self.info_label.setText("   ".join(parts))
