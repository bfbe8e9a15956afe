"""Faults in the window (issue 16), offscreen with pytest-qt: a diverging cell shows `diverged` while the
other cell goes on training; a session file deleted while recording is noticed and the run saved under a
new name; a removed session folder is made again; a replayed file deleted keeps its tab working."""
from __future__ import annotations

import os

import pytest

from tests.gui_fixtures import tiny_config

pytest.importorskip("pytestqt")


@pytest.mark.slow
def test_a_diverging_cell_shows_diverged_and_the_other_goes_on(window, qtbot, monkeypatch):
    import explorer.gui.worker as worker_mod
    from sessions import open_session

    start = worker_mod.start_worker

    def start_with_a_diverging_rnn(trainer, recorder, parent):
        # the RNN's readout weights at 1e30: its loss overflows on its first step (as an lr of 10 does, sooner
        # or later); the LSTM trains on the same batches untouched
        trainer.models["rnn"].params["readout.weight"][:] = 1e30
        return start(trainer, recorder, parent)

    monkeypatch.setattr(worker_mod, "start_worker", start_with_a_diverging_rnn)
    steps = 3000
    window.settings.set_config(tiny_config(steps=steps, probe_every=100))
    assert window.start_training()
    rnn = lambda: window.live_session.run("rnn")     # noqa: E731
    lstm = lambda: window.live_session.run("lstm")   # noqa: E731
    qtbot.waitUntil(lambda: rnn().status == "diverged", timeout=180_000)
    assert "smaller --lr" in rnn().message or "lr" in rnn().message, rnn().message
    qtbot.waitUntil(lambda: not window.training, timeout=180_000)
    # the LSTM went on to the end; the RNN stopped where it diverged (on a fast machine the whole tiny run can
    # be over before the window first hears of the divergence, so only the end state is compared)
    assert lstm().status == "completed" and lstm().steps == steps
    assert rnn().status == "diverged" and rnn().steps < steps
    # the window says so: the view's status line, the end-of-training line and one dialog with the reason
    view = window.live_view
    view.refresh(force=True)
    assert "RNN: diverged" in view.info_label.toolTip()
    assert "LSTM: completed" in view.info_label.toolTip()
    assert "diverged" in window.compile_label.text() and "completed" in window.compile_label.text()
    assert len(window.errors) == 1 and "lr" in window.errors[0], window.errors
    # the LSTM's plots kept being drawn; the recorded file agrees
    x, _ = view.groups["loss"].raw["lstm"].getData()
    assert len(x) == steps
    with open_session(window.live_session.path) as s:
        assert s.run("rnn").status == "diverged"
        assert s.run("lstm").status == "completed" and s.run("lstm").steps == steps


@pytest.mark.slow
def test_a_session_file_deleted_while_recording_is_saved_under_a_new_name(window, qtbot, tmp_path):
    from sessions import open_session

    window.settings.set_config(tiny_config(steps=2000, probe_every=100))
    assert window.start_training()
    path = window.live_session.path
    qtbot.waitUntil(lambda: window.live_session.run("lstm").steps > 20, timeout=180_000)
    os.unlink(path)
    # the window notices while the run goes on, and says what will happen
    qtbot.waitUntil(lambda: any("was deleted" in e for e in window.errors), timeout=10_000)
    assert window.training and "deleted" in window.status_file.text()
    qtbot.waitUntil(lambda: not window.training, timeout=180_000)
    saved = os.path.splitext(path)[0] + ".recovered.h5"
    assert any(f"saved as {saved}" in e for e in window.errors), window.errors
    assert window.live_session.path == saved and saved in window.recent_files()
    with open_session(saved) as s:                       # every step of the run, closed properly
        assert [r.status for r in s.runs] == ["completed", "completed"]
        assert all(r.steps == 2000 and r.params is not None for r in s.runs)
    # "Save as…" moves it where the user says
    mine = str(tmp_path / "mine.h5")
    assert window.save_recovered_as(mine) == mine and not os.path.exists(saved)
    with open_session(mine) as s:
        assert s.run("rnn").steps == 2000


def test_a_removed_session_folder_is_made_again_and_one_that_cannot_be_is_a_dialog(window, qtbot, tmp_path):
    folder = tmp_path / "gone" / "sessions"
    window.settings.data_dir.setText(str(folder))
    window.settings.set_config(tiny_config(steps=5))
    assert window.start_training()
    qtbot.waitUntil(lambda: not window.training, timeout=120_000)
    assert os.path.isfile(window.live_session.path) and os.path.dirname(window.live_session.path) == str(folder)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    window.settings.data_dir.setText(str(blocked / "sessions"))
    assert not window.start_training()
    assert "cannot create it" in window.errors[-1] and str(blocked) in window.errors[-1]
    assert window.isVisible() and not window.training


def test_a_replayed_file_deleted_keeps_its_tab_working(window, tmp_path):
    from tests.gui_fixtures import record_session

    path = record_session(tmp_path / "replayed.h5", steps=40, probe_every=10)
    (view,) = window.open_files([path])
    os.unlink(path)
    view.slider.setValue(1)                          # another probe, read from the open file
    view.refresh(force=True)
    assert "step 10" in view.probe_label.text()
    out = window.export_plot(view, "gates", "csv", str(tmp_path / "gates.csv"))
    assert out and os.path.getsize(out) > 0 and not window.errors


@pytest.mark.slow
def test_the_disk_filling_up_stops_the_runs_with_a_dialog_and_keeps_what_was_flushed(window, qtbot, monkeypatch):
    from sessions import open_session
    from sessions import writer as writer_mod

    free = {"bytes": None}                                     # None: the real free space
    real = writer_mod._free_bytes
    monkeypatch.setattr(writer_mod, "_free_bytes", lambda folder: free["bytes"] if free["bytes"] is not None
                        else real(folder))
    window.settings.set_config(tiny_config(steps=1_000_000, probe_every=100))
    assert window.start_training()
    path = window.live_session.path
    qtbot.waitUntil(lambda: window.live_session.run("lstm").steps > 300, timeout=180_000)
    qtbot.wait(1500)                                           # the writer flushes about once a second
    free["bytes"] = 1000                                       # the disk is full from now on
    qtbot.waitUntil(lambda: not window.training, timeout=60_000)
    assert any("disk full" in e for e in window.errors), window.errors
    assert not any("Traceback" in e or "SessionWriteError:" in e for e in window.errors)
    for cell in ("rnn", "lstm"):
        run = window.live_session.run(cell)
        assert run.status == "stopped" and "disk full" in run.message
    with open_session(path) as s:                              # what was flushed stays readable
        for run in s.runs:
            assert run.status == "stopped" and "disk full" in run.message and run.steps >= 300
    # the window keeps working: with room again, the next run records
    free["bytes"] = None
    window.settings.set_config(tiny_config(steps=20))
    assert window.start_training()
    qtbot.waitUntil(lambda: not window.training, timeout=120_000)
    assert window.live_session.run("lstm").status == "completed"


def test_a_live_run_keeps_few_probes_in_memory_and_reads_older_ones_back(window, qtbot, monkeypatch):
    """Issue 16: the window's memory for a live run stays bounded: the (L, H) arrays of older probes are
    dropped and read back from the session file being written when the slider asks for them."""
    import numpy as np

    import explorer.gui.data as data
    from sessions import open_session

    monkeypatch.setattr(data, "PROBE_MEMORY_BYTES", 0)        # keep only the newest two probes
    window.settings.set_config(tiny_config(steps=300, probe_every=5))
    assert window.start_training()
    qtbot.waitUntil(lambda: not window.training, timeout=120_000)
    run = window.live_session.run("lstm")
    assert run.n_probes == 61
    assert sum(p["h"] is not None for p in run._probes) == 2   # the rest live in the file only
    view = window.live_view
    view.tabs.setCurrentIndex(1)                               # the gate heatmaps
    view.slider.setValue(3)                                    # step 15: long evicted
    view.refresh(force=True)
    with open_session(window.live_session.path) as s:
        want = s.run("lstm").probe(3)
    shown = view.groups["gates"].maps[("lstm", "f")].image.image
    np.testing.assert_allclose(shown, want["gates"][1].T, atol=1e-3)
    assert "step 15" in view.probe_label.text()


def test_closing_while_training_returns_at_once_and_the_run_ends_stopped(window, qtbot):
    """The worker's thread quits straight from the worker (closing used to wait out the whole timeout)."""
    import time

    from sessions import open_session

    window.settings.set_config(tiny_config(steps=10 ** 6, probe_every=1000))
    assert window.start_training()
    qtbot.waitUntil(lambda: window.live_session is not None and window.live_session.run("lstm").steps > 20,
                    timeout=120_000)
    t0 = time.monotonic()
    assert window.wait_for_training(30_000)
    assert time.monotonic() - t0 < 5
    with open_session(window.live_session.path) as s:
        assert {r.status for r in s.runs} == {"stopped"} and s.checkpoint is not None


@pytest.mark.slow
def test_replay_screenshot_exits_cleanly_every_time(tmp_path):
    """Every tab's plots (the linked input strips too) are deleted before the interpreter's shutdown: left to
    it, about one exit in two ended in a segmentation fault after the PNG was written."""
    from tests.gui_fixtures import record_session, replay_screenshot

    path = record_session(tmp_path / "run.h5", steps=20, probe_every=10)
    for k in range(4):
        r = replay_screenshot([path], tmp_path / f"shot{k}.png")
        assert r.returncode == 0, (k, r.returncode, r.stderr[-500:])
