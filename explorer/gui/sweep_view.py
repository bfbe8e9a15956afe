"""The Sweep view: the lag frontier (success rate and median final metric vs T, per cell)
and the claims table, from a ``sweep.h5``; plus headless export to PNG, SVG and CSV.

- :class:`SweepView` — a sweep file opened in the window. Clicking a metric point emits
  ``run_selected(path)`` with that run's session file (the median seed for a (cell, T) point, the
  seed itself for a per-seed point), a success-rate point ``seeds_selected(paths)`` with every seed's;
  the window opens the run in a tab, the seeds as bands.
- :func:`export_plot` — ``lstm-explorer export DIR/sweep.h5 --plot frontier|claims``.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from explorer.frontier import claims, claims_columns, frontier, series_of, write_claims_csv, write_frontier_csv
from explorer.gui.names import SWEEP_PLOT_NAMES

from explorer.gui.plots import cell_color, cell_title

SWEEP_PLOTS = tuple(SWEEP_PLOT_NAMES)
SWEEP_FORMATS = ("png", "svg", "csv")
DEFAULT_SIZE = {"frontier": (1200, 520), "claims": (1100, 300)}


def _label(series: str) -> str:
    """"lstm lr=0.01" -> "LSTM lr=0.01"."""
    cell, _, variant = series.partition(" ")
    return f"{cell_title(cell)} {variant}".rstrip()


#: line styles of a cell's variants (--vary), in order; the colour stays the cell's
VARIANT_STYLES = (QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenStyle.DashLine, QtCore.Qt.PenStyle.DotLine,
                  QtCore.Qt.PenStyle.DashDotLine)


class FrontierGroup(pg.GraphicsLayoutWidget):
    """Two plots against T (log axis): success rate (fraction of seeds solved) and final metric
    (median line + one faint point per seed), chance baseline dashed."""

    point_clicked = QtCore.Signal(str)   # session file of the clicked point
    seeds_clicked = QtCore.Signal(list)  # session files of every seed of a clicked (cell, T) success-rate point

    name = "frontier"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.setMinimumSize(400, 240)
        self.success = self.addPlot(row=0, col=0, title="success rate vs lag T")
        self.metric = self.addPlot(row=0, col=1, title="final metric vs lag T")
        for p in (self.success, self.metric):
            p.showGrid(x=True, y=True, alpha=0.25)
            p.setLabel("bottom", "lag T")
            p.setLogMode(x=True, y=False)
        self.success.setLabel("left", "fraction of seeds solved")
        self.success.setYRange(-0.05, 1.05, padding=0)
        self.success.addLegend(offset=(-10, 10))
        self.metric.addLegend(offset=(-10, -10))
        self.metric.getAxis("left").enableAutoSIPrefix(False)
        self._targets: dict[int, list[str]] = {}

    def draw(self, sweep) -> None:
        """Draw from a :class:`sessions.sweep.SweepResult`."""
        for p in (self.success, self.metric):
            p.clear()
            if p.legend is not None:
                p.legend.clear()
        rows = frontier(sweep.runs)
        runs = sweep.runs
        metric_name = "metric"
        higher = None
        task = (sweep.config.get("train") or {}).get("task", "")
        if task == "adding":
            metric_name, higher = "MSE", False
        elif task in ("copy", "temporal"):
            metric_name, higher = "accuracy", True
        log_y = higher is False
        self.metric.setLogMode(x=True, y=log_y)
        self.metric.setLabel("left", f"final {metric_name} (mean of last 50 steps)")
        self.success.setTitle(f"success rate vs lag T ({task})" if task else "success rate vs lag T")
        cells = list(dict.fromkeys(r["series"] for r in rows))
        variant_index: dict[str, int] = {}
        self._targets.clear()
        for cell in cells:
            cr = [r for r in rows if r["series"] == cell]
            color = cell_color(cr[0]["cell"])
            variant_index[cr[0]["cell"]] = variant_index.get(cr[0]["cell"], -1) + 1
            style = VARIANT_STYLES[variant_index[cr[0]["cell"]] % len(VARIANT_STYLES)]
            Ts = np.array([r["seq_len"] for r in cr], dtype=float)
            rate = np.array([r["success_rate"] for r in cr], dtype=float)
            med = np.array([r["median_final_metric"] for r in cr], dtype=float)
            paths = [self._median_session(r) for r in cr]
            # success rate
            item = self.success.plot(Ts, rate, pen=pg.mkPen(color, width=2, style=style), symbol="o", symbolSize=10,
                                     symbolBrush=color, symbolPen=pg.mkPen("w"), name=_label(cell))
            self._connect(item, [[entry[1] for entry in r.get("sessions") or [] if entry[1]] for r in cr],
                          self.seeds_clicked)
            # per-seed points, then the median line on top
            seeds = [r for r in runs if series_of(r) == cell and r.get("status") != "failed"
                     and np.isfinite(r.get("final_metric", math.nan))]
            if seeds:
                sx = np.array([r["seq_len"] for r in seeds], dtype=float)
                jitter = 1.0 + 0.04 * (np.array([r["seed"] for r in seeds], dtype=float) - 1) * \
                    (1 if cell == cells[0] else -1)
                sy = np.array([r["final_metric"] for r in seeds], dtype=float)
                if log_y:
                    sy = np.maximum(sy, 1e-8)
                faint = pg.mkColor(color)
                faint.setAlpha(110)
                sitem = self.metric.plot(sx * jitter, sy, pen=None, symbol="o", symbolSize=6,
                                         symbolBrush=faint, symbolPen=None)
                self._connect(sitem, [r.get("session_path") or r.get("session", "") for r in seeds])
            ok = np.isfinite(med)
            mitem = self.metric.plot(Ts[ok], np.maximum(med[ok], 1e-8) if log_y else med[ok],
                                     pen=pg.mkPen(color, width=2, style=style), symbol="s", symbolSize=9,
                                     symbolBrush=color,
                                     symbolPen=pg.mkPen("w"), name=f"{_label(cell)} median")
            self._connect(mitem, [p for p, k in zip(paths, ok) if k])
        # ticks at the swept lags only (log axis)
        all_T = sorted({int(r["seq_len"]) for r in rows})
        for p in (self.success, self.metric):
            p.getAxis("bottom").setTicks([[(math.log10(t), str(t)) for t in all_T], []])
        # the solved threshold
        try:
            from explorer.tasks import make_task

            thr = make_task(task, max(all_T)).solved_threshold if task and all_T else None
        except Exception:
            thr = None
        if thr is not None and (not log_y or thr > 0):
            self.metric.addItem(pg.InfiniteLine(
                pos=math.log10(thr) if log_y else thr, angle=0,
                pen=pg.mkPen("#2ca02c", width=1.5, style=QtCore.Qt.PenStyle.DotLine),
                label=f"solved {'below' if log_y else 'at'} {thr:g}",
                labelOpts={"position": 0.1, "color": "#2ca02c", "anchors": [(0, 1), (0, 1)]}))
        # chance baseline (metric plot)
        base = [r["baseline_metric"] for r in rows if np.isfinite(r["baseline_metric"])
                and (r["baseline_metric"] > 0 or not log_y)]   # a log axis has no place for 0 or less
        if base:
            b = float(base[0])
            pen = pg.mkPen("#555555", width=1.5, style=QtCore.Qt.PenStyle.DashLine)
            line = pg.InfiniteLine(pos=math.log10(b) if log_y else b, angle=0, pen=pen,
                                   label=f"chance {b:.3g}", labelOpts={"position": 0.1, "color": "#555555",
                                                                      "anchors": [(0, 1), (0, 1)]})
            self.metric.addItem(line)
        self.success.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#555555", width=1.5,
                                                                          style=QtCore.Qt.PenStyle.DashLine),
                                             label="chance (never solved)",
                                             labelOpts={"position": 0.1, "color": "#555555",
                                                        "anchors": [(0, 0), (0, 0)]}))

    @staticmethod
    def _median_session(row: dict) -> str:
        s = row.get("sessions") or []
        return s[len(s) // 2][1] if s else ""

    def _connect(self, item, targets: list, signal=None) -> None:
        """A click on point ``i`` of ``item`` emits ``targets[i]`` by ``signal`` (default: point_clicked)."""
        self._targets[id(item)] = targets
        signal = signal or self.point_clicked

        def clicked(_item, points, *args):
            if len(points):
                i = points[0].index()
                if 0 <= i < len(targets) and targets[i]:
                    signal.emit(targets[i])

        item.sigPointsClicked.connect(clicked)


def claims_headers(rows: list[dict]) -> list[str]:
    """Column titles of the claims table: claim, number, one per series (RNN, LSTM, ...), detail."""
    return [c if c in ("claim", "number", "detail") else _label(c) for c in claims_columns(rows)]


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if math.isfinite(v) and v == int(v) and abs(v) < 1e12:
            return f"{int(v):,}"
        return f"{v:.3g}"
    return str(v)


class ClaimsTable(QtWidgets.QTableWidget):
    """The claims table: one row per claim, RNN and LSTM numbers side by side."""

    def __init__(self, parent=None):
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(claims_headers([]))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(True)
        self.horizontalHeader().setStretchLastSection(True)
        self.rows: list[dict] = []

    def fill(self, rows: list[dict]) -> None:
        self.rows = rows
        columns = claims_columns(rows)
        self.setColumnCount(len(columns))
        self.setHorizontalHeaderLabels(claims_headers(rows))
        self.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, key in enumerate(columns):
                numeric = key not in ("claim", "number", "detail")
                v = _fmt(r[key]) if numeric else r[key]
                it = QtWidgets.QTableWidgetItem(str(v))
                if numeric:
                    it.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                it.setToolTip(str(v))
                self.setItem(i, j, it)
        self.resizeColumnsToContents()
        self.resizeRowsToContents()
        # as tall as its rows, no taller: the frontier plots above take the rest of the height
        rows_h = sum(self.rowHeight(i) for i in range(self.rowCount()))
        self.setMaximumHeight(self.horizontalHeader().sizeHint().height() + rows_h + 2 * self.frameWidth()
                              + self.horizontalScrollBar().sizeHint().height())


class SweepView(QtWidgets.QWidget):
    """A sweep file's frontier figure and claims table. ``run_selected(path)`` on a metric point's click,
    ``seeds_selected(paths)`` on a success-rate point's (every seed of that cell and T)."""

    run_selected = QtCore.Signal(str)
    seeds_selected = QtCore.Signal(list)

    def __init__(self, path, parent=None):
        super().__init__(parent)
        from sessions.sweep import read_sweep

        self.path = os.fspath(path)
        self.sweep = read_sweep(self.path)
        self.setWindowTitle(f"Sweep — {os.path.basename(os.path.dirname(os.path.abspath(self.path)))}")
        self.frontier = FrontierGroup(self)
        self.claims = ClaimsTable(self)
        self.info = QtWidgets.QLabel(self._info_text(), self)
        self.info.setWordWrap(True)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical, self)
        split.addWidget(self.frontier)
        split.addWidget(self.claims)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.info)
        lay.addWidget(split, 1)
        self.frontier.point_clicked.connect(self._open)
        self.frontier.seeds_clicked.connect(self.seeds_selected.emit)
        self.reload()

    def _info_text(self) -> str:
        c = self.sweep.config
        t = c.get("train", {})
        n = len(self.sweep.runs)
        return (f"{self.path} — task {t.get('task', '?')}, cells {','.join(c.get('cells', []))}, "
                f"T {','.join(map(str, c.get('seq_lens', [])))}, {c.get('seeds', '?')} seed(s), "
                f"{t.get('steps', '?')} steps, hidden {t.get('hidden', '?')}, lr {t.get('lr', '?')}: "
                f"{n}/{c.get('n_runs', n)} runs finished. Click a success-rate point to see its seeds as bands, a "
                f"metric point to open that run.")

    def reload(self) -> None:
        from sessions.sweep import read_sweep

        self.sweep = read_sweep(self.path)
        self.info.setText(self._info_text())
        self.frontier.draw(self.sweep)
        self.claims.fill(claims(self.sweep.runs))

    def _open(self, session_path: str) -> None:
        self.run_selected.emit(session_path)      # the window opens it in a tab of its own


# ---------------------------------------------------------------------------------- export
def _ensure_app():
    try:
        from explorer.gui.export import ensure_app
        return ensure_app()
    except ImportError:  # pragma: no cover
        app = QtWidgets.QApplication.instance()
        if app is None:
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
            app = QtWidgets.QApplication(["lstm-explorer"])
        return app


def _export_error(msg: str):
    try:
        from explorer.gui.export import ExportError
    except ImportError:  # pragma: no cover
        from explorer.errors import ExplorerError as ExportError
    return ExportError(msg)


def _grab_png(widget, out: str) -> None:
    pix = widget.grab()
    if not pix.save(out, "PNG"):
        raise _export_error(f"{out}: cannot write the PNG file")


def export_plot(path, plot: str | None, fmt: str | None, out):
    """Export the sweep ``path``'s ``plot`` ("frontier" | "claims") as ``fmt`` (png | svg | csv) to ``out``;
    returns the path written. ``plot=None`` writes every plot (in ``fmt``, or all formats) into the
    folder ``out`` as ``frontier.png``, ``claims.csv``, ... and returns the list of paths."""
    from sessions.sweep import read_sweep

    if plot is None:
        folder = os.fspath(out)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise _export_error(f"{folder}: cannot create the folder: {exc.strerror or exc}") from None
        return [export_plot(path, p, f, os.path.join(folder, f"{p}.{f}"))
                for p in SWEEP_PLOTS for f in ((fmt,) if fmt else SWEEP_FORMATS)]
    if plot not in SWEEP_PLOTS:
        raise _export_error(f"unknown sweep plot {plot!r}: choose one of {', '.join(SWEEP_PLOTS)}")
    fmt = (fmt or os.path.splitext(os.fspath(out))[1].lstrip(".") or "png").lower()
    if fmt not in SWEEP_FORMATS:
        raise _export_error(f"unknown format {fmt!r}: choose one of {', '.join(SWEEP_FORMATS)}")
    out = os.fspath(out)
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise _export_error(f"{out}: cannot write: folder {parent} does not exist")
    sweep = read_sweep(path)
    try:
        if fmt == "csv":
            if plot == "frontier":
                write_frontier_csv(frontier(sweep.runs), out)
            else:
                write_claims_csv(claims(sweep.runs), out)
            return out
    except OSError as exc:
        raise _export_error(f"{out}: cannot write: {exc.strerror or exc}") from None
    _ensure_app()
    w, h = DEFAULT_SIZE[plot]
    if plot == "frontier":
        group = FrontierGroup()
        group.resize(w, h)
        group.draw(sweep)
        group.show() if os.environ.get("QT_QPA_PLATFORM") == "offscreen" else None
        QtWidgets.QApplication.processEvents()
        if fmt == "png":
            from pyqtgraph.exporters import ImageExporter

            exp = ImageExporter(group.ci)
            exp.parameters()["width"] = w
            exp.export(out)
        else:
            from pyqtgraph.exporters import SVGExporter

            SVGExporter(group.ci).export(fileName=out)
        group.close()
        group.deleteLater()
    else:
        table = ClaimsTable()
        table.fill(claims(sweep.runs))
        table.resize(w, h)
        QtWidgets.QApplication.processEvents()
        if fmt == "png":
            _grab_png(table, out)
        else:
            try:
                from PySide6 import QtSvg
            except ImportError:
                raise _export_error("SVG of the claims table needs PySide6.QtSvg; export png or csv") from None
            gen = QtSvg.QSvgGenerator()
            gen.setFileName(out)
            gen.setSize(QtCore.QSize(w, h))
            gen.setViewBox(QtCore.QRect(0, 0, w, h))
            table.render(gen)
        table.deleteLater()
    if not os.path.exists(out):
        raise _export_error(f"{out}: the exporter wrote nothing")
    return out
