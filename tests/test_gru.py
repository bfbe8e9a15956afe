"""The GRU beyond the shared checks of tests/test_kernels.py (reference, finite differences, torch parity):
a training step against torch.nn.GRU + nn.Linear for every loss kind, the initial-state gradient, the
update gate's meaning and the probe's gates by name."""
import numpy as np
import pytest

import kernels
from kernels.params import init_params
from tests import reference as ref

be = kernels.backend("cpu")
LAYER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _layer_params(module):
    """A torch.nn.GRU's layer-0 parameters under our names (copies)."""
    return {k: getattr(module, k + "_l0").detach().numpy().copy() for k in LAYER_KEYS}


def _torch_loss(torch, kind, out_seq, readout, y, window):
    F = torch.nn.functional
    if kind == "mse_last":
        return ((readout(out_seq[-1])[:, 0] - torch.tensor(y)) ** 2).mean()
    if kind == "ce_last":
        return F.cross_entropy(readout(out_seq[-1]), torch.tensor(y))
    logits = readout(out_seq[-window:])                       # (window, B, K)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.tensor(y).reshape(-1))


@pytest.mark.parametrize("loss_kind, K, window", [("mse_last", 1, 1), ("ce_last", 4, 1), ("ce_window", 3, 3)])
@pytest.mark.parametrize("B, H", [(5, 6), (64, 32)])  # (64, 32): the batch is split over threads
def test_training_step_matches_pytorch(loss_kind, K, window, B, H):
    """make_model(...).step with SGD lr 1, no clipping or momentum: the update is minus the gradient,
    which must equal autograd's through nn.GRU + nn.Linear and the same loss."""
    torch = pytest.importorskip("torch")
    T, I = 7, 3
    torch.manual_seed(0)
    gru, readout = torch.nn.GRU(I, H).double(), torch.nn.Linear(H, K).double()
    p = _layer_params(gru)
    p["readout.weight"] = readout.weight.detach().numpy().copy()
    p["readout.bias"] = readout.bias.detach().numpy().copy()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I))
    y = (rng.standard_normal(B) if loss_kind == "mse_last" else
         rng.integers(0, K, size=(window, B) if loss_kind == "ce_window" else B))
    model = be.make_model("gru", p, loss_kind=loss_kind, window=window, optimizer="sgd", lr=1.0, momentum=0.0,
                          clip=0.0)
    stats = model.step(x, y)
    got = {k: p[k] - v for k, v in model.state().items()}

    out, _ = gru(torch.tensor(x))
    loss = _torch_loss(torch, loss_kind, out, readout, y, window)
    loss.backward()
    assert stats.loss == pytest.approx(loss.item(), rel=1e-10)
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        np.testing.assert_allclose(got[k], getattr(gru, k + "_l0").grad.numpy(), rtol=1e-8, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(got["readout.weight"], readout.weight.grad.numpy(), rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(got["readout.bias"], readout.bias.grad.numpy(), rtol=1e-8, atol=1e-13)


def test_initial_state_gradient_matches_pytorch_and_finite_differences():
    torch = pytest.importorskip("torch")
    T, B, I, H = 5, 2, 3, 4
    torch.manual_seed(1)
    gru = torch.nn.GRU(I, H).double()
    p = _layer_params(gru)
    rng = np.random.default_rng(3)
    x, dh, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    h0t = torch.tensor(h0[None], requires_grad=True)
    out, _ = gru(torch.tensor(x), h0t)
    out.backward(torch.tensor(dh))
    fwd = be.forward("gru", p, x, h0=h0)
    grads = be.backward("gru", p, x, fwd, dh)
    np.testing.assert_allclose(fwd.h, out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads.h0, h0t.grad.numpy()[0], rtol=1e-10, atol=1e-13)
    assert grads.c0 is None and set(grads.initial) == {"h"}
    eps = 1e-6
    for idx in [(0, 0), (1, 3)]:
        up, down = h0.copy(), h0.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric = (np.sum(be.forward("gru", p, x, h0=up).h * dh) - np.sum(be.forward("gru", p, x, h0=down).h * dh))
        assert grads.h0[idx] == pytest.approx(numeric / (2 * eps), rel=1e-6)


def test_update_gate_near_one_keeps_the_state_and_gradient():
    """z keeps h in nn.GRU (h' = (1 - z) n + z h): with a large +b_z the state and ∂L/∂h pass through."""
    T, B, I, H = 50, 3, 2, 8
    rng = np.random.default_rng(4)
    p = {k: v for k, v in init_params("gru", I, H, 1, rng, np.float64).items() if not k.startswith("readout")}
    p["bias_ih"][H:2 * H] = 16.0  # 1 - z ≈ 1e-7
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((B, H))
    fwd = be.forward("gru", p, x, h0=h0)
    np.testing.assert_allclose(fwd.h[-1], h0, atol=1e-4)
    dh = np.zeros((T, B, H))
    dh[-1] = 1.0
    g = be.backward("gru", p, x, fwd, dh)
    assert g.dh_norm[0] / g.dh_norm[-1] > 0.99


def test_probe_exposes_the_gates_by_name():
    model = be.make_model("gru", init_params("gru", 2, 5, 1, np.random.default_rng(0)), loss_kind="mse_last")
    fwd = model.probe(np.random.default_rng(1).standard_normal((6, 1, 2)).astype(np.float32))
    assert fwd.gates.shape == (6, 1, 15) and fwd.c is None
    for name in "rz":
        assert 0 <= fwd.gate(name).min() and fwd.gate(name).max() <= 1
    assert -1 <= fwd.gate("n").min() and fwd.gate("n").max() <= 1
    blocks = fwd.gate_blocks()
    assert blocks.shape == (3, 6, 1, 5)
    np.testing.assert_array_equal(blocks[1], fwd.gate("z"))
    with pytest.raises(kernels.KernelInputError, match="the gru cell has no gate 'f'"):
        fwd.gate("f")


def test_reference_matches_pytorch_directly():
    """The reference itself against nn.GRU (so the kernels' agreement with it means something)."""
    torch = pytest.importorskip("torch")
    T, B, I, H = 4, 2, 3, 5
    torch.manual_seed(2)
    gru = torch.nn.GRU(I, H).double()
    p = _layer_params(gru)
    x = np.random.default_rng(5).standard_normal((T, B, I))
    dh = np.random.default_rng(6).standard_normal((T, B, H))
    xt = torch.tensor(x, requires_grad=True)
    out, _ = gru(xt)
    out.backward(torch.tensor(dh))
    h, gates, hn = ref.gru_forward(p, x)
    grads, _ = ref.gru_backward(p, x, h, gates, hn, dh)
    np.testing.assert_allclose(h, out.detach().numpy(), rtol=1e-12, atol=1e-14)
    for k in p:
        np.testing.assert_allclose(grads[k], getattr(gru, k + "_l0").grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-10, atol=1e-13)
