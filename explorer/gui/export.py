"""Export the named plots to PNG, SVG and CSV — from the window and headless.

* :func:`export_group` writes one on-screen :class:`~explorer.gui.plots.PlotGroup`
  (the plots' context menus use it);
* :func:`render_plot` draws a fresh, detached group at a fixed size and exports it
  (File > Export all and the CLI use it, so the files do not depend on the window);
* :func:`export_file` opens a session file and exports one plot or all of them
  (``lstm-explorer export``), starting an offscreen QApplication if needed.

CSV files hold the raw data behind a plot (not the smoothed curves): one row per
recorded step for ``loss``, ``metric`` and ``param-grads``; one per probe and run
for ``grad-heatmap`` and ``saturation``; one per time step for ``grad-flow`` and
``gates`` (the selected, by default the newest, probe).
"""
from __future__ import annotations

import csv
import os

from explorer.errors import ExplorerError

from explorer.gui.names import FORMATS, PLOT_NAMES

DEFAULT_SIZE = {"loss": (900, 560), "metric": (900, 560), "grad-flow": (900, 560),
                "grad-heatmap": (1200, 560), "gates": (1400, 800), "saturation": (900, 560),
                "param-grads": (1400, 560), "saliency": (900, 620), "saliency-heatmap": (1200, 560),
                "spectrum": (900, 620), "spectrum-heatmap": (1200, 560), "weight-sigma": (900, 560),
                "card": (900, 420)}
assert set(DEFAULT_SIZE) == set(PLOT_NAMES)


class ExportError(ExplorerError):
    """An export could not be written (message names the file and why)."""


def ensure_app():
    """The running QApplication, or a new offscreen one when there is no display; pyqtgraph set to the
    plots' look (white background, black text)."""
    from PySide6 import QtWidgets

    import explorer.gui.plots.base  # noqa: F401  (sets pyqtgraph's options once)

    app = QtWidgets.QApplication.instance()
    if app is None:
        from explorer.gui.app import display_available

        if not display_available():
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QtWidgets.QApplication(["lstm-explorer"])
    return app


def _check_out(out: str) -> str:
    out = os.fspath(out)
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ExportError(f"{out}: cannot write: folder {parent} does not exist")
    return out


def write_csv(group, runs, probes, out: str) -> str:
    out = _check_out(out)
    header, rows = group.csv_table(runs, probes)
    try:
        with open(out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write: {exc.strerror or exc}") from None
    return out


def write_png(group, out: str) -> str:
    """PNG of ``group`` at its current widget size (in device-independent pixels)."""
    from PySide6 import QtCore

    out = _check_out(out)
    size = group.size()
    pixmap = group.grab()
    if pixmap.size() != size:  # a high-DPI screen renders more pixels: keep the asked size
        pixmap = pixmap.scaled(size, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                               QtCore.Qt.TransformationMode.SmoothTransformation)
    if not pixmap.save(out, "PNG"):
        raise ExportError(f"{out}: cannot write the PNG file")
    return out


def write_svg(group, out: str) -> str:
    from pyqtgraph.exporters import SVGExporter

    out = _check_out(out)
    try:
        SVGExporter(group.ci).export(fileName=out)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write: {exc.strerror or exc}") from None
    if not os.path.exists(out):
        raise ExportError(f"{out}: the SVG exporter wrote nothing")
    return out


def export_group(group, fmt: str, out: str, runs, probes) -> str:
    """Write an on-screen plot group as ``fmt`` (png | svg | csv) to ``out``."""
    if fmt == "png":
        return write_png(group, out)
    if fmt == "svg":
        return write_svg(group, out)
    if fmt == "csv":
        return write_csv(group, runs, probes, out)
    raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


def render_plot(name: str, runs, probes, settings: dict | None = None, size: tuple[int, int] | None = None):
    """A detached, laid-out group ``name`` drawn from ``runs`` (caller closes it)."""
    from PySide6 import QtCore, QtWidgets

    from explorer.gui.plots import GROUP_CLASSES, default_settings

    if name not in PLOT_NAMES:
        raise ExportError(f"unknown plot {name!r}: choose one of {', '.join(PLOT_NAMES)}")
    cls = {c.name: c for c in GROUP_CLASSES}[name]
    group = cls()
    w, h = size or DEFAULT_SIZE[name]
    group.setAttribute(QtCore.Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    group.resize(int(w), int(h))
    group.draw(runs, probes, settings or default_settings(runs))
    group.show()
    QtWidgets.QApplication.processEvents()
    group.resize(int(w), int(h))
    QtWidgets.QApplication.processEvents()
    return group


def export_plot(name: str, fmt: str, out: str, runs, probes, settings=None, size=None) -> str:
    group = render_plot(name, runs, probes, settings, size)
    try:
        return export_group(group, fmt, out, runs, probes)
    finally:
        group.close()
        group.deleteLater()


def export_all(runs, probes, folder: str, formats=FORMATS, settings=None, prefix: str = "") -> list[str]:
    """Every plot in every format of ``formats`` to ``folder`` (created if missing); returns the paths."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the folder: {exc.strerror or exc}") from None
    written = []
    for name in PLOT_NAMES:
        for fmt in formats:
            written.append(export_plot(name, fmt, os.path.join(folder, f"{prefix}{name}.{fmt}"), runs, probes,
                                       settings))
    return written


def latest_probes(runs) -> dict:
    """Per run, its newest probe (or None)."""
    out = {}
    for run in runs:
        n = len(run.probe_steps)
        out[run.name] = run.probe(n - 1) if n else None
    return out


def probes_at(runs, step: int | None) -> dict:
    """Per run, the newest probe at or before ``step`` (None: the newest overall)."""
    import numpy as np

    if step is None:
        return latest_probes(runs)
    out = {}
    for run in runs:
        steps = np.asarray(run.probe_steps)
        i = int(np.searchsorted(steps, step, side="right")) - 1
        out[run.name] = run.probe(max(i, 0)) if steps.shape[0] else None
    return out


def export_file(path: str, plot: str | None, fmt: str | None, out: str, size=None, step: int | None = None,
                runs_filter=None) -> list[str]:
    """Open session ``path`` and export ``plot`` as ``fmt`` to file ``out``, or every plot
    (``plot=None``) to folder ``out`` in ``fmt`` (None: all formats)."""
    from sessions import open_session

    ensure_app()
    with open_session(path) as session:
        runs = session.runs
        if runs_filter:
            runs = [r for r in runs if r.name in runs_filter]
        probes = probes_at(runs, step)
        if plot is None:
            return export_all(runs, probes, out, (fmt,) if fmt else FORMATS)
        return [export_plot(plot, fmt, out, runs, probes, size=size)]
