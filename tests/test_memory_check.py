"""A configuration too large for this machine's memory is refused before it starts, with the estimate:
in `train`, in `sweep` (per run: one cell at one T) and in the window's settings panel."""
from __future__ import annotations

import os

import pytest

from explorer.errors import ConfigError
from explorer.config import TrainConfig

#: BPTT at T = 100,000, H = 4,096 keeps hundreds of GiB of states and gates: no machine here has that free
HUGE = ["--seq-len", "100000", "--hidden", "4096"]


def test_the_estimate_follows_the_cells_buffers():
    small = TrainConfig(cells=("lstm",), seq_len=1000, hidden=256, batch=32)
    # measured with `bench --memory --grid 1000x32x256`: peak 212 MiB of training; estimate within 1.5x
    assert 150 * 2**20 < small.memory_bytes() < 320 * 2**20
    both = TrainConfig(cells=("rnn", "lstm"), seq_len=1000, hidden=256, batch=32)
    assert both.memory_bytes() > small.memory_bytes()                      # every cell's buffers count
    assert TrainConfig(cells=("lstm",), seq_len=2000, hidden=256, batch=32).memory_bytes() \
        == pytest.approx(2 * small.memory_bytes(), rel=0.01)                 # linear in T
    assert TrainConfig(cells=("lstm",), seq_len=1000, hidden=256, batch=32, dtype="float64").memory_bytes() \
        == 2 * small.memory_bytes()


def test_check_says_what_it_needs_what_is_free_and_what_to_lower():
    cfg = TrainConfig()
    cfg.check_memory(available=2**40)
    with pytest.raises(ConfigError, match=r"needs about [\d.]+ GiB to train .* 0\.0 GiB free: lower --seq-len"):
        cfg.check_memory(available=10**6)


def test_train_refuses_before_it_starts(tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "huge.h5"
    assert main(["train", *HUGE, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "GiB to train" in err and "Traceback" not in err
    assert not os.path.exists(out) and not os.path.exists(f"{out}.part")


def test_sweep_checks_each_run_as_a_worker_trains_it(tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "sweep"
    assert main(["sweep", "--seq-lens", "10,100000", "--hidden", "4096", "--cells", "rnn,lstm", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "GiB to train (T=100000" in err and "cells rnn:" in err     # one cell per run, not the sum
    assert not out.exists() or not any(out.iterdir())


def test_the_window_shows_the_estimate_before_run(qtbot):
    pytest.importorskip("pytestqt")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from explorer.gui.settings import SettingsPanel

    panel = SettingsPanel(cuda_reason=None)
    qtbot.addWidget(panel)
    panel.seq_len.setValue(100_000)
    panel.hidden.setValue(4096)
    reason = panel.validate()
    assert reason and "GiB to train" in reason and "GiB to train" in panel.error.text()
    panel.seq_len.setValue(100)
    assert panel.validate() is None
