"""Input saliency ‖∂ŷ/∂x_t‖ (Madsen 2019's "connectivity"): where each cell's answer comes from, over t at
the selected probe with the probe sequence's inputs beneath, and over training as a heatmap.

For the adding problem the LSTM's saliency peaks on the two marked steps while the RNN's dies out
long before them: "RNNs forget early inputs", seen directly. ŷ is defined in
:meth:`explorer.training.Trainer.saliency`; files before session format 1.3 have no saliency.
"""
from __future__ import annotations

from explorer.gui.plots.base import probe_input
from explorer.gui.plots.gradients import GradFlowGroup, GradHeatmapGroup


class SaliencyGroup(GradFlowGroup):
    """log10 ‖∂ŷ/∂x_t‖ over t at the selected probe, one curve per run, above the probe sequence's inputs."""

    name, title = "saliency", "Input saliency"
    series, quantity, since = "saliency", "‖∂ŷ/∂x_t‖", "1.3"

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
