"""Seeds as bands in the window: sessions of one configuration, different seeds, drawn per cell as the
median loss and metric with the min–max range over the seeds shaded (:mod:`explorer.bands`)."""
from __future__ import annotations

import os

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from explorer.bands import band
from explorer.gui.plots.base import (BASELINE_PEN, PlotGroup, StickyY, cell_color, cell_title, default_settings, ema,
                                     faint, finite_range)

SCALARS = ("loss", "metric")


def by_cell(runs) -> dict[str, list]:
    """Runs grouped by cell, in the order the cells first appear."""
    out: dict[str, list] = {}
    for run in runs:
        out.setdefault(run.cell, []).append(run)
    return out


class BandsGroup(PlotGroup):
    """Loss and task metric over training: per cell the median over the seeds (bold) and the min–max band."""

    name, title = "bands", "Seeds"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plots_by_scalar = {sc: self.add_plot(0, k, "", "training step", sc) for k, sc in enumerate(SCALARS)}
        for p in self.plots_by_scalar.values():
            p.addLegend(offset=(-10, 10))
        self.items: dict[tuple[str, str], tuple] = {}
        self.bands: dict[tuple[str, str], object] = {}
        self._sticky = {sc: StickyY(p) for sc, p in self.plots_by_scalar.items()}
        self._log = None

    def _items(self, cell: str, scalar: str, n_seeds: int):
        if (cell, scalar) not in self.items:
            p, color = self.plots_by_scalar[scalar], cell_color(cell)
            # the band's edges are plot items too (unseen), so they follow the plot's log axis like the median
            lo, hi = p.plot([], [], pen=pg.mkPen(faint(color, 90), width=1)), p.plot([], [], pen=pg.mkPen(faint(color, 90), width=1))
            fill = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(faint(color, 60)))
            p.addItem(fill)
            median = p.plot([], [], pen=pg.mkPen(color, width=2),
                            name=f"{cell_title(cell)}: median of {n_seeds} seeds, min–max shaded")
            self.items[(cell, scalar)] = (median, lo, hi, fill)
        return self.items[(cell, scalar)]

    def draw(self, runs, probes, settings) -> None:
        smoothing = float(settings.get("smoothing", 0.6))
        log = bool(settings.get("log", False))
        if log != self._log:
            self._log = log
            for p in self.plots_by_scalar.values():
                p.setLogMode(False, log)
        groups = by_cell(runs)
        for scalar, plot in self.plots_by_scalar.items():
            shown = []
            for cell, cell_runs in groups.items():
                b = band(cell, cell_runs, scalar, smooth=lambda v: ema(v, smoothing))
                self.bands[(cell, scalar)] = b
                median, lo, hi, _ = self._items(cell, scalar, len(cell_runs))
                median.setData(b.step, b.median)
                lo.setData(b.step, b.lo)
                hi.setData(b.step, b.hi)
                shown += [b.lo, b.hi]
                self.has_data = self.has_data or b.step.size > 0
            if runs:
                base = runs[0].baseline["loss" if scalar == "loss" else "metric"]
                last = max((int(self.bands[(c, scalar)].step[-1]) for c in groups if self.bands[(c, scalar)].step.size),
                           default=1)
                if np.isfinite(base):
                    if ("chance", scalar) not in self.items:
                        self.items[("chance", scalar)] = plot.plot([], [], pen=BASELINE_PEN, name="chance")
                    self.items[("chance", scalar)].setData([1, last], [base, base])
                    shown.append(np.array([base]))
                label = runs[0].metric_name if scalar == "metric" else "loss"
                plot.setTitle(f"{label}: {len(runs) // max(len(groups), 1)} seeds, median and min–max "
                              f"(smoothing {smoothing:.2f})")
            if shown:
                self._sticky[scalar].fit(*finite_range(shown, log))

    def csv_table(self, runs, probes):
        """One row per step: per cell and scalar the median, min, max and the seeds that reached it."""
        cols = []
        for cell, cell_runs in by_cell(runs).items():
            for scalar in SCALARS:
                b = band(cell, cell_runs, scalar)
                cols.append((f"{cell}_{scalar}", b))
        steps = np.unique(np.concatenate([b.step for _, b in cols])) if cols else np.empty(0, np.int64)
        header = ["step"] + [f"{name}_{stat}" for name, _ in cols for stat in ("median", "min", "max", "n")]
        index = [{int(s): i for i, s in enumerate(b.step)} for _, b in cols]
        rows = []
        for s in steps.tolist():
            row = [s]
            for (_, b), at in zip(cols, index):
                i = at.get(s)
                row += ["", "", "", 0] if i is None else [float(b.median[i]), float(b.lo[i]), float(b.hi[i]),
                                                          int(b.n[i])]
            rows.append(row)
        return header, rows


class BandsView(QtWidgets.QWidget):
    """Sessions of one configuration opened together as seeds: the bands, a log box and the smoothing slider.
    Offers what the window's export needs (``groups``, ``runs``, ``selected_probes``, ``draw_group``)."""

    def __init__(self, sessions, parent=None):
        super().__init__(parent)
        self.sessions = list(sessions)
        self.group = BandsGroup()
        self.groups = {self.group.name: self.group}
        self.settings = default_settings(self.runs)
        self.export_handler = None
        self.group.export_handler = lambda name, fmt: self.export_handler and self.export_handler(self, name, fmt)
        layout = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        self.log_box = QtWidgets.QCheckBox("log scale")
        self.log_box.setChecked(self.settings["log"])
        self.log_box.toggled.connect(lambda on: self._set(log=bool(on)))
        bar.addWidget(self.log_box)
        bar.addWidget(QtWidgets.QLabel("smoothing"))
        self.smooth_slider = QtWidgets.QSlider()
        self.smooth_slider.setOrientation(pg.QtCore.Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(int(round(100 * self.settings["smoothing"])))
        self.smooth_slider.setMaximumWidth(160)
        self.smooth_slider.valueChanged.connect(lambda v: self._set(smoothing=v / 100.0))
        bar.addWidget(self.smooth_slider)
        names = ", ".join(os.path.basename(s.path) for s in self.sessions)
        self.info_label = QtWidgets.QLabel(f"{len(self.sessions)} seeds: {names}")
        self.info_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.info_label.setToolTip(names)
        bar.addWidget(self.info_label, 1)
        layout.addLayout(bar)
        layout.addWidget(self.group, 1)
        self.group.prepare(self.runs)
        self.draw_group(self.group.name)

    @property
    def runs(self) -> list:
        return [run for s in self.sessions for run in s.runs]

    def selected_probes(self) -> dict:
        return {}

    def draw_group(self, name: str) -> None:
        self.group.draw(self.runs, {}, self.settings)

    def _set(self, **change) -> None:
        self.settings.update(change)
        self.draw_group(self.group.name)

