"""Inside the cells: gate activations, hidden and cell state at the selected probe (t × unit), and the
fraction of saturated gate units over training."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from explorer.gui.plots.base import (DIV_CMAP, GATE_PALETTE, Heatmap, InputStrip, PlotDataError, PlotGroup, SEQ_CMAP,
                                     cell_label, cell_spec, cell_title, checked, fix_x, probes_key, selected_steps,
                                     set_title)

#: the heatmaps' left axis (unit numbers) and the strips' above them are this wide, so t lines up
UNIT_AXIS_WIDTH = 48


def gate_panels(run) -> list[tuple[str, str, str, tuple | None]]:
    """The heatmaps of one run's insides: ``(quantity, title, colour map, levels)`` for each sigmoid gate,
    then each tanh gate, then the cell state c (cells with one) — or h for a cell without gates.
    ``levels`` None: symmetric around 0 from the data."""
    spec = cell_spec(run.cell)
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
        self.maps: dict[tuple[str, str], Heatmap] = {}
        self.panels: dict[str, list] = {}
        self.strips: list[InputStrip] = []   # the probe's inputs above each column, t aligned

    def prepare(self, runs) -> None:
        for run in runs:
            if run.name in self.panels:
                continue
            self.panels[run.name] = gate_panels(run)
            for q, title, cmap, levels in self.panels[run.name]:
                k = len(self.maps)
                p = self.add_plot(1 + k // self.COLUMNS, k % self.COLUMNS, title, "time step t", "unit")
                p.getAxis("left").setWidth(UNIT_AXIS_WIDTH)   # every column's heatmaps and strip line up
                hm = self.maps[(run.name, q)] = Heatmap(p, cmap, levels or (-1.0, 1.0))
                if k < self.COLUMNS:    # the first row's heatmap leads its column (the others show 0..L too)
                    self.strips.append(InputStrip(self, 0, k, p, xlabel="", bar=hm.bar))

    def data_key(self, runs, probes, settings):
        return selected_steps(runs, probes)

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
        for strip in self.strips:
            strip.draw(runs)
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
                set_title(hm.plot, f"{title} (step {step})")
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
        return (probes_key(runs), settings.get("x_max"))

    def draw(self, runs, probes, settings) -> None:
        gated = [r for r in runs if r.gate_names]
        fix_x(self.plot, settings)
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
