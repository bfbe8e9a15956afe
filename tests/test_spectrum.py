"""The Jacobian-spectrum lens's numbers (kernels/spectrum.py): each cell's step Jacobian against finite
differences of its own forward kernel, the product's σ_max against an exact SVD, the weight σ_max and bounds,
and the behaviour the lens exists to show (a contracting RNN's product vanishes; an LSTM's cell state
carries its gradient as far as its forget gates say)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kernels import backend
from kernels.cells import get as get_cell
from kernels.spectrum import _top_singular, product_spectrum, vanishing_bounds, weight_labels, weight_sigmas

CELLS = [("rnn", {"activation": "tanh"}), ("rnn", {"activation": "relu"}), ("lstm", {}), ("gru", {})]


def _params(cell, n_in, H, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    shapes = get_cell(cell).param_shapes(n_in, H)
    return {k: (rng.standard_normal(s) * scale / math.sqrt(H)).astype(np.float64) for k, s in shapes.items()}


def _run(cell, params, x, options, state0=None):
    return backend("cpu").forward(cell, params, x, state0=state0, **options)


def _step_jacobian(cell, params, x, options, t):
    """∂s_t/∂s_{t-1} by central differences of one forward step from the states the run had at t-1."""
    spec = get_cell(cell)
    fwd = _run(cell, params, x, options)
    prev = {s: fwd.states[s][t - 1, :1].copy() for s in spec.states}
    H = prev["h"].shape[1]
    eps = 1e-6
    cols = []
    for s in spec.states:
        for j in range(H):
            outs = []
            for sign in (1, -1):
                p = {k: v.copy() for k, v in prev.items()}
                p[s][0, j] += sign * eps
                step = _run(cell, params, x[t:t + 1], options, state0=p)
                outs.append(np.concatenate([step.states[k][0, 0] for k in spec.states]))
            cols.append((outs[0] - outs[1]) / (2 * eps))
    return fwd, np.stack(cols, axis=1)


@pytest.mark.parametrize("cell,options", CELLS, ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
def test_each_cells_step_jacobian_is_the_derivative_of_its_forward_step(cell, options):
    spec = get_cell(cell)
    params = _params(cell, 3, 5, scale=2.0)
    x = np.random.default_rng(1).standard_normal((6, 1, 3))
    t = 4
    fwd, want = _step_jacobian(cell, params, x, options, t)
    got = spec.cpu_kernels().state_jacobian(
        params["weight_hh"], spec.check_options(options), {s: fwd.states[s][t - 1:t, 0] for s in spec.states},
        {s: fwd.states[s][t:t + 1, 0] for s in spec.states}, {a: v[t:t + 1, 0] for a, v in fwd.saved.items()})
    assert got.shape == (1,) + (len(spec.states) * 5,) * 2
    got = got[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cell,options", CELLS, ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
def test_the_products_top_singular_value_matches_an_exact_svd(cell, options):
    spec = get_cell(cell)
    H, L = 6, 12
    params = _params(cell, 2, H, seed=3, scale=1.5)
    x = np.random.default_rng(4).standard_normal((L, 1, 2))
    fwd = _run(cell, params, x, options)
    got = product_spectrum(cell, params["weight_hh"], fwd, options)
    assert got.shape == (L, len(spec.states))
    opts = spec.check_options(options)
    P = np.eye(len(spec.states) * H)
    assert np.all(got[-1] == 0.0)                    # ∂s_{L-1}/∂s_{L-1} is the identity
    for t in range(L - 2, -1, -1):
        P = P @ spec.cpu_kernels().state_jacobian(
            params["weight_hh"], opts, {s: fwd.states[s][t:t + 1, 0] for s in spec.states},
            {s: fwd.states[s][t + 1:t + 2, 0] for s in spec.states},
            {a: v[t + 1:t + 2, 0] for a, v in fwd.saved.items()})[0]
        for k in range(len(spec.states)):
            block = P[k * H:(k + 1) * H, k * H:(k + 1) * H]
            want = np.linalg.svd(block, compute_uv=False)[0]
            assert got[t, k] == pytest.approx(math.log10(want), abs=1e-6), (t, k)


def test_power_iteration_on_a_known_matrix():
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    V, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    s = np.linspace(3.0, 0.1, 30)
    v = rng.standard_normal(30)
    sigma = _top_singular(U @ np.diag(s) @ V.T, v)
    assert sigma == pytest.approx(3.0, rel=1e-9)
    assert abs(v @ V[:, 0]) == pytest.approx(1.0, rel=1e-6)
    # the top two 0.1% apart: 200 iterations do not settle (the residual shrinks by 0.998 a step) and an SVD
    # answers; 1e-10 apart: the iterate is any mix of the two, and its σ is right to 1e-10 either way
    for gap, rel in ((3e-3, 1e-12), (3e-10, 1e-9)):
        s[1] = 3.0 - gap
        assert _top_singular(U @ np.diag(s) @ V.T, rng.standard_normal(30)) == pytest.approx(3.0, rel=rel)


def test_weight_sigmas_and_the_vanishing_bounds():
    params = _params("lstm", 2, 4, seed=5)
    W = params["weight_hh"]
    got = weight_sigmas("lstm", W)
    want = [np.linalg.svd(W, compute_uv=False)[0]] + [np.linalg.svd(W[k * 4:(k + 1) * 4], compute_uv=False)[0]
                                                     for k in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert weight_labels("lstm") == ("W_hh", "W_hi", "W_hf", "W_hg", "W_ho")
    np.testing.assert_array_equal(vanishing_bounds("lstm")[1:], [4.0, 4.0, 1.0, 4.0])   # σ gates 4, tanh g 1
    assert math.isnan(vanishing_bounds("lstm")[0])
    assert weight_labels("rnn") == ("W_hh",) and vanishing_bounds("rnn").tolist() == [1.0]
    np.testing.assert_array_equal(vanishing_bounds("gru")[1:], [4.0, 4.0, 1.0])


def test_a_contracting_rnn_vanishes_over_a_thousand_steps_and_is_still_measured():
    # σ_max(W_hh) = 0.5 < 1 (Pascanu's bound): the product falls at least as fast as 0.5^(L-1-t)
    H, L = 8, 1000
    params = _params("rnn", 1, H, seed=6)
    U, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((H, H)))
    params["weight_hh"] = 0.5 * U
    fwd = _run("rnn", params, np.random.default_rng(8).standard_normal((L, 1, 1)), {})
    got = product_spectrum("rnn", params["weight_hh"], fwd)[:, 0]
    assert np.all(np.isfinite(got))
    distance = L - 1 - np.arange(L)
    assert np.all(got <= distance * math.log10(0.5) + 1e-9)
    assert got[0] < -300                           # far below float32, and float64 would underflow unscaled


def test_the_lstm_cell_state_keeps_its_gradient_as_its_forget_gates_say():
    # forget bias +5 (σ = 0.993): ∂c_{L-1}/∂c_t is near diag(∏ f), its σ_max near 1 over 100 steps, while
    # the h block, through σ'(o) and tanh', is far smaller
    H, L = 6, 100
    params = _params("lstm", 1, H, seed=9, scale=0.5)
    params["bias_hh"][H:2 * H] = 5.0
    fwd = _run("lstm", params, np.random.default_rng(10).standard_normal((L, 1, 1)), {})
    got = product_spectrum("lstm", params["weight_hh"], fwd)
    f = fwd.saved["gates"][:, 0, H:2 * H]
    assert got[0, 1] > np.log10(np.prod(f[1:], axis=0)).max() - 0.05 > -1.0
    assert got[0, 0] < got[0, 1] - 3


# -- the lens in the app: recorded, exported, drawn, absent from older files ------------------------------
@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    from tests.gui_fixtures import record_session

    return record_session(tmp_path_factory.mktemp("spectrum") / "run.h5", steps=40, probe_every=10)


def test_recorded_per_probe_as_the_trainer_computes_it(session_file):
    from explorer.config import TrainConfig
    from explorer.training import Trainer
    from sessions import open_session, validate
    from tests.gui_fixtures import tiny_config

    cfg = tiny_config(steps=40, probe_every=10)
    trainer = Trainer(TrainConfig(**{**cfg.to_dict(), "cells": tuple(cfg.cells)}))
    for _ in trainer.run():
        pass
    with open_session(session_file) as s:
        assert s.format_version >= "1.4.0"
        for run in s.runs:
            S = 2 if run.cell == "lstm" else 1
            spec = run.probe_series("spectrum")
            assert spec.shape == (5, run.length, S) and np.all(spec[:, -1] == 0)
            # the last probe is the trained model's: the same seed gives the same numbers
            np.testing.assert_allclose(spec[-1], trainer.spectrum(run.name), rtol=1e-5, atol=1e-5)
            sigma = run.probe_series("weight_sigma")
            assert sigma.shape == (5, 1 + run.n_gates)
            np.testing.assert_allclose(sigma[-1], weight_sigmas(run.cell, run.params["weight_hh_l0"]), rtol=1e-5)
            np.testing.assert_array_equal(run.weight_sigma_bounds, vanishing_bounds(run.cell))
            assert run.weight_sigma_names == weight_labels(run.cell)
    assert validate(session_file) == []


def test_exported_from_the_command_line(session_file, tmp_path):
    import csv

    from explorer.cli import main

    out = tmp_path / "spectrum.csv"
    assert main(["export", str(session_file), "--plot", "spectrum", "-o", str(out)]) == 0
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["t", "rnn_h", "lstm_h", "lstm_c"] and float(rows[-1][1]) == 0.0
    out = tmp_path / "weight-sigma.csv"
    assert main(["export", str(session_file), "--plot", "weight-sigma", "-o", str(out)]) == 0
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["run", "step", "block", "sigma_max", "bound"]
    assert [r[2] for r in rows[1:] if r[0] == "lstm" and r[1] == "10"] == ["W_hh", "W_hi", "W_hf", "W_hg", "W_ho"]
    assert [r[4] for r in rows[1:] if r[0] == "lstm" and r[1] == "10"] == ["", "4.0", "4.0", "1.0", "4.0"]
    for name in ("spectrum", "spectrum-heatmap", "weight-sigma"):
        png = tmp_path / f"{name}.png"
        assert main(["export", str(session_file), "--plot", name, "-o", str(png)]) == 0 and png.stat().st_size > 5000


def test_the_window_draws_it_from_the_file_and_an_older_file_says_it_has_none(session_file, tmp_path, qtbot,
                                                                             window):
    from tests.sessions_support import older_copy

    (view,) = window.open_files([session_file])
    group = view.groups["spectrum"]
    assert group.has_data and set(group.curves) == {"rnn", "lstm", "lstm:c"}
    want = view.session.run("lstm").probe_series("spectrum")[-1]
    np.testing.assert_allclose(group.curves["lstm:c"].getData()[1], want[:, 1], rtol=1e-6)
    assert view.groups["spectrum-heatmap"].maps["rnn"].image.image.shape == (5, 10)
    weights = view.groups["weight-sigma"]
    assert weights.has_data and len(weights.curves) == 1 + 5 and set(weights.bounds) == {1.0, 4.0}
    old = older_copy(session_file, tmp_path / "old.h5", "1.3.0", ["probes/spectrum", "probes/weight_sigma"])
    (view,) = window.open_files([old])
    assert not view.groups["spectrum"].has_data and not view.groups["weight-sigma"].has_data
    assert "not recorded in this file" in view.groups["spectrum"].plot.titleLabel.text
    assert view.session.run("lstm").weight_sigma_bounds is None


def test_spectra_are_spaced_out_only_where_they_would_slow_training(tmp_path):
    from explorer.config import TrainConfig
    from explorer.training import ProbeRecord, Trainer
    from kernels.spectrum import spectrum_interval

    assert spectrum_interval("lstm", 64, 2, 32, 50) == 1                  # the default window run: every probe
    assert spectrum_interval("lstm", 8, 2, 8, 1) == 1                     # a small state: every probe
    k = spectrum_interval("lstm", 256, 2, 8, 1)                           # H = 256, B = 8, every step
    assert k > 100
    cfg = TrainConfig(task="adding", seq_len=5, cells=("lstm",), hidden=40, batch=32, steps=32, probe_every=4,
                      test_size=0)
    k = spectrum_interval("lstm", 40, 2, 32, 4)
    assert k == 4
    probes = [r for r in Trainer(cfg).run() if isinstance(r, ProbeRecord)]
    taken = [p.step for p in probes if p.spectrum is not None]
    assert taken == [1, 16, 32]                                           # the first probe, then every 4th
    assert all(p.weight_sigma is not None for p in probes)                 # cheap: at every probe
