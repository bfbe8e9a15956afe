"""lstm-explorer info: text and JSON summaries of a session file; one-line errors for bad files."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import pytest

from explorer.commands import info
from sessions import SessionWriter
from sessions.writer import FORMAT_VERSION
from tests.sessions_support import add_run, write_session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", "info", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("info") / "run.h5"
    write_session(path, steps=40, probe_every=10)
    return path


def test_json_has_exactly_the_documented_shape(good, capsys):
    from explorer.cli import main

    assert main(["info", "--json", str(good)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"format_version", "runs"} and doc["format_version"] == FORMAT_VERSION
    assert [r["name"] for r in doc["runs"]] == ["rnn", "lstm"]
    for r in doc["runs"]:
        assert set(r) == {"name", "cell", "config", "status", "steps", "final", "baseline", "gates", "init",
                          "cell_options", "solved_at", "test", "card"}
        assert r["solved_at"] is None and r["test"] is None     # this writer recorded neither
        assert set(r["card"]) == {"best_metric", "final_metric", "decay_ratio", "memory_gate",
                                  "memory_gate_saturation", "param_count", "ms_per_step"}
        assert r["cell"] == r["name"] and r["status"] == "completed" and r["steps"] == 40
        assert r["config"]["cells"] == ["rnn", "lstm"]
        k = 1.0 if r["name"] == "rnn" else 2.0
        assert r["final"] == {"loss": k / 40, "metric": k / 41}
        assert r["baseline"] == {"loss": 0.1667, "metric": 0.1667}


def test_json_nan_becomes_null(tmp_path, capsys):
    path = tmp_path / "nan.h5"
    with SessionWriter(path) as w:
        add_run(w, "lstm", baseline_metric=float("nan"))
        add_run(w, "rnn")
        w.start()
        w.append_step("lstm", 1, 0.1, float("nan"), 0.5, float("inf"), {})
        w.set_status("lstm", "diverged", "loss became nan at step 1")
    from explorer.cli import main

    assert main(["info", "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    lstm, rnn = doc["runs"]
    assert lstm["final"] == {"loss": None, "metric": 0.5} and lstm["baseline"]["metric"] is None
    assert lstm["status"] == "diverged" and lstm["steps"] == 1
    assert rnn["final"] == {"loss": None, "metric": None} and rnn["steps"] == 0
    assert rnn["status"] == "interrupted"  # closed while still "running"


def test_text_output(good, capsys):
    from explorer.cli import main

    assert main(["info", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"format {FORMAT_VERSION}" in out
    assert "run rnn (rnn): completed, 40 of 40 steps" in out
    assert "run lstm (lstm): completed" in out
    assert "final:    loss 0.05   mse 0.0487805" in out   # lstm: 2/40, 2/41
    assert "baseline: loss 0.1667" in out
    assert "task=adding" in out and "cells=rnn,lstm" in out


def test_check_flag(good, tmp_path, capsys):
    from explorer.cli import main

    assert main(["info", "--check", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.h5"
    bad.write_bytes(good.read_bytes())
    with h5py.File(bad, "r+") as f:
        f["runs/rnn/status"][()] = b"exploded"
    assert main(["info", "--check", str(bad)]) == 1
    assert "exploded" in capsys.readouterr().out


def _bad_files(tmp_path, good):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    newer = tmp_path / "newer.h5"
    newer.write_bytes(good.read_bytes())
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = "3.1.0"
    missing = tmp_path / "missing-groups.h5"
    missing.write_bytes(good.read_bytes())
    with h5py.File(missing, "r+") as f:
        del f["runs/rnn/scalars"]
    return {"garbage": (garbage, "not an HDF5 file"), "empty": (empty, "empty"),
            "truncated": (truncated, "truncated"), "foreign": (foreign, "not an LSTM Explorer session"),
            "newer": (newer, "3.1.0"), "missing": (missing, "missing /runs/rnn/scalars"),
            "directory": (tmp_path, "directory"), "absent": (tmp_path / "absent.h5", "no such file")}


def _check_one_line(kind, path, words, code, stdout, stderr):
    assert code == 2, (kind, stdout, stderr)
    assert stdout == "", (kind, stdout)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, (kind, stderr)
    assert "Traceback" not in stderr
    assert lines[0].startswith("lstm-explorer info: error: ")
    assert str(path) in lines[0] and words in lines[0], (kind, lines[0])


def test_bad_files_one_clear_line(good, tmp_path, capsys):
    from explorer.cli import main

    for kind, (path, words) in _bad_files(tmp_path, good).items():
        for extra in ([], ["--json"]):
            code = main(["info", *extra, str(path)])
            out = capsys.readouterr()
            _check_one_line(kind, path, words, code, out.out, out.err)


def test_bad_files_no_traceback_from_the_console_script(good, tmp_path):
    """The real process: exit status 2, one line on stderr, no traceback."""
    files = _bad_files(tmp_path, good)
    for kind in ("garbage", "truncated", "newer", "directory"):
        path, words = files[kind]
        out = _cli("--json", path)
        _check_one_line(kind, path, words, out.returncode, out.stdout, out.stderr)


def test_module_docstring_is_the_help(good):
    out = subprocess.run([sys.executable, "-m", "explorer", "info", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--json" in out.stdout and "interrupted" in out.stdout
    assert info.__doc__.splitlines()[0] in out.stdout
