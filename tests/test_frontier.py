"""The sweep file, the frontier and claims computations, and the sweep exports."""
from __future__ import annotations

import csv
import math
import os

import h5py
import pytest

from explorer.frontier import claims, frontier, largest_solved, write_claims_csv, write_frontier_csv
from sessions.sweep import NotASweepError, is_sweep_file, read_sweep, write_sweep


def fake_results():
    rows = []
    for cell, solved_upto, pc, ms in (("rnn", 10, 100, 1.0), ("lstm", 50, 400, 4.0)):
        for T in (10, 50, 100):
            for seed in range(3):
                ok = T <= solved_upto and not (T == 50 and seed == 2)
                rows.append(dict(cell=cell, seq_len=T, seed=seed, status="completed", message="",
                                 final_loss=0.001 if ok else 0.17 + 0.01 * seed,
                                 final_metric=0.001 if ok else 0.17 + 0.01 * seed, solved=ok, steps=100,
                                 steps_per_s=1000 / ms, ms_per_step=ms, param_count=pc,
                                 decay_ratio=(0.5 if cell == "lstm" else 1e-6) ** (T / 10),
                                 baseline_metric=1 / 6, session=f"adding-{cell}-T{T}-s{seed}.h5"))
    rows.append(dict(cell="rnn", seq_len=100, seed=3, status="failed", message="KilledWorker", solved=False,
                     steps=0, session="adding-rnn-T100-s3.h5"))
    return rows


def test_sweep_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "sweep.h5"
    write_sweep(path, {"train": {"task": "adding", "steps": 100}, "seq_lens": [10, 50, 100]}, fake_results())
    assert is_sweep_file(path)
    sw = read_sweep(path)
    assert sw.config["train"]["task"] == "adding" and len(sw.runs) == 19
    r = sw.runs[0]
    assert r["cell"] == "rnn" and r["seq_len"] == 10 and r["solved"] is True
    assert r["session_path"] == str(tmp_path / "adding-rnn-T10-s0.h5")
    failed = sw.runs[-1]
    assert failed["status"] == "failed" and math.isnan(failed["final_metric"])
    assert not list(tmp_path.glob(".sweep-*"))   # the temporary file was moved, not left behind

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "lstm-explorer-session"
    assert not is_sweep_file(other) and not is_sweep_file(tmp_path / "missing.h5")
    with pytest.raises(NotASweepError, match="not an LSTM Explorer sweep file"):
        read_sweep(other)
    (tmp_path / "text.h5").write_text("hello")
    from sessions.errors import NotHDF5Error, SessionError, SessionNotFoundError
    with pytest.raises(NotHDF5Error):
        read_sweep(tmp_path / "text.h5")
    with pytest.raises(SessionNotFoundError):
        read_sweep(tmp_path / "missing.h5")
    with pytest.raises(SessionError, match="did you mean"):
        read_sweep(tmp_path)


def test_frontier_one_point_per_cell_and_T():
    rows = frontier(fake_results())
    assert [(r["cell"], r["seq_len"]) for r in rows] == [(c, t) for c in ("rnn", "lstm") for t in (10, 50, 100)]
    by = {(r["cell"], r["seq_len"]): r for r in rows}
    assert by[("rnn", 10)]["success_rate"] == 1.0
    assert by[("lstm", 50)]["success_rate"] == pytest.approx(2 / 3)
    assert by[("rnn", 100)]["n_seeds"] == 3 and by[("rnn", 100)]["n_failed"] == 1
    assert by[("lstm", 50)]["median_final_metric"] == pytest.approx(0.001)
    assert largest_solved(rows, "rnn") == 10 and largest_solved(rows, "lstm") == 50


def test_claims_table_rows():
    table = claims(fake_results(), read_sessions=False)
    assert len(table) == 6
    by = {r["number"].split(" at ")[0]: r for r in table}
    assert by["largest T solved"]["rnn"] == 10 and by["largest T solved"]["lstm"] == 50
    decay = next(r for r in table if r["number"].startswith("decay ratio"))
    assert "T=50" in decay["number"] and decay["rnn"] < decay["lstm"]
    assert by["parameter count"]["rnn"] == 100 and by["parameter count"]["lstm"] == 400
    assert by["ms/step"]["lstm"] == 4.0
    assert by["std of final loss across seeds"]["rnn"] > 0


def test_csv_writers(tmp_path):
    write_frontier_csv(frontier(fake_results()), tmp_path / "f.csv")
    write_claims_csv(claims(fake_results(), read_sessions=False), tmp_path / "c.csv")
    f = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert len(f) == 6 and f[0]["cell"] == "rnn" and f[0]["seq_len"] == "10" and f[0]["success_rate"] == "1"
    c = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert len(c) == 6 and c[1]["lstm"] == "50"


def test_export_frontier_and_claims(tmp_path):
    pytest.importorskip("PySide6")
    from explorer.gui.sweep_view import export_plot

    path = tmp_path / "sweep.h5"
    write_sweep(path, {"train": {"task": "adding", "steps": 100}, "cells": ["rnn", "lstm"],
                       "seq_lens": [10, 50, 100], "seeds": 3}, fake_results())
    out = export_plot(path, "frontier", "csv", tmp_path / "frontier.csv")
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 6 and len({(r["cell"], r["seq_len"]) for r in rows}) == 6
    for fmt in ("png", "svg"):
        p = export_plot(path, "frontier", fmt, tmp_path / f"frontier.{fmt}")
        assert (tmp_path / f"frontier.{fmt}").stat().st_size > 1000, p
    export_plot(path, "claims", "csv", tmp_path / "claims.csv")
    export_plot(path, "claims", "png", tmp_path / "claims.png")
    export_plot(path, "claims", "svg", tmp_path / "claims.svg")
    assert (tmp_path / "claims.svg").stat().st_size > 1000
    written = export_plot(path, None, None, tmp_path / "all")   # lstm-explorer export --all
    assert len(written) == 6 and all(os.path.getsize(p) > 0 for p in written)
    assert len(list(csv.DictReader(open(tmp_path / "claims.csv")))) == 6


def test_sweep_view_click_opens_run(tmp_path, qtbot):
    from explorer.gui.sweep_view import SweepView

    path = tmp_path / "sweep.h5"
    write_sweep(path, {"train": {"task": "adding"}, "cells": ["rnn", "lstm"], "seq_lens": [10, 50, 100],
                       "seeds": 3}, fake_results())
    view = SweepView(path)
    qtbot.addWidget(view)
    assert view.claims.rowCount() == 6
    with qtbot.waitSignal(view.run_selected, timeout=1000) as sig:
        view.frontier.point_clicked.emit(str(tmp_path / "adding-lstm-T50-s1.h5"))
    assert sig.args == [str(tmp_path / "adding-lstm-T50-s1.h5")]


def test_a_sweep_file_opens_wherever_a_session_does(tmp_path, qtbot, monkeypatch):
    """File > Open, drag-and-drop and `lstm-explorer replay` all go through open_files: a sweep file gets
    the sweep view's tab, a session its own, side by side."""
    from PySide6 import QtCore, QtGui

    from explorer.gui.sweep_view import SweepView
    from explorer.gui.window import MainWindow
    from tests.gui_fixtures import record_session, replay_screenshot

    monkeypatch.setenv("LSTM_EXPLORER_DATA_DIR", str(tmp_path / "data"))
    sweep = tmp_path / "sweep.h5"
    write_sweep(sweep, {"train": {"task": "adding"}, "cells": ["rnn", "lstm"], "seq_lens": [10, 50, 100],
                        "seeds": 3}, fake_results())
    session = record_session(tmp_path / "run.h5", steps=20, probe_every=10)
    w = MainWindow(check_cuda=False, prewarm=False)
    qtbot.addWidget(w)
    sweep_view, session_view = w.open_files([sweep, session])
    assert isinstance(sweep_view, SweepView) and sweep_view.claims.rowCount() == 6
    assert w.tabs.tabText(w.tabs.indexOf(sweep_view)) == "sweep: sweep.h5"
    assert session_view in w.views() and not w.errors
    assert str(sweep) in w.recent_files()
    # a clicked point opens its run in a tab (here the session recorded above stands for it)
    sweep_view.frontier.point_clicked.emit(str(session))
    assert len(w.views()) == 2 and w.tabs.currentWidget() is w.views()[-1]
    assert sweep_view.claims.maximumHeight() < 400                 # the table no taller than its 6 rows
    # a success-rate point stands for every seed of its (cell, T): a click opens them as bands
    seed_lists = [t for t in sweep_view.frontier._targets.values() if t and isinstance(t[0], list)]
    assert [os.path.basename(p) for p in seed_lists[1][1]] == [f"adding-lstm-T50-s{k}.h5" for k in range(3)]
    other_seed = record_session(tmp_path / "run-seed1.h5", steps=20, probe_every=10, seed=1)
    sweep_view.frontier.seeds_clicked.emit([str(session), str(other_seed)])
    assert w.tabs.tabText(w.tabs.currentIndex()) == "seeds: adding T=10 (2)"
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(sweep))])
    w.dropEvent(QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.DropAction.CopyAction, mime,
                                 QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier))
    assert sum(isinstance(w.tabs.widget(i), SweepView) for i in range(w.tabs.count())) == 2
    w.close()
    shot = tmp_path / "sweep.png"
    done = replay_screenshot([sweep], shot)
    assert done.returncode == 0 and shot.stat().st_size > 10_000 and "Traceback" not in done.stderr, done.stderr
