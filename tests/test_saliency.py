"""The input-saliency lens (issue 14): ‖∂ŷ/∂x_t‖ on the probe sequence, checked against finite differences,
recorded in the session file (format 1.3) with the probe sequence, drawn live and replayed, exported as CSV,
and absent (with a clear title, no error) in older files."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from explorer.config import TrainConfig
from explorer.training import ProbeRecord, Trainer
from tests.gui_fixtures import record_session


def _yhat(trainer, cell, x) -> float:
    """ŷ as Trainer.saliency defines it, by a forward pass alone (float64)."""
    model, task = trainer.models[cell], trainer.task
    p = model.state()
    h = model.probe(x).h[:, 0].astype(np.float64)
    total = 0.0
    for t in range(h.shape[0] - task.window, h.shape[0]):
        out = h[t] @ p["readout.weight"].T + p["readout.bias"]
        total += out[0 if task.loss_kind == "mse_last" else int(np.argmax(out))]
    return total


@pytest.mark.parametrize("task,T", [("adding", 8), ("temporal", 12), ("copy", 4)])   # mse, ce_last, ce_window
def test_saliency_is_the_gradient_of_the_readout_by_the_input(task, T):
    cfg = TrainConfig(task=task, seq_len=T, cells=("rnn", "lstm", "gru"), hidden=5, batch=4, steps=3,
                      dtype="float64", test_size=0)
    trainer = Trainer(cfg)
    for _ in trainer.run():
        pass
    x = trainer.probe_x.astype(np.float64)
    eps = 1e-6
    for cell in cfg.cells:
        got = trainer.saliency(cell)
        assert got.shape == (x.shape[0],) and got.dtype == np.float32
        want = np.empty(x.shape[0])
        for t in range(x.shape[0]):
            grad = []
            for i in range(x.shape[2]):
                up, down = x.copy(), x.copy()
                up[t, 0, i] += eps
                down[t, 0, i] -= eps
                grad.append((_yhat(trainer, cell, up) - _yhat(trainer, cell, down)) / (2 * eps))
            want[t] = np.linalg.norm(grad)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9, err_msg=f"{task} {cell}")


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("saliency") / "run.h5", steps=40, probe_every=10)


def test_recorded_with_the_probe_sequence_and_validated(session_file):
    from sessions import open_session, validate

    trainer = Trainer(TrainConfig(task="adding", seq_len=10, cells=("rnn", "lstm"), hidden=8, batch=8, steps=40,
                                  probe_every=10, lr=1e-2))
    probes = [r for r in trainer.run() if isinstance(r, ProbeRecord)]
    with open_session(session_file) as s:
        assert s.format_version >= "1.3.0"
        for run in s.runs:
            np.testing.assert_array_equal(run.probe_input, trainer.probe_x[:, 0])
            sal = run.probe_series("saliency")
            assert sal.shape == (5, 10) and np.all(np.isfinite(sal)) and np.all(sal >= 0)
            mine = [p.saliency for p in probes if p.cell == run.name]
            np.testing.assert_allclose(sal, np.stack(mine), rtol=1e-6)     # the same seed, the same numbers
            np.testing.assert_array_equal(run.probe(-1)["saliency"], sal[-1])
    assert validate(session_file) == []


def test_export_csv_has_t_the_inputs_then_one_column_per_cell(session_file, tmp_path):
    from explorer.cli import main
    from sessions import open_session

    out = tmp_path / "saliency.csv"
    assert main(["export", str(session_file), "--plot", "saliency", "-o", str(out)]) == 0
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["t", "x0", "x1", "rnn", "lstm"] and len(rows) == 11
    with open_session(session_file) as s:
        x = s.run("lstm").probe_input
        for t, row in enumerate(rows[1:]):
            assert int(row[0]) == t and float(row[1]) == pytest.approx(x[t, 0]) and float(row[2]) == x[t, 1]
            assert float(row[4]) == pytest.approx(s.run("lstm").probe_series("saliency")[-1][t])
    for name in ("saliency", "saliency-heatmap"):
        png = tmp_path / f"{name}.png"
        assert main(["export", str(session_file), "--plot", name, "-o", str(png)]) == 0 and png.stat().st_size > 5000


def test_the_window_draws_it_live_and_from_the_file(session_file, qtbot, window):
    from tests.gui_fixtures import tiny_config

    w = window
    (view,) = w.open_files([session_file])
    group = view.groups["saliency"]
    assert group.has_data and group.strip.image.image.shape == (2, 10)          # (channels, t) under the curves
    y = group.curves["lstm"].getData()[1]
    np.testing.assert_allclose(y, np.log10(view.session.run("lstm").probe_series("saliency")[-1]), rtol=1e-5)
    assert view.groups["saliency-heatmap"].maps["rnn"].image.image.shape == (5, 10)
    w.settings.set_config(tiny_config(steps=20, probe_every=10))
    assert w.start_training()
    qtbot.waitUntil(lambda: not w.training, timeout=120_000)
    live = w.live_view.groups["saliency"]
    w.live_view.refresh(force=True)
    assert live.has_data and live.curves["rnn"].getData()[1].shape == (10,)


def test_an_older_file_has_no_saliency_and_says_so(session_file, tmp_path, qtbot):
    from explorer.gui.export import render_plot
    from sessions import open_session
    from tests.sessions_support import older_copy

    old = older_copy(session_file, tmp_path / "old.h5", "1.2.0", ["probes/saliency", "probe_input"])
    with open_session(old) as s:
        run = s.run("lstm")
        assert run.probe_input is None and run.probe(-1)["saliency"] is None
        runs = s.runs
        probes = {r.name: r.probe(-1) for r in runs}
        group = render_plot("saliency", runs, probes)
        assert not group.has_data and "not recorded in this file" in group.plot.titleLabel.text
        group.close()
        heat = render_plot("saliency-heatmap", runs, probes)
        assert not heat.has_data
        heat.close()
