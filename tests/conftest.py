"""Shared test set-up: headless Qt, and a per-session numba cache so CI reuses compiled kernels."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """The real main window, shown offscreen, with its data folder (settings, sessions) in ``tmp_path``;
    any training it started is waited for at the end."""
    monkeypatch.setenv("LSTM_EXPLORER_DATA_DIR", str(tmp_path / "data"))
    from explorer.gui.window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    yield w
    w.wait_for_training()
