"""`lstm-explorer export` headless: one plot, --all, --help lists the plots, bad input is one line."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.gui_fixtures import record_session

STEPS = 20


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("cli") / "s.h5", steps=STEPS, probe_every=10)


def cli(*args, env_extra=None):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env_extra or {})}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_help_lists_the_plot_names():
    from explorer.gui.names import PLOT_NAMES

    r = cli("export", "--help")
    assert r.returncode == 0
    for name in PLOT_NAMES:
        assert name in r.stdout


def test_one_plot_each_format(session_file, tmp_path):
    from PySide6 import QtGui

    png = tmp_path / "loss.png"
    r = cli("export", session_file, "--plot", "loss", "--format", "png", "-o", str(png),
            "--width", "500", "--height", "300")
    assert r.returncode == 0, r.stderr
    img = QtGui.QImage(str(png))
    assert (img.width(), img.height()) == (500, 300)
    svg = tmp_path / "flow.svg"
    r = cli("export", session_file, "--plot", "grad-flow", "-o", str(svg))   # format from the suffix
    assert r.returncode == 0, r.stderr
    ET.parse(svg)
    csv_out = tmp_path / "metric.csv"
    r = cli("export", session_file, "--plot", "metric", "--format", "csv", "-o", str(csv_out))
    assert r.returncode == 0, r.stderr
    lines = csv_out.read_text().strip().splitlines()
    assert lines[0] == "step,rnn_metric,lstm_metric" and len(lines) == 1 + STEPS


def test_all_plots_to_a_folder(session_file, tmp_path):
    from explorer.gui.names import FORMATS, PLOT_NAMES

    out = tmp_path / "figs"
    r = cli("export", session_file, "--all", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == sorted(f"{n}.{f}" for n in PLOT_NAMES for f in FORMATS)


def test_bad_input_is_one_line_and_exit_2(tmp_path, session_file):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    r = cli("export", str(bad), "--plot", "loss", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2
    assert str(bad) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("export", session_file, "--plot", "loss", "-o", str(tmp_path / "x.gif"))
    assert r.returncode == 2 and "--format" in r.stderr
    r = cli("export", session_file, "--plot", "loss", "-o", str(tmp_path / "new" / "folder" / "x.png"))
    assert r.returncode == 0 and (tmp_path / "new" / "folder" / "x.png").is_file()  # folders are made
    (tmp_path / "a-file").write_text("")
    r = cli("export", session_file, "--plot", "loss", "-o", str(tmp_path / "a-file" / "x.png"))
    assert r.returncode == 2 and "cannot create the folder" in r.stderr and "Traceback" not in r.stderr
