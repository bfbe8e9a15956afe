"""Faults in the window (issue 16), offscreen with pytest-qt: a diverging cell shows `diverged` while the
other cell goes on training."""
from __future__ import annotations

import pytest

from tests.gui_fixtures import tiny_config

pytest.importorskip("pytestqt")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_EXPLORER_DATA_DIR", str(tmp_path / "data"))
    from explorer.gui.window import MainWindow

    w = MainWindow(prewarm=False)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.wait_for_training()


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
    at_divergence = lstm().steps
    qtbot.waitUntil(lambda: not window.training, timeout=180_000)
    # the LSTM went on to the end; the RNN stopped where it diverged
    assert lstm().status == "completed" and lstm().steps == steps
    assert lstm().steps > at_divergence
    assert rnn().status == "diverged" and rnn().steps < steps
    # the window says so: the view's status line, the end-of-training line and one dialog with the reason
    view = window.live_view
    view.refresh(force=True)
    assert "RNN: diverged" in view.info_label.text()
    assert "LSTM: completed" in view.info_label.text()
    assert "diverged" in window.compile_label.text() and "completed" in window.compile_label.text()
    assert len(window.errors) == 1 and "lr" in window.errors[0], window.errors
    # the LSTM's plots kept being drawn; the recorded file agrees
    x, _ = view.groups["loss"].raw["lstm"].getData()
    assert len(x) == steps
    with open_session(window.live_session.path) as s:
        assert s.run("rnn").status == "diverged"
        assert s.run("lstm").status == "completed" and s.run("lstm").steps == steps
