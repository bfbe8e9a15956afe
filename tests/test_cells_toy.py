"""The cell registry is open: a fourth cell, defined here in plain NumPy (one forward and one backward
step), is registered from this file alone and runs through the public kernels API -- forward, backward,
make_model(...).step / probe, init_params with a bias init, warm_up -- with no kernels module edited."""
import numpy as np
import pytest

import kernels
from kernels import cells
from kernels.errors import KernelInputError
from kernels.params import init_params


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def toy_forward_step(layer, x_t, prev):
    """A minimal gated cell: f = σ(a_f), u = tanh(a_u), h' = f ⊙ h + (1 - f) ⊙ u, a = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh."""
    h = prev["h"]
    H = h.shape[1]
    a = x_t @ layer.W_ih.T + layer.b_ih + h @ layer.W_hh.T + layer.b_hh   # (n, 2H)
    f, u = _sigmoid(a[:, :H]), np.tanh(a[:, H:])                          # keep gate, candidate
    return {"h": f * h + (1 - f) * u}, {"gates": np.concatenate([f, u], axis=1)}


def toy_backward_step(layer, x_t, prev, new, saved, dnew):
    h, dh = prev["h"], dnew["h"]
    H = h.shape[1]
    f, u = saved["gates"][:, :H], saved["gates"][:, H:]
    da = np.concatenate([dh * (h - u) * f * (1 - f), dh * (1 - f) * (1 - u * u)], axis=1)  # ∂L/∂a
    db = da.sum(0)
    return ({"h": dh * f + da @ layer.W_hh}, da.T @ x_t, da.T @ h, db, db.copy(), da @ layer.W_ih)


TOY = cells.CellSpec(
    name="toy", label="Toy gated", color="#9467bd", blocks=2, gates=("f", "u"), gate_labels=("keep", "candidate"),
    probes=("h", "gates"), memory_gate="f", equation="h' = f ⊙ h + (1 - f) ⊙ u",
    cpu=cells.numpy_cpu_kernels(toy_forward_step, toy_backward_step))


@pytest.fixture(autouse=True)
def toy_cell():
    cells.register(TOY)
    yield TOY
    cells.unregister("toy")


be = kernels.backend("cpu")


def test_the_toy_cell_is_listed_with_its_gates_colour_and_shapes():
    from kernels import params

    assert "toy" in params.CELLS and cells.names()[:3] == ("rnn", "lstm", "gru")
    spec = cells.get("toy")
    assert (spec.label, spec.color, spec.gates, spec.states, spec.n_gates) == ("Toy gated", "#9467bd", ("f", "u"),
                                                                               ("h",), 2)
    assert params.param_shapes("toy", 3, 4, 1)["weight_hh"] == (8, 4)
    with pytest.raises(KernelInputError, match="already registered"):
        cells.register(TOY)


def test_gradients_match_finite_differences():
    T, B, I, H = 5, 2, 3, 4
    rng = np.random.default_rng(0)
    p = {k: v for k, v in init_params("toy", I, H, 1, rng, np.float64).items() if not k.startswith("readout")}
    x, w, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    fwd = be.forward("toy", p, x, h0=h0)
    grads = be.backward("toy", p, x, fwd, w)
    eps = 1e-6

    def loss():
        return float(np.sum(be.forward("toy", p, x, h0=h0).h * w))

    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "x"):
        target = x if name == "x" else p[name]
        numeric = np.zeros_like(target)
        for idx in np.ndindex(target.shape):
            old = target[idx]
            target[idx] = old + eps
            up = loss()
            target[idx] = old - eps
            down = loss()
            target[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=name)
    assert grads.h0.shape == (B, H) and grads.dh_norm.shape == (T,)


def test_trains_through_make_model_step_and_probe():
    T, B, I, H = 6, 8, 2, 5
    rng = np.random.default_rng(1)
    params = init_params("toy", I, H, 1, rng, np.float32, init="forget-bias:2")
    np.testing.assert_array_equal((params["bias_ih"] + params["bias_hh"])[:H], 2.0)  # the keep gate f
    model = be.make_model("toy", params, loss_kind="mse_last", lr=0.02)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y = x[0, :, 0]                                   # remember the first input
    losses = [model.step(x, y).loss for _ in range(60)]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
    assert model.param_count == sum(v.size for v in params.values())
    fwd = model.probe(x[:, :1])
    assert fwd.h.shape == (T, 1, H) and fwd.gates.shape == (T, 1, 2 * H) and fwd.c is None
    assert 0 <= fwd.gate("f").min() and fwd.gate("f").max() <= 1
    assert fwd.gate_blocks().shape == (2, T, 1, H)


def test_a_split_batch_gives_the_whole_batch_gradients():
    """Big enough for the CPU backend to split the batch over threads: the NumPy driver runs per chunk."""
    from kernels.readout import readout_loss

    T, B, I, H = 4, 64, 2, 32
    rng = np.random.default_rng(2)
    p = init_params("toy", I, H, 1, rng, np.float64)
    x, y = rng.standard_normal((T, B, I)), rng.standard_normal(B)
    model = be.make_model("toy", p, loss_kind="mse_last", optimizer="sgd", lr=1.0, momentum=0.0, clip=0.0)
    stats = model.step(x, y)
    got = {k: p[k] - v for k, v in model.state().items()}
    layer = {k: v for k, v in p.items() if not k.startswith("readout")}
    fwd = be.forward("toy", layer, x)
    dh, dW, db = np.zeros((T, B, H)), np.empty((1, H)), np.empty(1)
    loss, _ = readout_loss("mse_last", fwd.h, p["readout.weight"], p["readout.bias"], y, 1, dh, dW, db)
    want = be.backward("toy", layer, x, fwd, dh)
    assert stats.loss == pytest.approx(loss, rel=1e-12)
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_warm_up_and_missing_cuda_kernels():
    info = be.warm_up(cells=("toy",))
    assert set(info) == {"seconds", "compiled", "cached"}
    with pytest.raises(KernelInputError, match="the toy cell has no CUDA kernels"):
        cells.get("toy").cuda_kernels()


def test_the_app_trains_records_replays_and_plots_the_toy_cell(tmp_path, qapp):
    """Through the application's public paths, with nothing edited outside this file: the Trainer trains it
    beside the RNN, the session file records it (its gate names and init), the reader replays it, and
    every plot exports it (its gate heatmaps and saturation by its own gate names, its own colour)."""
    import csv
    import os

    from explorer.gui.export import export_file
    from explorer.gui.plots import cell_color
    from explorer.recording import SessionRecorder
    from explorer.config import TrainConfig
    from explorer.training import Trainer
    from sessions import open_session

    config = TrainConfig(task="adding", seq_len=6, cells=("rnn", "toy"), hidden=4, batch=4, steps=12,
                         probe_every=4, init="forget-bias:2")
    trainer = Trainer(config)
    path = tmp_path / "toy.h5"
    recorder = SessionRecorder(path, config, trainer.runs)
    for record in trainer.run():
        recorder.record(record)
    recorder.finish({c: trainer.state_dict(c) for c in config.cells})
    with open_session(path) as s:
        run = s.run("toy")
        assert (run.status, run.steps, run.gate_names, run.init) == ("completed", 12, ("f", "u"), "default+forget-bias:2")
        assert run.probe_series("gates").shape == (4, 2, 6, 4) and not run.has_cell_state
        assert run.probe_series("saturation").shape == (4, 2)
    written = export_file(str(path), None, None, str(tmp_path / "figures"))
    assert len(written) >= 3 * 7 and all(os.path.getsize(p) for p in written)
    rows = list(csv.reader(open(tmp_path / "figures" / "gates.csv")))
    assert {(r[0], r[1]) for r in rows[1:]} == {("toy", "f"), ("toy", "u"), ("rnn", "h")}
    rows = list(csv.reader(open(tmp_path / "figures" / "saturation.csv")))
    assert {r[2] for r in rows[1:] if r[0] == "toy"} == {"f", "u"}
    assert cell_color("toy") == "#9467bd"
