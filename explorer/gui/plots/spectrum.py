"""The Jacobian spectrum (Pascanu et al. 2013): why the RNN's gradient vanishes and the LSTM's does not.

Three plots: the top singular value of the state Jacobian product ∂s_T/∂s_t over t at the selected probe (the
LSTM's cell-state block dashed beside its h block); the same over training as a heatmap; and σ_max of W_hh
and of each gate's block over training against the vanishing bound 1/γ. The numbers come from
kernels/spectrum.py (log10, stored as such); files before session format 1.4 have none.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore

from explorer.gui.plots.base import (BASELINE_PEN, PlotGroup, StickyY, cell_color, cell_label, finite_range,
                                     probes_key, set_title)
from explorer.gui.plots.gradients import GradFlowGroup, GradHeatmapGroup

#: the line styles of a cell's weight blocks: W_hh solid, then one per gate
BLOCK_STYLES = (QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenStyle.DashLine, QtCore.Qt.PenStyle.DotLine,
                QtCore.Qt.PenStyle.DashDotLine, QtCore.Qt.PenStyle.DashDotDotLine)


def finite_or_nan(values: np.ndarray) -> np.ndarray:
    """Stored log10 values with ±inf (a product that became exactly zero) as NaN: a gap, not an axis at -inf."""
    a = np.array(values, dtype=np.float64)
    a[~np.isfinite(a)] = np.nan
    return a


def state_names(run) -> tuple[str, ...]:
    """The spectrum's columns: ``h``, and ``c`` for a run with a cell state."""
    return ("h", "c") if run.has_cell_state else ("h",)


class SpectrumGroup(GradFlowGroup):
    """log10 σ_max(∂s_T/∂s_t) over t at the selected probe, per run; a cell state's block dashed."""

    name, title = "spectrum", "State Jacobian ∂s_T/∂s_t"
    series, quantity, since = "spectrum", "σ_max(∂s_T/∂s_t)", "1.4"

    def columns(self, run, values):
        a = np.asarray(values)
        if a.ndim == 1:
            a = a[:, None]
        return [(run.name if k == 0 else f"{run.name}:{s}", f"{cell_label(run)} ∂{s}/∂{s}",
                 finite_or_nan(a[:, k]), k > 0)
                for k, s in enumerate(state_names(run)[:a.shape[1]])]

    def csv_table(self, runs, probes):
        """One row per t: ``t``, then ``<run>_h`` (and ``<run>_c``) = log10 σ_max(∂s_T/∂s_t) at the probe."""
        cols = []
        for r in runs:
            p = probes.get(r.name)
            if p is not None and p.get("spectrum") is not None:
                a = np.asarray(p["spectrum"]).reshape(p["spectrum"].shape[0], -1)
                cols += [(f"{r.name}_{s}", a[:, k]) for k, s in enumerate(state_names(r)[:a.shape[1]])]
        L = max((a.shape[0] for _, a in cols), default=0)
        return (["t"] + [n for n, _ in cols],
                [[t] + [float(a[t]) if t < a.shape[0] else "" for _, a in cols] for t in range(L)])


class SpectrumHeatmapGroup(GradHeatmapGroup):
    """log10 σ_max(∂h_T/∂h_t) over (training step × t), one heatmap per run."""

    name, title = "spectrum-heatmap", "State Jacobian over training"
    series, quantity, cmap, ndim = "spectrum", "σ_max(∂h_T/∂h_t)", "magma", 3

    def log10_rows(self, values):
        return finite_or_nan(np.asarray(values)[:, :, 0])

    def csv_rows(self, values):
        return np.asarray(values)[:, :, 0]


class WeightSigmaGroup(PlotGroup):
    """σ_max of each run's W_hh and of each gate's block over training, with the vanishing bounds 1/γ (1 for a
    tanh block, 4 for a σ gate): an RNN whose σ_max(W_hh) stays below 1 cannot carry a gradient far."""

    name, title, uses_probes = "weight-sigma", "σ_max of the recurrent weights", True

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.add_plot(0, 0, self.title, "training step", "σ_max")
        self.legend = self.plot.addLegend(offset=(10, 10), colCount=2)
        self.curves: dict[tuple[str, int], pg.PlotDataItem] = {}
        self.bounds: dict[float, pg.InfiniteLine] = {}
        self._sticky = StickyY(self.plot)

    def _curve(self, run, k: int, label: str) -> pg.PlotDataItem:
        key = (run.name, k)
        if key not in self.curves:
            pen = pg.mkPen(cell_color(run.cell), width=2 if k == 0 else 1, style=BLOCK_STYLES[k % len(BLOCK_STYLES)])
            self.curves[key] = self.plot.plot([], [], pen=pen, name=f"{cell_label(run)} {label}")
        return self.curves[key]

    def _bound(self, value: float) -> None:
        if value not in self.bounds:
            line = pg.InfiniteLine(pos=value, angle=0, pen=BASELINE_PEN,
                                   label=f"1/γ = {value:g}", labelOpts={"position": 0.97, "color": "#555555", "anchors": [(1, 1), (1, 1)]})
            self.plot.addItem(line)
            self.bounds[value] = line

    def data_key(self, runs, probes, settings):
        return probes_key(runs)

    def draw(self, runs, probes, settings) -> None:
        shown = []
        for run in runs:
            try:
                sigma = np.asarray(run.probe_series("weight_sigma"), dtype=np.float64)
            except KeyError:            # a file from before 1.4
                continue
            steps = np.asarray(run.probe_steps)[:sigma.shape[0]]
            for k, label in enumerate(run.weight_sigma_names[:sigma.shape[1]]):
                self._curve(run, k, label).setData(steps, sigma[:, k])
                shown.append(sigma[:, k])
            for b in np.asarray(run.weight_sigma_bounds, dtype=np.float64):
                if np.isfinite(b):
                    self._bound(float(b))
            self.has_data = self.has_data or bool(sigma.shape[0])
        if not shown and runs:
            set_title(self.plot, f"{self.title}: not recorded in this file (session format 1.4 and later)")
            return
        set_title(self.plot, self.title)
        lo, hi = finite_range(shown + [np.array(list(self.bounds))], False)
        self._sticky.fit(min(lo, 0.0), hi)

    def csv_table(self, runs, probes):
        """One row per (run, probe, block): ``run``, ``step``, ``block`` (``W_hh``, ``W_hi``, ...),
        ``sigma_max`` and its ``bound`` 1/γ (empty where none)."""
        rows = []
        for run in runs:
            try:
                sigma = np.asarray(run.probe_series("weight_sigma"), dtype=np.float64)
            except KeyError:
                continue
            bounds = np.asarray(run.weight_sigma_bounds, dtype=np.float64)
            for s, row in zip(np.asarray(run.probe_steps).tolist(), sigma):
                rows += [[run.name, int(s), name, float(v), float(b) if np.isfinite(b) else ""]
                         for name, v, b in zip(run.weight_sigma_names, row, bounds)]
        return ["run", "step", "block", "sigma_max", "bound"], rows
