"""Seeds as bands (issue 14): sessions of one configuration, different seeds, as the median curve and the
min–max band per cell, Qt-free and in the window (File > Open seeds as bands…, replay --bands)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from tests.gui_fixtures import record_session


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    return [record_session(folder / f"s{k}.h5", steps=40, probe_every=20, seed=k) for k in range(3)]


def test_the_band_is_the_median_and_range_over_the_seeds_at_every_step(seeds):
    from explorer.bands import band, check_same_configuration
    from sessions import open_session

    sessions = [open_session(p) for p in seeds]
    try:
        assert check_same_configuration(sessions)["seq_len"] == 10
        runs = [s.run("lstm") for s in sessions]
        b = band("lstm", runs, "loss")
        losses = np.stack([r.scalar("loss")[2] for r in runs])
        np.testing.assert_array_equal(b.step, np.arange(1, 41))
        np.testing.assert_allclose(b.median, np.median(losses, axis=0))
        np.testing.assert_allclose(b.lo, losses.min(axis=0))
        np.testing.assert_allclose(b.hi, losses.max(axis=0))
        assert list(b.n) == [3] * 40 and b.seeds == [0, 1, 2]
    finally:
        for s in sessions:
            s.close()


def test_runs_that_stop_at_different_steps_count_the_seeds_left(tmp_path):
    from explorer.bands import band
    from sessions import open_session

    short = record_session(tmp_path / "short.h5", steps=20, probe_every=10, seed=1)
    long = record_session(tmp_path / "long.h5", steps=40, probe_every=10, seed=2)
    with open_session(short) as a, open_session(long) as b:
        got = band("rnn", [a.run("rnn"), b.run("rnn")], "metric")
        assert got.step[-1] == 40 and list(got.n[:20]) == [2] * 20 and list(got.n[20:]) == [1] * 20
        np.testing.assert_allclose(got.median[20:], b.run("rnn").scalar("metric")[2][20:])


def test_a_configuration_that_differs_in_more_than_the_seed_is_refused(seeds, tmp_path):
    from explorer.bands import check_same_configuration
    from explorer.errors import ConfigError
    from sessions import open_session

    other = record_session(tmp_path / "other.h5", steps=40, probe_every=20, lr=1e-3)
    sessions = [open_session(seeds[0]), open_session(other)]
    try:
        with pytest.raises(ConfigError, match=r"differ only in the seed: .*other.h5 has lr=0.001, .*s0.h5 has lr=0.01"):
            check_same_configuration(sessions)
    finally:
        for s in sessions:
            s.close()


def test_the_window_opens_seeds_as_bands_and_exports_them(window, seeds, tmp_path):
    view = window.open_seed_bands(seeds)
    assert view is not None and window.tabs.tabText(window.tabs.currentIndex()) == "seeds: adding T=10 (3)"
    group = view.groups["bands"]
    assert view.log_box.isChecked()                                      # an MSE task opens on a log axis
    view.log_box.setChecked(False)                                       # (getData() would give log10 values)
    assert group.has_data and set(group.bands) == {(c, s) for c in ("rnn", "lstm") for s in ("loss", "metric")}
    median = group.items[("lstm", "loss")][0].getData()[1]
    np.testing.assert_allclose(median, group.bands[("lstm", "loss")].median)
    view.smooth_slider.setValue(0)                                       # raw: the median of the raw losses
    np.testing.assert_allclose(group.items[("lstm", "loss")][0].getData()[1],
                               np.median(np.stack([r.scalar("loss")[2] for r in view.runs if r.cell == "lstm"]), 0))
    out = window.export_plot(view, "bands", "csv", str(tmp_path / "bands.csv"))
    rows = list(csv.reader(open(out)))
    assert rows[0][:5] == ["step", "rnn_loss_median", "rnn_loss_min", "rnn_loss_max", "rnn_loss_n"]
    assert len(rows) == 41 and rows[1][4] == "3"
    png = window.export_plot(view, "bands", "png", str(tmp_path / "bands.png"))
    assert png and (tmp_path / "bands.png").stat().st_size > 5000
    n_tabs = window.tabs.count()
    window.close_tab(window.tabs.indexOf(view))
    assert window.tabs.count() == n_tabs - 1
    # one file, or files of different configurations: a dialog naming the problem
    assert window.open_seed_bands(seeds[:1]) is None and "two or more" in window.errors[-1]


def test_replay_bands_draws_the_window(seeds, tmp_path):
    from tests.gui_fixtures import replay_screenshot

    shot = tmp_path / "bands.png"
    done = replay_screenshot([*seeds, "--bands"], shot)
    assert done.returncode == 0 and shot.stat().st_size > 10_000 and "error" not in done.stderr, done.stderr
