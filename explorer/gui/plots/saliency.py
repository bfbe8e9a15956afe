"""Input saliency ‖∂ŷ/∂x_t‖ (Madsen 2019's "connectivity"): where each cell's answer comes from, over t at
the selected probe with the probe sequence's inputs beneath, and over training as a heatmap.

For the adding problem the LSTM's saliency peaks on the two marked steps while the RNN's dies out
long before them: "RNNs forget early inputs", seen directly. ŷ is defined in
:meth:`explorer.training.Trainer.saliency`; files before session format 1.3 have no saliency.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from explorer.gui.plots.base import (PlotGroup, StickyY, cell_color, cell_label, checked, finite_range, log10_safe,
                                     selected_steps, set_title)
from explorer.gui.plots.gradients import GradHeatmapGroup


def probe_input(runs) -> np.ndarray | None:
    """The probe sequence ``(L, n_in)`` the runs' probes ran on (they share it), or None (older files)."""
    for run in runs:
        x = getattr(run, "probe_input", None)
        if x is not None:
            return checked(x, run, "the probe sequence", 2)
    return None


class SaliencyGroup(PlotGroup):
    """log10 ‖∂ŷ/∂x_t‖ over t at the selected probe, one curve per run, above the probe sequence's inputs
    (one row per input channel, t aligned)."""

    name, title, uses_probes = "saliency", "Input saliency", True

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.add_plot(0, 0, self.title, "", "log10 ‖∂ŷ/∂x_t‖")
        # bottom right: a forgetting cell's saliency is lowest early, every cell's high at the end
        self.legend = self.plot.addLegend(offset=(-10, -10))
        self.inputs = self.add_plot(1, 0, "", "time step t", "input")
        self.inputs.setXLink(self.plot)
        self.inputs.showGrid(x=True, y=False)
        self.strip = pg.ImageItem()
        greys = pg.colormap.get("CET-L1")        # black to white ...
        greys.reverse()                          # ... turned round: 0 white, large values black
        self.strip.setColorMap(greys)
        self.inputs.addItem(self.strip)
        self.ci.layout.setRowStretchFactor(0, 4)
        self.ci.layout.setRowStretchFactor(1, 1)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._sticky = StickyY(self.plot)
        self._strip_shape = None

    def prepare(self, runs) -> None:
        for run in runs:
            self._curve(run)

    def _curve(self, run) -> pg.PlotDataItem:
        if run.name not in self.curves:
            self.curves[run.name] = self.plot.plot([], [], pen=pg.mkPen(cell_color(run.cell), width=2),
                                                   name=cell_label(run))
        return self.curves[run.name]

    def data_key(self, runs, probes, settings):
        return selected_steps(runs, probes)

    def _draw_inputs(self, runs) -> None:
        x = probe_input(runs)
        if x is None or x.shape == self._strip_shape:
            return
        self._strip_shape = x.shape
        L, n_in = x.shape
        self.strip.setImage(np.nan_to_num(x.T.astype(np.float32)), autoLevels=True)
        self.strip.setRect(-0.5, -0.5, float(L), float(n_in))      # pixel t centred on t, row k on channel k
        self.inputs.getAxis("left").setTicks([[(k, f"x{k}") for k in range(n_in)]] if n_in <= 12 else None)
        self.inputs.setYRange(-0.5, n_in - 0.5, padding=0)

    def draw(self, runs, probes, settings) -> None:
        self._draw_inputs(runs)
        steps, shown = [], []
        for run in runs:
            p = probes.get(run.name)
            curve = self._curve(run)
            if p is None or p.get("saliency") is None:
                continue
            y = log10_safe(checked(p["saliency"], run, "the probe's saliency", 1))
            curve.setData(np.arange(y.shape[0]), y)
            shown.append(y)
            steps.append(str(p["step"]))
            self.has_data = True
        if not shown and runs:
            set_title(self.plot, f"{self.title}: not recorded in this file (session format 1.3 and later)")
            return
        set_title(self.plot, f"{self.title} (step {'/'.join(sorted(set(steps)))})" if steps else self.title)
        if shown:
            self._sticky.fit(*finite_range(shown, False))

    def csv_table(self, runs, probes):
        """One row per t: ``t``, the probe's input channels ``x0``, ``x1``, ..., then each run's saliency
        in a column named after it (``rnn``, ``lstm``, ...)."""
        x = probe_input(runs)
        cols = [(r, probes[r.name]["saliency"]) for r in runs
                if probes.get(r.name) is not None and probes[r.name].get("saliency") is not None]
        L = max([a.shape[0] for _, a in cols] + ([x.shape[0]] if x is not None else []), default=0)
        n_in = x.shape[1] if x is not None else 0
        header = ["t"] + [f"x{k}" for k in range(n_in)] + [r.name for r, _ in cols]
        rows = [[t] + ([float(v) for v in x[t]] if x is not None and t < x.shape[0] else [""] * n_in)
                + [float(a[t]) if t < a.shape[0] else "" for _, a in cols] for t in range(L)]
        return header, rows


class SaliencyHeatmapGroup(GradHeatmapGroup):
    """log10 ‖∂ŷ/∂x_t‖ over (training step × t), one heatmap per run: when each cell learns to look back."""

    name, title = "saliency-heatmap", "Input saliency over training"
    series, quantity, cmap = "saliency", "‖∂ŷ/∂x_t‖", "viridis"
