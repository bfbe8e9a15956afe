"""Exports of every named plot: PNG decodes to the right size, SVG parses with the curves, CSV matches the steps."""
from __future__ import annotations

import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.gui_fixtures import record_session

pytest.importorskip("pytestqt")
STEPS = 30


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("exp") / "s.h5", steps=STEPS, probe_every=10)


@pytest.fixture
def runs(qapp, session_file):
    from sessions import open_session

    s = open_session(session_file)
    yield s.runs
    s.close()


def _svg_curves(path, color: str) -> list[int]:
    """Vertices per curve group stroked in ``color`` (pyqtgraph writes a thin curve as one path,
    a thick one as many two-point polylines)."""
    root = ET.parse(path).getroot()     # raises if the SVG is not well-formed XML
    counts = []
    for g in root.iter():
        if not g.tag.endswith("}g") or g.get("stroke") != color:
            continue
        n = 0
        for e in g:
            if e.tag.endswith("path"):
                n += e.get("d", "").count("L") + 1
            elif e.tag.endswith("polyline"):
                n += 1
        if n:
            counts.append(n)
    return counts


def test_png_has_the_requested_size(runs, tmp_path):
    from PySide6 import QtGui

    from explorer.gui.export import export_plot, latest_probes

    for name, size in (("loss", (640, 400)), ("gates", (900, 500))):
        out = export_plot(name, "png", str(tmp_path / f"{name}.png"), runs, latest_probes(runs), size=size)
        img = QtGui.QImage(out)
        assert not img.isNull()
        assert (img.width(), img.height()) == size
        # not blank: the curves/heatmaps put many distinct colours in
        colors = {img.pixel(x, y) for x in range(0, size[0], 7) for y in range(0, size[1], 7)}
        assert len(colors) > 10


def test_svg_parses_as_xml_with_the_curves_in_it(runs, tmp_path):
    """pyqtgraph's SVGExporter breaks on PySide6 >= 6.11 (PITFALLS.md): this shows it at once."""
    from explorer.gui.export import export_plot, latest_probes

    out = export_plot("loss", "svg", str(tmp_path / "loss.svg"), runs, latest_probes(runs))
    from explorer.gui.plots import cell_color

    for cell in ("rnn", "lstm"):   # raw and smoothed curve of each cell, every step in them
        curves = [n for n in _svg_curves(out, cell_color(cell)) if n >= STEPS - 1]
        assert len(curves) == 2, (cell, _svg_curves(out, cell_color(cell)))
    text = open(out).read()
    assert "LSTM" in text and "RNN" in text and "chance" in text


def test_csv_rows_match_the_recorded_steps(runs, tmp_path):
    from explorer.gui.export import export_plot, latest_probes

    probes = latest_probes(runs)
    out = export_plot("loss", "csv", str(tmp_path / "loss.csv"), runs, probes)
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["step", "rnn_loss", "lstm_loss"]
    step, _, loss = runs[1].scalar("loss")
    assert [int(r[0]) for r in rows[1:]] == step.tolist()
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], loss, rtol=1e-12)
    out = export_plot("param-grads", "csv", str(tmp_path / "pg.csv"), runs, probes)
    rows = list(csv.reader(open(out)))
    assert len(rows) == 1 + STEPS and len(rows[0]) == 1 + 2 * 6
    out = export_plot("grad-heatmap", "csv", str(tmp_path / "gh.csv"), runs, probes)
    rows = list(csv.reader(open(out)))
    assert len(rows) == 1 + sum(len(r.probe_steps) for r in runs)
    assert len(rows[0]) == 2 + runs[0].length
    out = export_plot("saturation", "csv", str(tmp_path / "sat.csv"), runs, probes)
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["run", "step", "gate", "saturated"]
    assert [r[2] for r in rows[1:5]] == ["i", "f", "g", "o"] and len(rows) == 1 + 4 * len(runs[1].probe_steps)
    out = export_plot("gates", "csv", str(tmp_path / "gates.csv"), runs, probes)
    rows = list(csv.reader(open(out)))
    L, H = runs[1].length, runs[1].hidden
    assert len(rows) == 1 + 6 * L and len(rows[0]) == 4 + H


def test_ema_matches_the_recursive_definition():
    from explorer.gui.plots import ema, ema_carry

    rng = np.random.default_rng(0)
    x = rng.random(5000)
    for a in (0.0, 0.05, 0.6, 0.99):
        y, num, den = np.empty_like(x), 0.0, 0.0
        for t, v in enumerate(x):      # the TensorBoard definition, one step at a time
            num, den = a * num + (1 - a) * v, a * den + (1 - a)
            y[t] = num / den
        np.testing.assert_allclose(ema(x, a), y, rtol=1e-9)
        first, carry = ema_carry(x[:123], a)
        rest, _ = ema_carry(x[123:], a, carry)
        np.testing.assert_allclose(np.concatenate([first, rest]), y, rtol=1e-9)
