"""The window and session files: File > Open recent, and following a file that is still being written."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.gui_fixtures import record_session

pytest.importorskip("pytestqt")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("recent") / "tiny.h5", steps=20, probe_every=10)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("LSTM_EXPLORER_DATA_DIR", str(d))
    return d


@pytest.fixture
def make_window(qtbot, data_dir):
    from explorer.gui.window import MainWindow

    made = []

    def make():
        w = MainWindow(check_cuda=False)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.wait_for_training()


def _recent_entries(window) -> list[str]:
    """What File > Open recent lists, as the user sees it when opening the menu."""
    window.recent_menu.aboutToShow.emit()
    return [a.text() for a in window.recent_menu.actions() if a.isEnabled()]


def _trigger_recent(window, path: str) -> None:
    window.recent_menu.aboutToShow.emit()
    (action,) = [a for a in window.recent_menu.actions() if a.text() == path]
    action.trigger()


# -- File > Open recent ---------------------------------------------------------------------------

def test_an_opened_file_is_listed_newest_first_without_duplicates(make_window, session_file, tmp_path):
    w = make_window()
    assert _recent_entries(w) == []
    other = str(tmp_path / "other.h5")
    shutil.copy(session_file, other)
    w.open_files([session_file])
    w.open_files([other])
    assert _recent_entries(w) == [os.path.abspath(other), os.path.abspath(session_file)]
    w.open_files([session_file])                # reopening moves it to the top, once
    assert _recent_entries(w) == [os.path.abspath(session_file), os.path.abspath(other)]


def test_the_list_is_capped(make_window, session_file, tmp_path):
    from explorer.gui.window import MAX_RECENT

    w = make_window()
    copies = []
    for k in range(MAX_RECENT + 2):
        p = str(tmp_path / f"copy{k}.h5")
        shutil.copy(session_file, p)
        copies.append(p)
    w.open_files(copies)
    assert _recent_entries(w) == [os.path.abspath(p) for p in reversed(copies)][:MAX_RECENT]


def test_the_list_survives_a_new_window_through_the_settings_file(make_window, session_file, data_dir):
    first = make_window()
    first.open_files([session_file])
    first.close()
    ini = data_dir / "lstm-explorer.ini"
    assert ini.exists() and os.path.abspath(session_file) in ini.read_text()
    second = make_window()
    assert _recent_entries(second) == [os.path.abspath(session_file)]
    _trigger_recent(second, os.path.abspath(session_file))
    (view,) = second.views()
    assert os.path.abspath(view.session.path) == os.path.abspath(session_file)
    assert view.groups["loss"].has_data and not second.errors


def test_a_missing_file_is_reported_and_dropped(make_window, session_file, tmp_path):
    w = make_window()
    gone = str(tmp_path / "gone.h5")
    shutil.copy(session_file, gone)
    w.open_files([gone, session_file])
    w.close_tab(w.tabs.indexOf(w.views()[0]))
    os.remove(gone)
    assert os.path.abspath(gone) in _recent_entries(w)
    _trigger_recent(w, os.path.abspath(gone))
    assert len(w.errors) == 1 and gone in w.errors[0] and "no such file" in w.errors[0]
    assert w.last_error_box is not None and w.last_error_box.isVisible()
    assert [v.session.path for v in w.views()] == [session_file]      # no tab for the missing file
    assert _recent_entries(w) == [os.path.abspath(session_file)]
    assert w.recent_files() == [os.path.abspath(session_file)]          # dropped from the settings too
    w.last_error_box.close()
    assert w.isVisible()


# -- following a file that is still being written -------------------------------------------------

WRITER = textwrap.dedent("""
    # A training process stand-in: SessionRecorder writes steps (and probes every 10) of two cells,
    # flushing every 0.1 s, until the file STOP appears; then it completes the runs and closes.
    import os, sys, time
    import numpy as np
    from explorer.recording import SessionRecorder
    from explorer.config import TrainConfig
    from explorer.training import PARAM_GRAD_NAMES, ProbeRecord, RunInfo, StatusRecord, StepRecord

    path, stop = sys.argv[1], sys.argv[2]
    L, H = 6, 3
    cfg = TrainConfig(task="adding", seq_len=L, cells=("rnn", "lstm"), hidden=H, batch=2, steps=100000,
                      probe_every=10)
    def shapes(g):
        return {"weight_ih_l0": (g * H, 2), "weight_hh_l0": (g * H, H), "bias_ih_l0": (g * H,),
                "bias_hh_l0": (g * H,), "readout.weight": (1, H), "readout.bias": (1,)}
    runs = [RunInfo(cell=c, param_count=10, param_shapes=shapes(4 if c == "lstm" else 1), length=L, hidden=H,
                    n_gates=4 if c == "lstm" else 0, metric_name="mse", higher_is_better=False,
                    baseline_loss=0.1667, baseline_metric=0.1667) for c in cfg.cells]
    rec = SessionRecorder(path, cfg, runs, flush_interval_s=0.1)
    rng = np.random.default_rng(0)
    for c in cfg.cells:
        rec.record(StatusRecord(c, "running", 0))
    step, t0 = 0, time.perf_counter()
    while not os.path.exists(stop):
        step += 1
        for c in cfg.cells:
            rec.record(StepRecord(c, step, 1.0 / step, 1.0 / step, 1.0, {p: 1.0 for p in PARAM_GRAD_NAMES},
                                  time.perf_counter() - t0))
            if step % 10 == 0:
                lstm = c == "lstm"
                rec.record(ProbeRecord(c, step, rng.uniform(0, 1, L).astype(np.float32),
                                       rng.uniform(-1, 1, (L, H)).astype(np.float32),
                                       rng.uniform(0, 1, (4, L, H)).astype(np.float32) if lstm else None,
                                       rng.normal(0, 1, (L, H)).astype(np.float32) if lstm else None,
                                       rng.uniform(0, 1, 4).astype(np.float32) if lstm else None))
        if step == 20:
            rec.writer.flush()
            print("ready", flush=True)
        time.sleep(0.01)
    for c in cfg.cells:
        rec.record(StatusRecord(c, "completed", step))
    rec.close()
    print(step, flush=True)
""")


def _loss_points(view, cell: str) -> int:
    x, _ = view.groups["loss"].raw[cell].getData()
    return 0 if x is None else len(x)


def test_a_file_being_written_is_followed_until_its_writer_finishes(make_window, qtbot, tmp_path):
    path, stop = str(tmp_path / "live.h5"), str(tmp_path / "STOP")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, path, stop], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        w = make_window()
        (view,) = w.open_files([path])
        assert not w.errors, w.errors
        i = w.tabs.indexOf(view)
        assert view.follow_file and w.tabs.tabText(i) == "live.h5 (live)"
        assert view.session.run("lstm").status == "running"
        # new steps appear in the plots as the writer flushes them
        first = _loss_points(view, "lstm")
        assert first >= 20
        qtbot.waitUntil(lambda: _loss_points(view, "lstm") >= first + 30, timeout=15_000)
        qtbot.waitUntil(lambda: view.reference_steps().shape[0] >= first // 10 + 3, timeout=15_000)
        assert view.follow_file and "(live)" in w.tabs.tabText(i)
        # the writer finishes: the tab stops following and shows every step it wrote
        open(stop, "w").close()
        out, err = writer.communicate(timeout=30)
        assert writer.returncode == 0, err
        total = int(out.split()[-1])
        qtbot.waitUntil(lambda: not view.follow_file, timeout=10_000)
        assert w.tabs.tabText(i) == "live.h5"
        qtbot.waitUntil(lambda: _loss_points(view, "lstm") == total, timeout=5_000)
        assert view.session.run("lstm").status == "completed"
        assert "completed" in view.info_label.toolTip()
        assert not w.errors, w.errors
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
