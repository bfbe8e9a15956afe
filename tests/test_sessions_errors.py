"""Bad session files raise the project's own errors, naming the file and what is wrong."""
from __future__ import annotations

import builtins
import os
import shutil

import h5py
import numpy as np
import pytest

import sessions
from sessions import (DamagedFileError, EmptyFileError, NotASessionError, NotHDF5Error, SchemaError,
                      SessionError, SessionIsDirectoryError, SessionNotFoundError, SessionPermissionError,
                      SessionWriter, TruncatedFileError, UnsupportedVersionError, open_session, validate)
from tests.sessions_support import write_session


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.h5"
    write_session(path, steps=40, probe_every=10)
    return path


def _copy(good, tmp_path, name="copy.h5"):
    dst = tmp_path / name
    shutil.copy(good, dst)
    return dst


def _raises(path, exc_type, *words):
    with pytest.raises(exc_type) as info:
        open_session(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    assert isinstance(info.value, SessionError)
    return msg


def test_not_hdf5(tmp_path):
    p = tmp_path / "garbage.h5"
    p.write_bytes(b"this is not HDF5 at all\n" * 50)
    _raises(p, NotHDF5Error, "not an HDF5 file")


def test_empty(tmp_path):
    p = tmp_path / "empty.h5"
    p.write_bytes(b"")
    _raises(p, EmptyFileError, "empty")


@pytest.mark.parametrize("fraction", [0.9, 0.5, 0.05])
def test_truncated(good, tmp_path, fraction):
    p = _copy(good, tmp_path)
    size = p.stat().st_size
    with open(p, "r+b") as fh:
        fh.truncate(int(size * fraction))
    _raises(p, TruncatedFileError, "truncated")
    with pytest.raises(TruncatedFileError):
        validate(p)


def test_truncated_just_after_the_signature(good, tmp_path):
    p = _copy(good, tmp_path)
    with open(p, "r+b") as fh:
        fh.truncate(20)
    _raises(p, DamagedFileError)


def test_corrupt_metadata_fails_fast(good, tmp_path):
    p = _copy(good, tmp_path)
    with open(p, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff" * 3000)
    _raises(p, DamagedFileError)


def test_foreign_hdf5(tmp_path):
    p = tmp_path / "foreign.h5"
    with h5py.File(p, "w") as f:
        f["data"] = [1, 2, 3]
    _raises(p, NotASessionError, "not an LSTM Explorer session")
    assert validate(p) and "format" in validate(p)[0]


def test_other_format_name(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        f.attrs["format"] = "h5md"
    _raises(p, NotASessionError, "'h5md'")


def test_missing_groups(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        del f["runs/lstm/probes"]
    _raises(p, SchemaError, "missing /runs/lstm/probes")
    problems = validate(p)
    assert "missing /runs/lstm/probes" in problems and all("lstm" in q for q in problems)
    p2 = _copy(good, tmp_path, "noruns.h5")
    with h5py.File(p2, "r+") as f:
        del f["runs"]
    _raises(p2, SchemaError, "missing /runs")


def test_validate_finds_deeper_problems(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        f["runs/rnn/status"][()] = b"exploded"
        f["runs/lstm/config"].attrs["json"] = "{not json"
        steps = f["runs/rnn/scalars/loss/step"]
        steps[3] = steps[2]
    problems = validate(p)
    assert any("exploded" in q for q in problems)
    assert any("not valid JSON" in q for q in problems)
    assert any("strictly increasing" in q for q in problems)


def test_newer_major_refused_naming_both_versions(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = "2.0.0"
    msg = _raises(p, UnsupportedVersionError, "2.0.0", sessions.FORMAT_VERSION, "newer")
    assert "upgrade" in msg
    assert "2.0.0" in validate(p)[0]


def test_newer_minor_is_read(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = "1.9.3"
        f.attrs["some_new_root_attribute"] = "ignored"
        f["runs/lstm"].create_group("embeddings")["umap"] = [[0.0, 1.0]]
        f["runs/lstm/probes"].create_dataset("attention", data=[1.0])
        f["runs/lstm"].attrs["new_attr"] = 3
    with open_session(p) as s:
        assert s.format_version == "1.9.3"
        run = s.run("lstm")
        assert run.steps == 40 and run.status == "completed" and run.n_probes == 4
        assert run.probe(0)["gates"].shape == (4, 6, 3)
    assert validate(p) == []


def test_bad_version_text(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = "one"
    _raises(p, SchemaError, "'one'")


def test_directory_and_missing(tmp_path):
    _raises(tmp_path, SessionIsDirectoryError, "directory")
    _raises(tmp_path / "nope.h5", SessionNotFoundError, "no such file")
    with pytest.raises(SessionIsDirectoryError):
        SessionWriter(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(good, tmp_path):
    p = _copy(good, tmp_path)
    p.chmod(0)
    try:
        _raises(p, SessionPermissionError, "permission denied")
    finally:
        p.chmod(0o644)


def test_permission_denied_mapping(good, tmp_path, monkeypatch):
    """The same path as above, also where the tests run as root: open() refused -> SessionPermissionError."""
    p = _copy(good, tmp_path)
    real_open = builtins.open

    def refusing(file, *a, **k):
        if os.fspath(file) == os.fspath(p):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", refusing)
    _raises(p, SessionPermissionError, "permission denied")


def test_writer_into_missing_folder(tmp_path):
    with pytest.raises(SessionError, match="does not exist") as info:
        SessionWriter(tmp_path / "no" / "such" / "run.h5")
    assert "run.h5" in str(info.value)


def test_unknown_run_name(good):
    with open_session(good) as s:
        with pytest.raises(sessions.RunNotFoundError, match="gru.*rnn, lstm"):
            s.run("gru")


def test_killed_before_the_layout_was_finished(tmp_path):
    """A writer that dies before start() leaves a file HDF5 marks open: a clear error, not a hang."""
    import subprocess
    import sys

    p = tmp_path / "early.h5"
    code = ("import os, sys; sys.path.insert(0, %r); from sessions import SessionWriter; "
            "from tests.sessions_support import add_run; w = SessionWriter(%r); add_run(w, 'rnn'); "
            "w._file.flush(); os._exit(0)") % (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), str(p))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    _raises(p, DamagedFileError, "incomplete")


def test_truncated_copy_of_a_killed_file(tmp_path):
    """A file whose writer died (still marked open for write) and was then cut short: error, no hang."""
    import subprocess
    import sys

    p = tmp_path / "died.h5"
    code = ("import os, sys; sys.path.insert(0, %r); from sessions import SessionWriter; "
            "from tests.sessions_support import write_session; "
            "SessionWriter.close = lambda self: (self.flush(), os._exit(0)); "
            "write_session(%r, steps=40, finish=False)") % (
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), str(p))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with open_session(p) as s:  # the whole file: readable, interrupted
        assert s.run("lstm").status == "interrupted" and s.run("lstm").steps == 40
    size = p.stat().st_size
    cut = _copy(p, tmp_path, "cut-late.h5")
    with open(cut, "r+b") as fh:
        fh.truncate(size - 20_000)  # lose the last chunks: what lies inside the file is still read
    with open_session(cut) as s:
        assert "shorter" in s.damaged
        kept = 0
        for run in s.runs:
            step, _, loss = run.scalar("loss")
            np.testing.assert_array_equal(step, np.arange(1, len(step) + 1))
            assert np.all(loss > 0)  # never the zeros HDF5 returns for data beyond the end
            kept += len(step) + run.n_probes
            for i in range(run.n_probes):
                assert run.probe(i)["step"] == 10 * (i + 1)
        assert kept < 2 * (40 + 4)
    cut = _copy(p, tmp_path, "cut-early.h5")
    with open(cut, "r+b") as fh:
        fh.truncate(int(size * 0.1))
    _raises(cut, DamagedFileError, "truncated")
