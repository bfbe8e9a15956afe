"""CPU kernels against the float64 NumPy reference, finite differences and PyTorch: every built-in cell
(RNN tanh and ReLU, LSTM, GRU). More GRU-specific checks: tests/test_gru.py."""
import numpy as np
import pytest

import kernels
from kernels.config import PARALLEL_MIN_MACS
from kernels.errors import BackendUnavailable, KernelInputError
from kernels.params import init_params
from tests import reference as ref

be = kernels.backend("cpu")

# (T, B, I, H): includes B = 1, T = 1, H = 1
SHAPES = [(1, 1, 1, 1), (5, 1, 3, 4), (7, 3, 2, 5), (1, 4, 3, 2), (12, 2, 4, 1), (9, 5, 1, 17)]


#: (cell, options): every built-in cell and the RNN's ReLU
CELLS = [("rnn", {}), ("rnn", {"activation": "relu"}), ("lstm", {}), ("gru", {})]
CELL_IDS = ["rnn", "rnn-relu", "lstm", "gru"]


def _problem(cell, T, B, I, H, dtype, seed=0, with_state=True):
    rng = np.random.default_rng(seed)
    p = {k: v.astype(dtype) for k, v in init_params(cell, I, H, 1, rng, np.float64).items()
         if not k.startswith("readout")}
    x = rng.standard_normal((T, B, I)).astype(dtype)
    dh = rng.standard_normal((T, B, H)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) * 0.5 if with_state else None
    c0 = rng.standard_normal((B, H)).astype(dtype) * 0.5 if with_state and cell == "lstm" else None
    return p, x, dh, h0, c0


def reference_run(cell, p, x, dh, h0=None, c0=None, activation="tanh"):
    """The float64 reference: ``(forward arrays by name, gradients, dh_norm)``."""
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    x64, dh64 = x.astype(np.float64), dh.astype(np.float64)
    h0_64 = None if h0 is None else h0.astype(np.float64)
    c0_64 = None if c0 is None else c0.astype(np.float64)
    if cell == "rnn":
        h = ref.rnn_forward(p64, x64, h0_64, activation)
        grads, dh_norm = ref.rnn_backward(p64, x64, h, dh64, h0_64, activation)
        return dict(h=h), grads, dh_norm
    if cell == "gru":
        h, gates, hn = ref.gru_forward(p64, x64, h0_64)
        grads, dh_norm = ref.gru_backward(p64, x64, h, gates, hn, dh64, h0_64)
        return dict(h=h, gates=gates), grads, dh_norm
    h, c, gates = ref.lstm_forward(p64, x64, h0_64, c0_64)
    grads, dh_norm = ref.lstm_backward(p64, x64, h, c, gates, dh64, h0_64, c0_64)
    return dict(h=h, c=c, gates=gates), grads, dh_norm


_reference = reference_run


def _rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-3)


@pytest.mark.parametrize("cell,options", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_forward_and_backward_match_reference(cell, options, shape, dtype, tol):
    p, x, dh, h0, c0 = _problem(cell, *shape, dtype)
    fwd = be.forward(cell, p, x, h0=h0, c0=c0, **options)
    want_fwd, want_grads, want_norm = _reference(cell, p, x, dh, h0, c0, **options)
    assert fwd.h.dtype == dtype and fwd.h.shape == (shape[0], shape[1], shape[3])
    for name, want in want_fwd.items():
        assert _rel_err(getattr(fwd, name), want) < tol, name
    grads = be.backward(cell, p, x, fwd, dh)
    assert set(grads) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "x"}
    for name, want in want_grads.items():
        assert grads[name].shape == want.shape
        assert _rel_err(grads[name], want) < tol, name
    assert _rel_err(grads.dh_norm, want_norm) < tol
    if cell == "gru":  # b_hn sits inside r ⊙ (W_hn h + b_hn): the two bias gradients differ on the n rows
        H = shape[3]
        assert not np.allclose(grads["bias_ih"][2 * H:], grads["bias_hh"][2 * H:])


@pytest.mark.parametrize("cell,options", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("packed", [False, True], ids=["weights-as-they-are", "packed-weights"])
def test_float32_products_on_packed_weights_match_reference(cell, options, packed):
    """H a multiple of 16 in float32: the recurrent products run on packed weights when the tuning chose
    them (kernels/packed.py); both ways against the float64 reference, forward, backward and a training
    step split over threads."""
    from kernels import cpu
    from kernels.blas import set_strategy, strategy

    was = strategy()
    set_strategy(was[0], was[1], packed, packed)
    try:
        for shape in ((6, 7, 3, 16), (3, 9, 2, 48)):
            p, x, dh, h0, c0 = _problem(cell, *shape, np.float32)
            layer = cpu._layer(p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], options)
            assert (layer.W_hhT.ndim, layer.W_hh_bwd.ndim) == ((3, 3) if packed else (2, 2))
            fwd = be.forward(cell, p, x, h0=h0, c0=c0, **options)
            want_fwd, want_grads, want_norm = _reference(cell, p, x, dh, h0, c0, **options)
            for name, want in want_fwd.items():
                assert _rel_err(getattr(fwd, name), want) < 1e-5, name
            grads = be.backward(cell, p, x, fwd, dh)
            for name, want in want_grads.items():
                assert _rel_err(grads[name], want) < 1e-5, name
        rng = np.random.default_rng(5)
        T, B, I, H = 8, 64, 2, 32
        p = init_params(cell, I, H, 1, rng, np.float32)
        x, y = rng.standard_normal((T, B, I)).astype(np.float32), rng.standard_normal(B).astype(np.float32)
        model = be.make_model(cell, p, loss_kind="mse_last", optimizer="sgd", lr=1.0, momentum=0.0, clip=0.0,
                              **options)
        stats = model.step(x, y)
        layer = {k: v.astype(np.float64) for k, v in p.items() if not k.startswith("readout")}
        h = reference_run(cell, layer, x, np.zeros((T, B, H)), **options)[0]["h"]
        w = p["readout.weight"][0].astype(np.float64)
        diff = h[-1] @ w + p["readout.bias"][0] - y
        dh = np.zeros_like(h)
        dh[-1] = (2.0 / B) * diff[:, None] * w
        _, want, _ = reference_run(cell, layer, x, dh, **options)
        assert stats.loss == pytest.approx(np.mean(diff ** 2), rel=1e-5)
        got = model.state()
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert _rel_err(p[k] - got[k], want[k]) < 1e-4, k
    finally:
        set_strategy(*was)


# training-step shapes: above PARALLEL_MIN_MACS (batch split over threads, weight gradients split by
# rows) and above SMALL_GEMM_MACS (products cut into tiles), plus a tiny one on a single thread
STEP_SHAPES = [("rnn", 20, 64, 3, 64, {}), ("rnn", 20, 64, 3, 64, {"activation": "relu"}),
               ("lstm", 20, 64, 3, 128, {}), ("lstm", 3, 1, 2, 5, {}), ("gru", 20, 64, 3, 128, {}),
               ("gru", 3, 1, 2, 5, {})]


@pytest.mark.parametrize("cell, T, B, I, H, options", STEP_SHAPES)
def test_training_step_gradients_match_reference(cell, T, B, I, H, options):
    """The training path (its own buffers, ∂L/∂z written over the gates) against the float64 reference:
    SGD with lr 1 and no clipping or momentum turns the update into minus the gradient."""
    rng = np.random.default_rng(7)
    p = init_params(cell, I, H, 1, rng, np.float64)
    x = rng.standard_normal((T, B, I))
    y = rng.standard_normal(B)
    model = be.make_model(cell, p, loss_kind="mse_last", optimizer="sgd", lr=1.0, momentum=0.0, clip=0.0,
                          **options)
    stats = model.step(x, y)
    got = {k: p[k] - v for k, v in model.state().items()}

    layer = {k: v for k, v in p.items() if not k.startswith("readout")}
    h = reference_run(cell, layer, x, np.zeros((T, B, H)), **options)[0]["h"]
    diff = h[-1] @ p["readout.weight"][0] + p["readout.bias"][0] - y
    dh = np.zeros_like(h)
    dh[-1] = (2.0 / B) * diff[:, None] * p["readout.weight"][0]
    _, want, want_norm = reference_run(cell, layer, x, dh, **options)
    assert stats.loss == pytest.approx(np.mean(diff ** 2), rel=1e-10)
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert _rel_err(got[k], want[k]) < 1e-9, k
    assert _rel_err(got["readout.weight"], ((2.0 / B) * diff @ h[-1])[None]) < 1e-9
    assert _rel_err(stats.dh_norm, want_norm) < 1e-9


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("loss_kind, window", [("mse_last", 1), ("ce_last", 1), ("ce_window", 4)])
def test_training_step_splits_the_batch_without_changing_loss_or_gradients(cell, loss_kind, window):
    """The training step runs forward, loss and BPTT per batch chunk (one chunk per thread); the
    whole-batch readout followed by the backward pass must give the same loss, outputs and gradients."""
    from kernels.readout import readout_loss

    T, B, I, H, K = 12, 64, 3, 32, 5
    assert B * H * 3 * H >= PARALLEL_MIN_MACS  # big enough to be split when there are 2 threads
    rng = np.random.default_rng(11)
    n_out = 1 if loss_kind == "mse_last" else K
    p = init_params(cell, I, H, n_out, rng, np.float64)
    x = rng.standard_normal((T, B, I))
    y = (rng.standard_normal(B) if loss_kind == "mse_last" else
         rng.integers(0, K, size=(window, B) if loss_kind == "ce_window" else B))
    model = be.make_model(cell, p, loss_kind=loss_kind, window=window, optimizer="sgd", lr=1.0, momentum=0.0,
                          clip=0.0)
    stats = model.step(x, y)
    got = {k: p[k] - v for k, v in model.state().items()}

    layer = {k: v for k, v in p.items() if not k.startswith("readout")}
    fwd = be.forward(cell, layer, x)
    dh, dW, db = np.zeros((T, B, H)), np.empty((n_out, H)), np.empty(n_out)
    loss, out = readout_loss(loss_kind, fwd.h, p["readout.weight"], p["readout.bias"], y, window, dh, dW, db)
    want = be.backward(cell, layer, x, fwd, dh)
    assert stats.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(stats.out, out, rtol=1e-12)
    np.testing.assert_allclose(stats.dh_norm, want.dh_norm, rtol=1e-10)
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(got["readout.weight"], dW, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["readout.bias"], db, rtol=1e-9, atol=1e-12)


def _loss(cell, p, x, w, options=None):
    """A scalar test loss L = Σ w ⊙ h (so ∂L/∂h = w)."""
    return float(np.sum(be.forward(cell, p, x, **(options or {})).h * w))


@pytest.mark.parametrize("cell,options", CELLS, ids=CELL_IDS)
def test_gradients_match_centered_finite_differences(cell, options):
    p, x, w, _, _ = _problem(cell, 6, 2, 3, 4, np.float64, seed=3)
    fwd = be.forward(cell, p, x, **options)
    grads = be.backward(cell, p, x, fwd, w)
    eps = 1e-6
    for name in ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "x"]:
        target = x if name == "x" else p[name]
        numeric = np.zeros_like(target)
        for idx in np.ndindex(target.shape):
            old = target[idx]
            target[idx] = old + eps
            up = _loss(cell, p, x, w, options)
            target[idx] = old - eps
            down = _loss(cell, p, x, w, options)
            target[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_rnn_gradient_vanishes_through_time_while_lstm_forget_gate_keeps_it():
    """The picture the app exists to show: with a loss at the last step only, ‖∂L/∂h_t‖ decays with
    distance for a small-weight RNN; an LSTM whose forget gate is open carries it back."""
    T, B, I, H = 60, 4, 2, 16
    rng = np.random.default_rng(1)
    dh = np.zeros((T, B, H))
    dh[-1] = rng.standard_normal((B, H))
    x = rng.standard_normal((T, B, I))
    rnn = init_params("rnn", I, H, 1, rng, np.float64)
    lstm = init_params("lstm", I, H, 1, rng, np.float64)
    lstm["bias_ih"][H:2 * H] = 6.0  # forget gate ≈ 1
    ratios = {}
    for cell, p in (("rnn", rnn), ("lstm", lstm)):
        g = be.backward(cell, p, x, be.forward(cell, p, x), dh)
        ratios[cell] = g.dh_norm[0] / g.dh_norm[-1]
    assert ratios["rnn"] < 1e-3
    assert ratios["lstm"] > 1e-2


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gate_ranges_follow_the_spec(cell):
    """spec.tanh_gates are in [-1, 1], the other gates in [0, 1] (the GUI's saturation reads this)."""
    from kernels import cells

    spec = cells.get(cell)
    p, x, _, _, _ = _problem(cell, 6, 3, 2, 5, np.float64)
    fwd = be.forward(cell, p, x)
    for name in spec.gates:
        g = fwd.gate(name)
        lo = -1 if name in spec.tanh_gates else 0
        assert lo <= g.min() and g.max() <= 1, name
        if name in spec.tanh_gates:
            assert g.min() < 0, name


def test_gates_are_in_range_and_named():
    p, x, _, _, _ = _problem("lstm", 4, 3, 2, 5, np.float32)
    fwd = be.forward("lstm", p, x)
    for name in "ifo":
        assert 0 <= fwd.gate(name).min() and fwd.gate(name).max() <= 1
    assert -1 <= fwd.gate("g").min() and fwd.gate("g").max() <= 1
    assert fwd.gate("f").shape == (4, 3, 5)


def test_nan_input_propagates_as_nan():
    p, x, _, _, _ = _problem("lstm", 3, 2, 2, 3, np.float32)
    x[1, 0, 0] = np.nan
    h = be.forward("lstm", p, x).h
    assert np.isnan(h[1:, 0]).all() and np.isfinite(h[:, 1]).all()


@pytest.mark.parametrize("bad, message", [
    (dict(x=np.zeros((4, 2))), "x must have shape"),
    (dict(weight_hh=np.zeros((3, 3))), "weight_hh has shape"),
    (dict(h0=np.zeros((5, 5))), "h0 must have shape"),
])
def test_bad_shapes_raise_clear_errors(bad, message):
    p, x, _, _, _ = _problem("lstm", 4, 2, 3, 4, np.float32)
    x = bad.pop("x", x)
    h0 = bad.pop("h0", None)
    p.update(bad)
    with pytest.raises(KernelInputError, match=message):
        be.forward("lstm", p, x, h0=h0)


def test_unknown_backend_and_cell_are_refused():
    with pytest.raises(BackendUnavailable, match="unknown backend 'tpu'"):
        kernels.backend("tpu")
    with pytest.raises(KernelInputError, match="unknown cell 'tpu'.*rnn, lstm, gru"):
        be.forward("tpu", {}, np.zeros((1, 1, 1)))


def test_cell_options_and_states_are_checked():
    p, x, _, h0, _ = _problem("rnn", 3, 2, 2, 3, np.float64)
    with pytest.raises(KernelInputError, match="rnn activation must be one of tanh, relu, got 'gelu'"):
        be.forward("rnn", p, x, activation="gelu")
    with pytest.raises(KernelInputError, match="the lstm cell has no option 'activation'"):
        be.make_model("lstm", init_params("lstm", 2, 3, 1, np.random.default_rng(0)), loss_kind="mse_last",
                      activation="relu")
    with pytest.raises(KernelInputError, match="the rnn cell has no state 'c'"):
        be.forward("rnn", p, x, c0=h0)
    fwd = be.forward("rnn", p, x, activation="relu")
    assert fwd.options == {"activation": "relu"} and fwd.h.min() >= 0
    assert be.backward("rnn", p, x, fwd, np.ones_like(fwd.h))["x"].shape == x.shape


@pytest.mark.parametrize("cell,options", CELLS, ids=CELL_IDS)
def test_gradients_agree_with_pytorch(cell, options):
    torch = pytest.importorskip("torch")
    T, B, I, H = 9, 3, 4, 6
    if cell == "rnn":
        module = torch.nn.RNN(I, H, nonlinearity=options.get("activation", "tanh")).double()
    else:
        module = getattr(torch.nn, cell.upper())(I, H).double()
    p = {k: getattr(module, k + "_l0").detach().numpy().copy() for k in
         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    dh = rng.standard_normal((T, B, H))
    xt = torch.tensor(x, requires_grad=True)
    out, _ = module(xt)
    out.backward(torch.tensor(dh))
    fwd = be.forward(cell, p, x, **options)
    grads = be.backward(cell, p, x, fwd, dh)
    np.testing.assert_allclose(fwd.h, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    for k in p:
        np.testing.assert_allclose(grads[k], getattr(module, k + "_l0").grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-9, atol=1e-12)
