"""Two writers (issue 16): a second `lstm-explorer train --out same.h5 --force` aimed at a file another
live process is writing is refused with a clear message, and the first run's file is not damaged."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessions import SessionBusyError, SessionWriter, open_session, validate
from sessions import liveness
from tests.terminal import ctrl_c_reaches_it

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["-m", "explorer", "train", "--task", "adding", "--seq-len", "5", "--cell", "rnn", "--hidden", "4",
         "--batch", "4", "--test-size", "0", "--probe-every", "50", "--quiet"]


def _env() -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("LSTM_EXPLORER_DATA_DIR", None)
    return env


def _steps(path: Path) -> int:
    try:
        with open_session(path) as s:
            return s.run("rnn").steps
    except Exception:
        return 0


@pytest.mark.slow
def test_a_second_train_force_on_a_file_being_written_is_refused_and_the_first_goes_on(tmp_path):
    if liveness.probe_writer_lock(__file__) is None:
        pytest.skip("no OFD locks on this platform: liveness is not detectable")
    out = tmp_path / "same.h5"
    first = subprocess.Popen([sys.executable, *TRAIN, "--steps", "100000000", "--out", str(out)], cwd=tmp_path,
                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=ctrl_c_reaches_it)
    try:
        deadline = time.monotonic() + 180   # a cold kernel cache compiles first
        while _steps(out) < 20:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first training never recorded a step"
            time.sleep(0.2)
        assert liveness.probe_writer_lock(out) is True
        size_before = out.stat().st_size

        for extra in (["--force"], []):
            second = subprocess.run([sys.executable, *TRAIN, "--steps", "10", "--out", str(out), *extra],
                                    cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
            assert second.returncode == 2, second
            line = second.stderr.strip()
            assert "Traceback" not in line and len(line.splitlines()) == 1, line
            assert str(out) in line
            assert ("being written by another running process" if extra else "already exists") in line, line

        # the first run was not disturbed: its file still reads, and it goes on writing
        assert out.stat().st_size >= size_before
        n = _steps(out)
        deadline = time.monotonic() + 30
        while _steps(out) <= n:
            assert time.monotonic() < deadline, "the first training stopped recording"
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGINT)   # Ctrl-C: the run ends "stopped" and the file is closed
        try:
            first.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            first.kill()
            first.communicate()
    with open_session(out) as s:
        run = s.run("rnn")
        assert run.status == "stopped", (run.status, run.message)
        assert run.steps > n
        step, _, loss = run.scalar("loss")
        assert list(step) == list(range(1, len(step) + 1))   # every step of the first run, none from the second
    assert validate(out) == []


def test_the_lock_is_taken_before_the_file_is_truncated(tmp_path, monkeypatch):
    """In process: a writer overwriting (--force) a file whose lock is held refuses without truncating it
    (HDF5 would truncate as it opens), and once the first writer is gone --force works."""
    if liveness.probe_writer_lock(__file__) is None:
        pytest.skip("no OFD locks on this platform")
    path = tmp_path / "held.h5"
    w = SessionWriter(path)
    w.start()
    w.flush()
    size = path.stat().st_size
    try:
        # a look at the lock before taking it can miss the other writer (it may take its lock just after):
        # the writer must take the lock itself, before HDF5 opens (and truncates) the file
        monkeypatch.setattr(liveness, "probe_writer_lock", lambda p: False)
        with pytest.raises(SessionBusyError, match="being written by another running process") as err:
            SessionWriter(path, overwrite=True)
        assert str(path) in str(err.value)
        assert path.stat().st_size == size
    finally:
        w.close()
    monkeypatch.undo()
    with open_session(path) as s:
        assert s.writer_closed
    SessionWriter(path, overwrite=True).close()   # once the first writer is gone, --force works


def test_a_file_deleted_while_written_is_saved_whole_under_a_new_name(tmp_path):
    """On Linux the writer goes on writing an unlinked file; close() saves it beside the lost path."""
    from explorer.recording import SessionRecorder
    from explorer.training import Trainer
    from sessions import open_session
    from tests.gui_fixtures import tiny_config

    cfg = tiny_config(steps=30, probe_every=10)
    trainer = Trainer(cfg)
    path = str(tmp_path / "run.h5")
    rec = SessionRecorder(path, cfg, trainer.runs)
    for k, r in enumerate(trainer.run()):
        rec.record(r)
        if k == 20:
            os.unlink(path)
            assert rec.writer.path_lost()
    rec.finish({c: trainer.state_dict(c) for c in cfg.cells})
    assert rec.writer.path_was_lost and rec.saved_path == rec.writer.saved_as == str(tmp_path / "run.recovered.h5")
    with open_session(rec.writer.saved_as) as s:
        assert all(r.status == "completed" and r.steps == 30 and r.params is not None for r in s.runs)
    # a file replaced by another at the same name counts as lost too; the other is left alone
    rec2 = SessionRecorder(path, cfg, Trainer(cfg).runs)
    os.replace(rec.writer.saved_as, path)
    assert rec2.writer.path_lost()
    rec2.close()
    assert rec2.writer.saved_as == str(tmp_path / "run.recovered.h5")
    with open_session(path) as s:
        assert s.run("lstm").steps == 30
