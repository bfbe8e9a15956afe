"""Training > Sweep… (issue 14): the dialog builds the sweep from the settings panel and refuses a bad one in
place; a sweep runs on the embedded Dask cluster while the window stays live, its tab opening and filling in
as runs finish; a stopped sweep keeps its finished runs and the same sweep again resumes the rest."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("distributed")


def _dialog(window, tmp_path):
    from explorer.gui.sweep_run import SweepDialog
    from tests.gui_fixtures import tiny_config

    window.settings.set_config(tiny_config(cells=("rnn", "lstm"), steps=15))
    dlg = SweepDialog(window.settings.config(), str(tmp_path), window)
    dlg.seq_lens.setText("5,7")
    dlg.seeds.setValue(1)
    dlg.out.setText(str(tmp_path / "sweep"))
    return dlg


def test_the_dialog_takes_the_panels_settings_and_refuses_bad_input_in_place(window, tmp_path):
    dlg = _dialog(window, tmp_path)
    plan = dlg.plan()
    assert plan.cells == ("rnn", "lstm") and plan.seq_lens == (5, 7) and plan.seeds == 1
    assert plan.base.hidden == window.settings.config().hidden and plan.base.steps == 15
    assert len(plan.specs()) == 4
    dlg.seq_lens.setText("5,x")
    dlg.accept()
    assert dlg.result() != dlg.DialogCode.Accepted and "lags T" in dlg.error.text()
    dlg.seq_lens.setText("5")
    for box in dlg.cells.values():
        box.setChecked(False)
    dlg.accept()
    assert "at least one cell" in dlg.error.text()
    dlg.close()


@pytest.mark.slow
def test_a_sweep_from_the_window_fills_its_tab_as_runs_finish_and_resumes_after_stop(window, qtbot, tmp_path):
    from sessions.sweep import read_sweep

    dlg = _dialog(window, tmp_path)
    plan = dlg.plan()
    dlg.close()
    sweeps = window.sweeps
    runner = sweeps.start(plan)
    seen = []
    runner.progress.connect(lambda done, failed, total: seen.append(done))
    qtbot.waitUntil(lambda: sweeps.view is not None, timeout=120_000)     # the tab opens once sweep.h5 exists
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] >= 1, timeout=120_000)
    assert len(sweeps.view.sweep.runs) >= 1                              # reloaded as runs finish
    sweeps.stop()                                                        # and Stop keeps what finished
    qtbot.waitUntil(lambda: not sweeps.running, timeout=120_000)
    kept = {r["session"] for r in read_sweep(runner.sweep_path).runs}
    on_disk = {p.name for p in (tmp_path / "sweep").glob("adding-*.h5")}
    assert kept and kept == on_disk                                      # every finished run listed, no .part left
    assert not list((tmp_path / "sweep").glob("*.part"))
    if len(kept) < 4:
        assert "sweep stopped" in window.statusBar().currentMessage()
    # the same sweep again trains only the rest; the tab is reloaded and shows all four
    ended = []
    runner = sweeps.start(plan)
    runner.ended.connect(ended.append)
    qtbot.waitUntil(lambda: bool(ended), timeout=180_000)
    assert ended[0].skipped == len(kept)
    sweep = read_sweep(runner.sweep_path)
    assert len(sweep.runs) == 4 and all(r["status"] == "completed" for r in sweep.runs)
    assert len(sweeps.view.sweep.runs) == 4
    assert "sweep finished: 4 of 4 runs" in window.statusBar().currentMessage()
    assert window.tabs.tabText(window.tabs.indexOf(sweeps.view)).startswith("sweep:")
    # a point of the live frontier opens its run, as in a saved sweep
    before = window.tabs.count()
    sweeps.view.frontier.point_clicked.emit(sweep.runs[0]["session_path"] if "session_path" in sweep.runs[0]
                                            else str(tmp_path / "sweep" / sweep.runs[0]["session"]))
    assert window.tabs.count() == before + 1
