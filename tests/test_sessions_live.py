"""Session files written by another process: following a live writer, kill -9, disk full."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from sessions import SessionWriter, SessionWriteError, open_session, validate
from sessions import liveness
from sessions import writer as writer_mod
from sessions.liveness import writer_alive
from tests.sessions_support import add_run

HELPER = os.path.join(os.path.dirname(__file__), "sessions_support.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start_writer(path, steps: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, HELPER, "live", str(path), str(steps)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "started", proc.stderr.read()
    return proc


def _wait_for_rows(session, n: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.refresh()
        steps = session.run("lstm").steps
        if steps >= n:
            return steps
        time.sleep(0.01)
    raise AssertionError(f"the writer did not flush {n} steps within {timeout} s")


def test_reader_follows_a_writer_in_another_process(tmp_path):
    path = tmp_path / "live.h5"
    proc = _start_writer(path, steps=150)
    try:
        with open_session(path) as s:
            run = s.run("lstm")
            assert s.swmr and s.live and run.status == "running"
            first = _wait_for_rows(s, 20)
            later = _wait_for_rows(s, first + 20)
            assert later > first
            step, _, loss = run.scalar("loss")
            assert len(step) == len(loss) >= later
            np.testing.assert_array_equal(step, np.arange(1, len(step) + 1))  # no gaps, no torn rows
            np.testing.assert_allclose(loss, 2.0 / step)
            assert run.n_probes >= 1 and np.all(run.probe_steps % 10 == 0)
            assert run.status == "running"
            assert proc.wait(timeout=20) == 0
            s.refresh()
            assert run.status == "completed" and run.steps == 150 and not s.live
            assert run.n_probes == 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert validate(path) == []


def test_kill_minus_9_keeps_flushed_rows_and_reads_interrupted(tmp_path):
    path = tmp_path / "killed.h5"
    proc = _start_writer(path, steps=0)  # writes until killed
    try:
        with open_session(path) as s:
            seen = _wait_for_rows(s, 30)
            seen_probes = s.run("lstm").n_probes
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with open_session(path) as s:
        run = s.run("lstm")
        assert not s.writer_closed and not s.live
        assert run.stored_status == "running"
        assert run.status == "interrupted"
        assert "killed" in run.message
        assert run.steps >= seen
        step, _, loss = run.scalar("loss")
        np.testing.assert_array_equal(step, np.arange(1, run.steps + 1))
        np.testing.assert_allclose(loss, 2.0 / step)
        assert run.n_probes >= seen_probes
        assert run.probe(-1)["gates"].shape == (4, 6, 3)
    assert validate(path) == []
    # the CLI reports it too, as a user would see it
    out = subprocess.run([sys.executable, "-m", "explorer", "info", "--json", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["runs"][0]["status"] == "interrupted" and doc["runs"][0]["steps"] >= seen


def test_disk_full_stops_cleanly_and_keeps_flushed_rows(tmp_path):
    """A real write failure (file size limit -> EFBIG) in the writer's process: no crash at exit."""
    path = tmp_path / "full.h5"
    out = subprocess.run([sys.executable, HELPER, "diskfull", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr  # in particular no segfault while closing after the failure
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["error"] and str(path) in report["error"] and "writing failed" in report["error"]
    assert report["flushed"] > 0
    with open_session(path) as s:
        run = s.run("lstm")
        assert run.status == "interrupted"
        assert run.steps >= report["flushed"]
        step, _, _ = run.scalar("loss")
        np.testing.assert_array_equal(step, np.arange(1, len(step) + 1))
        assert run.n_probes >= 1


def test_nearly_full_disk_stops_before_writing(tmp_path, monkeypatch):
    path = tmp_path / "nearly.h5"
    w = SessionWriter(path, flush_interval_s=3600, flush_every_steps=5)
    add_run(w, "lstm")
    add_run(w, "rnn")
    w.start()
    w.set_status("rnn", "completed", "done")
    for s in range(1, 6):
        w.append_step("lstm", s, s * 0.1, 1.0 / s, 0.0, 1.0, {})
    monkeypatch.setattr(writer_mod, "_free_bytes", lambda folder: 1_000_000)
    with pytest.raises(SessionWriteError, match="disk full") as info:
        for s in range(6, 11):
            w.append_step("lstm", s, s * 0.1, 1.0 / s, 0.0, 1.0, {})
    assert str(path) in str(info.value)
    assert w.failed and w.closed
    w.close()  # still closable
    with pytest.raises(SessionWriteError):
        w.append_step("lstm", 11, 1.1, 1.0, 0.0, 1.0, {})
    with open_session(path) as s:
        run = s.run("lstm")
        assert run.status == "stopped" and "disk full" in run.message
        assert run.steps == 5
        assert s.run("rnn").status == "completed"
        assert s.writer_closed
    assert validate(path) == []


def test_liveness_rule_across_hosts(tmp_path):
    """Another host's writer: alive while its heartbeat is fresh; closed files are never alive."""
    p = tmp_path / "x.h5"
    p.write_bytes(b"")
    now = 1000.0
    other = dict(hostname=socket.gethostname() + "-elsewhere", pid=1, lock="ofd", heartbeat_timeout_s=60.0)
    assert writer_alive(p, closed=False, heartbeat=now - 5, now=now, **other)
    assert not writer_alive(p, closed=False, heartbeat=now - 61, now=now, **other)
    assert not writer_alive(p, closed=True, heartbeat=now, now=now, **other)
    # same host, no lock taken: the pid decides
    here = dict(hostname=socket.gethostname(), lock="none", heartbeat_timeout_s=60.0)
    assert writer_alive(p, closed=False, pid=os.getpid(), heartbeat=0.0, now=now, **here)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not writer_alive(p, closed=False, pid=dead.pid, heartbeat=now, now=now, **here)


def test_writer_lock_marks_a_live_writer(tmp_path):
    path = tmp_path / "lock.h5"
    w = SessionWriter(path)
    add_run(w, "rnn")
    w.start()
    try:
        if liveness.probe_writer_lock(path) is None:
            pytest.skip("no OFD locks on this platform")
        assert liveness.probe_writer_lock(path) is True
        with pytest.raises(Exception, match="being written"):
            SessionWriter(path, overwrite=True)  # --force does not clobber a file a live process writes
    finally:
        w.close()
    assert liveness.probe_writer_lock(path) is False
