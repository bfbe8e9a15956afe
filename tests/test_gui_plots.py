"""What the plots show a newcomer: where each cell solved its task, error metrics on a log axis, the
per-parameter gradient norms smoothed like the loss."""
from __future__ import annotations

import numpy as np
import pytest

from tests.gui_fixtures import record_session, tiny_config

pytest.importorskip("pytestqt")

#: both cells solve temporal-hs97 at T = 12 within a few hundred steps (tests/test_until_solved.py)
SOLVES = dict(task="temporal-hs97", seq_len=12, steps=600, probe_every=100, until_solved=True, test_size=32, seed=0)


@pytest.fixture(scope="module")
def solved_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("solved") / "solved.h5", **SOLVES)


@pytest.fixture(scope="module")
def adding_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("adding") / "adding.h5", steps=60, probe_every=20)


def _solved_labels(view) -> dict[str, tuple[float, str]]:
    lines = view.groups["loss"]._solved_lines
    return {name: (line.value(), line.label.toPlainText()) for name, line in lines.items()}


def test_the_loss_plot_marks_where_each_cell_solved(window, solved_file):
    from explorer.console import compact
    from sessions import open_session

    (view,) = window.open_files([solved_file])
    marks = _solved_labels(view)
    with open_session(solved_file) as s:
        for run in s.runs:
            at = run.solved_at
            assert at is not None, f"{run.name} did not solve the tiny task"
            pos, text = marks[run.name]
            assert pos == at["step"]
            assert f"solved at step {at['step']:,} ({compact(at['sequences'])} seq.)" in text


def test_a_live_run_marks_the_step_it_solved(window, qtbot):
    window.settings.set_config(tiny_config(**SOLVES))
    assert window.start_training()
    qtbot.waitUntil(lambda: not window.training, timeout=180_000)
    assert not window.errors, window.errors
    view = window.live_view
    qtbot.waitUntil(lambda: len(view.groups["loss"]._solved_lines) == 2, timeout=5000)
    for name, (pos, text) in _solved_labels(view).items():
        run = window.live_session.run(name)
        assert run.solved_at is not None and pos == run.solved_at["step"] == run.steps   # it stopped there
        assert f"solved at step {run.steps:,}" in text


def test_error_metrics_open_on_a_log_axis_and_accuracies_on_a_linear_one(window, adding_file, solved_file):
    adding, temporal = window.open_files([adding_file, solved_file])
    assert adding.log_box.isChecked() and adding.groups["loss"].plot.ctrl.logYCheck.isChecked()
    assert not temporal.log_box.isChecked() and not temporal.groups["loss"].plot.ctrl.logYCheck.isChecked()
    adding.log_box.setChecked(False)                   # the box still switches it
    assert not adding.groups["loss"].plot.ctrl.logYCheck.isChecked()


def test_parameter_gradient_norms_are_smoothed_by_the_slider(window, adding_file):
    (view,) = window.open_files([adding_file])
    group = view.groups["param-grads"]
    raw = group.raw[("lstm", "weight_hh")].getData()[1]
    smooth = group.smooth[("lstm", "weight_hh")].getData()[1]
    assert raw.shape == smooth.shape == (60,)
    assert np.std(np.diff(smooth)) < 0.5 * np.std(np.diff(raw))       # the bold curve is the calm one
    view.smooth_slider.setValue(0)                                     # 0 = raw
    np.testing.assert_allclose(group.smooth[("lstm", "weight_hh")].getData()[1], raw, rtol=1e-6)


def test_a_long_run_draws_its_envelope_and_exports_every_step(window, tmp_path, monkeypatch):
    """Past DISPLAY_POINTS steps the loss curve draws each bucket's min and max (the first and the
    lowest loss stay visible; a million-step file opens in seconds); the CSV still holds every step
    (the LSTM's loss in write_session is 2 / step)."""
    import csv

    from explorer.gui.plots import base
    from tests.sessions_support import write_session

    monkeypatch.setattr(base, "DISPLAY_POINTS", 100)
    path = tmp_path / "long.h5"
    write_session(path, steps=1000, probe_every=500)
    (view,) = window.open_files([path])
    loss = view.groups["loss"]
    step, value = loss.raw["lstm"].getData()
    assert len(step) <= 100
    assert view.log_box.isChecked()                                  # an MSE loss: drawn as log10
    assert value.max() == pytest.approx(np.log10(2.0)) and value.min() == pytest.approx(np.log10(2.0 / 1000))
    window.export_plot(view, "loss", "csv", str(tmp_path / "loss.csv"))
    with open(tmp_path / "loss.csv") as f:
        assert len(list(csv.reader(f))) == 1 + 1000


def test_the_metric_axis_reads_in_the_metrics_own_units_with_the_legend_clear_of_the_curves(window, adding_file,
                                                                                          solved_file):
    adding, temporal = window.open_files([adding_file, solved_file])
    metric = temporal.groups["metric"]
    axis = metric.plot.getAxis("left")
    metric.plot.setYRange(0.0, 0.8, padding=0)          # accuracies: ticks 0.2, 0.4 ..., not 200, 400 (x0.001)
    assert axis.autoSIPrefixScale == 1.0 and "x0.001" not in axis.labelString()
    assert "accuracy" in axis.labelString()
    assert metric.legend.opts["offset"][1] < 0                   # a rising metric: the legend sits at the bottom
    assert adding.groups["metric"].legend.opts["offset"][1] > 0  # a falling one (MSE): at the top


def test_the_input_strip_labels_only_the_channels_it_has_room_for(window, adding_file, tmp_path):
    copy_file = record_session(tmp_path / "copy.h5", task="copy", seq_len=3, steps=4, test_size=0)
    adding, copy = window.open_files([adding_file, copy_file])

    def labels(view):
        return [text for _, text in view.groups["grad-flow"].strip.plot.getAxis("left")._tickLevels[0]]

    assert labels(adding) == ["x0", "x1"]          # the adding problem's value and marker, each named
    assert labels(copy) == ["x0", "x9"]            # ten channels: the first and the last, not ten stacked labels
