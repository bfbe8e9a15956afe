"""Per-step scalars of every run: loss and task metric (smoothed, chance baseline, the solved marker) and
the per-parameter gradient norms."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from PySide6 import QtCore

from explorer.console import compact
from explorer.gui.plots.base import (BASELINE_PEN, PARAM_COLORS, EmaCache, PlotGroup, StickyY, cell_color, cell_label,
                                     faint, finite_range, fix_x, rows_key, scalar_series, style_curve, wide_table)
from explorer.training import PARAM_GRAD_NAMES


class ScalarGroup(PlotGroup):
    """A per-step scalar of every run (loss or metric) with EMA smoothing and the chance baseline."""

    scalar = "loss"
    marks_solved = False        # a line where each run's task was solved

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.add_plot(0, 0, self.title, "training step", self.ylabel())
        self.plot.getAxis("left").enableAutoSIPrefix(False)   # an accuracy of 0.8 reads 0.8, not 800 (x0.001)
        self.legend = self.plot.addLegend(offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 210))  # over the chance line
        self.raw: dict[str, pg.PlotDataItem] = {}
        self.smooth: dict[str, pg.PlotDataItem] = {}
        self.baseline = self.plot.plot([], [], pen=BASELINE_PEN, name="chance")
        self._log = False
        self._ema = EmaCache()
        self._sticky = StickyY(self.plot)
        self._solved_lines: dict[str, pg.InfiniteLine] = {}

    def ylabel(self) -> str:
        return "loss"

    def _curves(self, run):
        if run.name not in self.raw:
            c = pg.mkColor(cell_color(run.cell))
            faint = pg.mkColor(c)
            faint.setAlpha(70)
            self.raw[run.name] = style_curve(self.plot.plot([], [], pen=pg.mkPen(faint, width=1)))
            self.smooth[run.name] = style_curve(self.plot.plot([], [], pen=pg.mkPen(c, width=getattr(self, "_width", 2)),
                                                                name=cell_label(run)))
        return self.raw[run.name], self.smooth[run.name]

    def prepare(self, runs) -> None:
        for run in runs:
            self._curves(run)

    def data_key(self, runs, probes, settings):
        return (rows_key(runs), float(settings.get("smoothing", 0.6)), bool(settings.get("log", False)),
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
        fix_x(self.plot, settings)
        last = 1
        shown = []
        for run in runs:
            raw, smooth = self._curves(run)
            step, value = scalar_series(run, self.scalar)
            if step.size == 0:
                continue
            raw.setData(step, value)
            smooth.setData(step, self._ema(run.name, value, smoothing))
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
            self._sticky.fit(*finite_range(shown, log))
        if self.marks_solved:
            for run in runs:
                self._mark_solved(run)

    def _mark_solved(self, run) -> None:
        """A dotted vertical line in the run's colour where its task's stop rule first held, labelled along
        the line "LSTM solved at step N (M seq.)" (text parallel to the line, so it never runs off the
        plot's side; beside the line, under the top where the chance line and legend sit)."""
        solved = getattr(run, "solved_at", None)
        if solved is None or run.name in self._solved_lines:
            return
        color = cell_color(run.cell)
        text = f"{cell_label(run)} solved at step {solved['step']:,} ({compact(solved['sequences'])} seq.)"
        self._solved_lines[run.name] = line = pg.InfiniteLine(
            pos=solved["step"], angle=90, movable=False, pen=pg.mkPen(color, width=1, style=QtCore.Qt.PenStyle.DotLine),
            label=text, labelOpts=dict(position=0.04, rotateAxis=(1, 0), color=color, anchors=[(0, 1), (0, 1)]))
        font = line.label.textItem.font()
        font.setPointSizeF(8)
        line.label.setFont(font)
        self.plot.addItem(line, ignoreBounds=True)

    def csv_table(self, runs, probes):
        return wide_table(runs, [(f"{r.name}_{self.scalar}", r, self.scalar) for r in runs])


class LossGroup(ScalarGroup):
    name, title, scalar, marks_solved = "loss", "Loss", "loss", True

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
                # the legend in the corner the curves leave free: below a metric that rises, above one that falls
                self.legend.setOffset((-10, -10) if r.higher_is_better else (-10, 10))



class ParamGradsGroup(PlotGroup):
    """Gradient L2 norm per parameter over training, one plot per run: raw faint, smoothed (the view's
    smoothing) bold."""

    name, title = "param-grads", "Gradient norm per parameter"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.subplots: dict[str, pg.PlotItem] = {}
        self.raw: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.smooth: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._ema = EmaCache()
        self._sticky: dict[str, StickyY] = {}

    def prepare(self, runs) -> None:
        for run in runs:
            self._subplot(run)

    def _subplot(self, run) -> pg.PlotItem:
        if run.name not in self.subplots:
            p = self.add_plot(0, len(self.subplots), f"{cell_label(run)}: ‖∂L/∂θ‖ per parameter",
                              "training step", "gradient L2 norm (log scale)")
            p.setLogMode(False, True)
            if not self.subplots:   # one legend (every run's plot has the same colours), in two columns at the
                p.addLegend(offset=(10, -10), colCount=2)   # bottom, where the smallest gradients thin out
            self.subplots[run.name] = p
            self._sticky[run.name] = StickyY(p)
            for k, param in enumerate(PARAM_GRAD_NAMES):
                if f"grad_norm/{param}" in run.scalar_names:
                    self.raw[(run.name, param)] = style_curve(p.plot([], [], pen=pg.mkPen(faint(PARAM_COLORS[k], 35))))
                    self.smooth[(run.name, param)] = style_curve(
                        p.plot([], [], pen=pg.mkPen(PARAM_COLORS[k], width=1.5), name=param))
        return self.subplots[run.name]

    def data_key(self, runs, probes, settings):
        return (rows_key(runs), settings.get("x_max"), float(settings.get("smoothing", 0.6)))

    def draw(self, runs, probes, settings) -> None:
        for run in runs:
            p = self._subplot(run)
            fix_x(p, settings)
            shown = []
            smoothing = float(settings.get("smoothing", 0.6))
            for param in PARAM_GRAD_NAMES:
                key = (run.name, param)
                if key not in self.smooth or f"grad_norm/{param}" not in run.scalar_names:
                    continue
                step, value = scalar_series(run, f"grad_norm/{param}")
                if step.size:
                    self.raw[key].setData(step, value)
                    self.smooth[key].setData(step, self._ema(key, value, smoothing))
                    shown.append(value)
                    self.has_data = True
            if shown:
                self._sticky[run.name].fit(*finite_range(shown, True))

    def csv_table(self, runs, probes):
        series = [(f"{r.name}_{p}", r, f"grad_norm/{p}") for r in runs for p in PARAM_GRAD_NAMES
                  if f"grad_norm/{p}" in r.scalar_names]
        return wide_table(runs, series)
