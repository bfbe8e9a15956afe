"""Input saliency ‖∂ŷ/∂x_t‖ (Madsen 2019's "connectivity"): where each cell's answer comes from, over t at
the selected probe with the probe sequence's inputs beneath, and over training as a heatmap.

For the adding problem the LSTM's saliency peaks on the two marked steps while the RNN's dies out
long before them: "RNNs forget early inputs", seen directly. ŷ is defined in
:meth:`explorer.training.Trainer.saliency`; files before session format 1.3 have no saliency.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from explorer.gui.plots.base import checked
from explorer.gui.plots.gradients import GradFlowGroup, GradHeatmapGroup


def probe_input(runs) -> np.ndarray | None:
    """The probe sequence ``(L, n_in)`` the runs' probes ran on (they share it), or None (older files)."""
    for run in runs:
        x = getattr(run, "probe_input", None)
        if x is not None:
            return checked(x, run, "the probe sequence", 2)
    return None


class SaliencyGroup(GradFlowGroup):
    """log10 ‖∂ŷ/∂x_t‖ over t at the selected probe, one curve per run, above the probe sequence's inputs
    (one row per input channel, t aligned)."""

    name, title = "saliency", "Input saliency"
    series, quantity = "saliency", "‖∂ŷ/∂x_t‖"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot.setLabel("bottom", "")
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
        self._strip_shape = None

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
        super().draw(runs, probes, settings)

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
