"""Gradient flow through time: ‖∂L/∂h_t‖ over t at the selected probe, and over training as a heatmap."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore

from explorer.gui.plots.base import (Heatmap, InputStrip, PlotGroup, StickyY, cell_color, cell_label, checked, finite_range,
                                     log10_safe, probes_key, selected_steps, set_title)


class GradFlowGroup(PlotGroup):
    """log10 of a per-t probe array against t at the selected probe of each run: ‖∂L/∂h_t‖ here;
    subclasses name another ``series`` (the input saliency). A file without it says so in the title."""

    name, title, uses_probes = "grad-flow", "Gradient flow through time", True
    series, quantity, since = "grad_norm_t", "‖∂L/∂h_t‖", "1.0"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.add_plot(0, 0, self.title, "", f"log10 {self.quantity}")
        self.strip = InputStrip(self, 1, 0, self.plot)      # the probe's inputs beneath, t aligned
        # bottom right: the gradient is largest at t = T, a forgetting cell's saliency smallest early,
        # so the curves leave that corner free
        self.legend = self.plot.addLegend(offset=(-10, -10))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._sticky = StickyY(self.plot)

    def prepare(self, runs) -> None:
        for run in runs:
            self._curve(run)

    def _curve(self, run, key: str | None = None, label: str = "", dashed: bool = False) -> pg.PlotDataItem:
        key = key or run.name
        if key not in self.curves:
            style = QtCore.Qt.PenStyle.DashLine if dashed else QtCore.Qt.PenStyle.SolidLine
            self.curves[key] = self.plot.plot([], [], pen=pg.mkPen(cell_color(run.cell), width=2, style=style),
                                              name=label or cell_label(run))
        return self.curves[key]

    def columns(self, run, values) -> list[tuple[str, str, np.ndarray, bool]]:
        """The curves one probe's ``series`` makes: ``[(key, legend label, log10 values over t, dashed)]``."""
        return [(run.name, cell_label(run), log10_safe(checked(values, run, f"the probe's {self.series}", 1)), False)]

    def data_key(self, runs, probes, settings):
        return selected_steps(runs, probes)

    def draw(self, runs, probes, settings) -> None:
        self.strip.draw(runs)
        steps, shown = [], []
        for run in runs:
            p = probes.get(run.name)
            self._curve(run)
            if p is None or p.get(self.series) is None:
                continue
            for key, label, y, dashed in self.columns(run, p[self.series]):
                self._curve(run, key, label, dashed).setData(np.arange(y.shape[0]), y)
                if np.isfinite(y).any():
                    shown.append(y)
            steps.append(str(p["step"]))
        self.has_data = self.has_data or bool(shown)
        if not shown and any(probes.get(r.name) is not None for r in runs):
            taken = any((probes.get(r.name) or {}).get(self.series) is not None for r in runs)
            set_title(self.plot, f"{self.title}: " + ("not taken at this probe (see the heatmap for those that were)"
                                                      if taken else
                                                      f"not recorded in this file (session format {self.since} and later)"))
            return
        set_title(self.plot, f"{self.title}" + (f" (step {'/'.join(sorted(set(steps)))})" if steps else ""))
        if shown:
            self._sticky.fit(*finite_range(shown, False))

    def csv_table(self, runs, probes):
        cols = [(r, probes.get(r.name)) for r in runs if probes.get(r.name) is not None]
        L = max((p["grad_norm_t"].shape[0] for _, p in cols), default=0)
        header = ["t"] + [f"{r.name}_grad_norm_at_step_{p['step']}" for r, p in cols]
        rows = [[t] + [float(p["grad_norm_t"][t]) if t < p["grad_norm_t"].shape[0] else "" for _, p in cols]
                for t in range(L)]
        return header, rows



class GradHeatmapGroup(PlotGroup):
    """log10 of a per-t probe array over (training step × t), one heatmap per run: ‖∂L/∂h_t‖ here;
    subclasses name another ``series`` (the input saliency). A run without the array (an older file)
    is left empty."""

    name, title = "grad-heatmap", "Gradient flow over training"
    series, quantity, cmap, ndim = "grad_norm_t", "‖∂L/∂h_t‖", "inferno", 2

    def log10_rows(self, values: np.ndarray) -> np.ndarray:
        """The picture's ``(P, L)`` log10 values from the stored probe array."""
        return log10_safe(values)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.maps: dict[str, Heatmap] = {}
        self.bar: pg.ColorBarItem | None = None  # one colour bar for every run: they share the levels
        self._linked = 0  # heatmaps the bar drives

    def prepare(self, runs) -> None:
        for run in runs:
            self._map(run)
        self._link_bar()

    def _map(self, run) -> Heatmap:
        if run.name not in self.maps:
            p = self.add_plot(0, len(self.maps), f"{cell_label(run)}: log10 {self.quantity}",
                              "time step t", "training step")
            self.maps[run.name] = Heatmap(p, self.cmap, bar=self.bar or self._new_bar())
        return self.maps[run.name]

    def _new_bar(self) -> pg.ColorBarItem:
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get(self.cmap), interactive=False,
                                   width=12)
        return self.bar

    def _link_bar(self) -> None:
        """Put the shared colour bar beside the last heatmap, driving every heatmap's colours."""
        images = [hm.image for hm in self.maps.values()]
        if self.bar is not None and images and self._linked != len(images):
            last = list(self.maps.values())[-1].plot
            self.bar.setImageItem(images, insert_in=None if self._linked else last)
            self._linked = len(images)

    def csv_rows(self, values: np.ndarray) -> np.ndarray:
        """The ``(P, L)`` values the CSV holds, as stored (not log10)."""
        return values

    def data_key(self, runs, probes, settings):
        return (probes_key(runs), settings.get("x_max"))

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
            try:
                series = run.probe_series(self.series)
            except KeyError:            # a file from before this array was recorded
                continue
            gn = self.log10_rows(checked(series, run, f"the probes' {self.series}", self.ndim, rows=steps.shape[0]))
            if gn.shape[0]:
                data[run.name] = (gn, steps)
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
            try:
                gn = np.asarray(run.probe_series(self.series))
            except KeyError:
                continue
            for s, row in zip(np.asarray(run.probe_steps).tolist(), self.csv_rows(gn)):
                rows.append([run.name, int(s)] + [float(v) for v in row])
        return header, rows
