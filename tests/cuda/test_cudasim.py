"""CUDA kernels under the simulator against the CPU backend (float32, relative error < 1e-5).

Run in its own process: ``NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim tests/cuda``. Launch settings are
patched small (tile 4, 8 threads per block) so every launch spans several blocks.
"""
import numpy as np
import pytest

pytestmark = [pytest.mark.cudasim, pytest.mark.usefixtures("small_launches")]

TOL = 1e-5
# (T, B, I, H): B = 1; B and H not multiples of the tile; H = 33 is not a multiple of 32
SHAPES = [(3, 1, 2, 5), (3, 5, 2, 9)]


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-3)


@pytest.fixture(scope="module")
def backends():
    import kernels

    return kernels.backend("cpu"), kernels.backend("cuda")


def _problem(cell, T, B, I, H, seed=0):
    from kernels.params import init_params

    rng = np.random.default_rng(seed)
    p = {k: v for k, v in init_params(cell, I, H, 1, rng).items() if not k.startswith("readout")}
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dh = rng.standard_normal((T, B, H)).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((B, H))).astype(np.float32) if cell == "lstm" else None
    return p, x, dh, h0, c0


CELLS = [("rnn", {}), ("lstm", {})]
#: the simulator runs every CUDA thread as a Python thread: the GRU and the ReLU RNN get the one shape that
#: spans several blocks with B and H off the tile (their B = 1 path is the same driver code as the others')
MORE = [("rnn", {"activation": "relu"}, SHAPES[1]), ("gru", {}, SHAPES[1])]


@pytest.mark.parametrize("cell,options,shape", [(c, o, s) for c, o in CELLS for s in SHAPES] + MORE
                         + [("rnn", {}, (2, 1, 1, 33))])
def test_forward_and_backward_match_cpu(backends, cell, options, shape):
    cpu, gpu = backends
    p, x, dh, h0, c0 = _problem(cell, *shape)
    want = cpu.forward(cell, p, x, h0=h0, c0=c0, **options)
    got = gpu.forward(cell, p, x, h0=h0, c0=c0, **options)
    assert got.h.dtype == np.float32 and got.h.shape == want.h.shape
    assert got.options == want.options
    assert set(got.states) == set(want.states) and set(got.saved) == set(want.saved)
    for name in want.states:
        assert _rel_err(got.states[name], want.states[name]) < TOL, name
    for name in want.saved:
        assert _rel_err(got.saved[name], want.saved[name]) < TOL, name
    g_want = cpu.backward(cell, p, x, want, dh)
    g_got = gpu.backward(cell, p, x, want, dh)
    assert set(g_got) == set(g_want)
    for name in g_want:
        assert _rel_err(g_got[name], g_want[name]) < TOL, name
    assert _rel_err(g_got.dh_norm, g_want.dh_norm) < TOL
    assert _rel_err(g_got.h0, g_want.h0) < TOL
    if cell == "lstm":
        assert _rel_err(g_got.c0, g_want.c0) < TOL


CASES = [  # cell, loss kind, K, window, optimizer, (T, B, I, H)
    ("lstm", "mse_last", 1, 1, "adam", (4, 1, 2, 5)),
    ("gru", "mse_last", 1, 1, "rmsprop:0.9", (3, 2, 2, 5)),
    ("rnn", "ce_last", 3, 1, "sgd", (3, 5, 3, 9)),
    ("lstm", "ce_window", 4, 2, "sgd", (3, 3, 2, 6)),
    ("rnn", "mse_last", 1, 1, "adam", (3, 2, 2, 5)),
    ("gru", "ce_window", 3, 2, "sgd", (3, 3, 2, 6)),
    ("rnn-relu", "mse_last", 1, 1, "sgd", (3, 2, 2, 5)),
]


@pytest.mark.parametrize("cell,loss_kind,K,window,optimizer,shape", CASES)
def test_training_steps_match_cpu(backends, cell, loss_kind, K, window, optimizer, shape):
    """Readout + loss, BPTT, norms, clipping and the optimizer update, two steps in a row."""
    from kernels.params import init_params

    cpu, gpu = backends
    T, B, I, H = shape
    cell, _, act = cell.partition("-")
    rng = np.random.default_rng(1)
    params = init_params(cell, I, H, K, rng)
    # clip 0.05 makes clipping active; lr large enough that the update moves the weights visibly
    opts = dict(loss_kind=loss_kind, window=window, optimizer=optimizer, lr=0.05, clip=0.05,
                **({"activation": act} if act else {}))
    m_cpu, m_gpu = cpu.make_model(cell, params, **opts), gpu.make_model(cell, params, **opts)
    assert m_gpu.param_count == m_cpu.param_count
    for _ in range(2):
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        if loss_kind == "mse_last":
            y = rng.standard_normal(B).astype(np.float32)
        elif loss_kind == "ce_last":
            y = rng.integers(0, K, B)
        else:
            y = rng.integers(0, K, (window, B))
        s_cpu, s_gpu = m_cpu.step(x, y), m_gpu.step(x, y)
        assert s_gpu.loss == pytest.approx(s_cpu.loss, rel=TOL)
        assert s_gpu.grad_norm == pytest.approx(s_cpu.grad_norm, rel=TOL)
        assert s_gpu.grad_norm > 0.05  # clipping was active
        for name, v in s_cpu.param_grad_norms.items():
            assert s_gpu.param_grad_norms[name] == pytest.approx(v, rel=TOL, abs=1e-7), name
        assert _rel_err(s_gpu.out, s_cpu.out) < TOL
        assert _rel_err(s_gpu.dh_norm, s_cpu.dh_norm) < TOL
    state_cpu, state_gpu = m_cpu.state(), m_gpu.state()
    for name, v in state_cpu.items():
        assert state_gpu[name].dtype == v.dtype
        assert _rel_err(state_gpu[name], v) < TOL, name
        assert not np.array_equal(v, params[name])  # the update happened
    probe_cpu, probe_gpu = m_cpu.probe(x[:, :1]), m_gpu.probe(x[:, :1])
    assert _rel_err(probe_gpu.h, probe_cpu.h) < TOL
    if probe_cpu.gates is not None:
        assert _rel_err(probe_gpu.gates, probe_cpu.gates) < TOL


def test_trainer_gives_the_same_losses_on_both_backends():
    from explorer.config import TrainConfig
    from explorer.training import StepRecord, TestRecord, Trainer

    losses, tests = {}, {}
    for backend in ("cpu", "cuda"):
        cfg = TrainConfig(task="adding", seq_len=10, cells=("rnn", "lstm"), hidden=6, batch=2, steps=2,
                          seed=0, backend=backend, probe_every=2, test_size=4)   # a tiny held-out set: the
        records = list(Trainer(cfg).run())                                                   # simulator is slow
        losses[backend] = [(r.cell, r.step, r.loss, r.grad_norm) for r in records if isinstance(r, StepRecord)]
        tests[backend] = [(r.cell, r.loss) for r in records if isinstance(r, TestRecord)]
    assert len(losses["cpu"]) == len(losses["cuda"]) == 4
    assert [c for c, _ in tests["cuda"]] == ["rnn", "lstm"]
    for (c1, l1), (c2, l2) in zip(tests["cpu"], tests["cuda"]):
        assert c1 == c2 and l2 == pytest.approx(l1, rel=1e-4)
    for (c1, s1, l1, g1), (c2, s2, l2, g2) in zip(losses["cpu"], losses["cuda"]):
        assert (c1, s1) == (c2, s2)
        assert l2 == pytest.approx(l1, rel=TOL)
        assert g2 == pytest.approx(g1, rel=TOL)


def test_gru_matches_pytorch_on_the_simulator(backends):
    """torch.nn.GRU parity through the CUDA backend (checked independently of the CPU kernels)."""
    torch = pytest.importorskip("torch")
    _, gpu = backends
    T, B, I, H = 4, 3, 2, 5
    torch.manual_seed(0)
    module = torch.nn.GRU(I, H)
    p = {k: getattr(module, k + "_l0").detach().numpy().copy() for k in
         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dh = rng.standard_normal((T, B, H)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    out, _ = module(xt)
    out.backward(torch.tensor(dh))
    fwd = gpu.forward("gru", p, x)
    grads = gpu.backward("gru", p, x, fwd, dh)
    assert _rel_err(fwd.h, out.detach().numpy()) < TOL
    for k in p:
        assert _rel_err(grads[k], getattr(module, k + "_l0").grad.numpy()) < TOL, k
    assert _rel_err(grads["x"], xt.grad.numpy()) < TOL


def test_warm_up_reports_like_the_cpu_backend(backends):
    _, gpu = backends
    info = gpu.warm_up(cells=("rnn",), dtype="float32")
    assert set(info) == {"seconds", "compiled", "cached"} and info["cached"] == 0


def test_host_drivers_reject_bad_arrays(backends):
    from numba import cuda

    from kernels import gpu_rnn
    from kernels.errors import KernelInputError

    _, gpu = backends
    p, x, dh, h0, _ = _problem("rnn", 2, 2, 3, 4)
    with pytest.raises(KernelInputError, match=r"x must have shape"):
        gpu.forward("rnn", p, x[:, :, :2])
    with pytest.raises(KernelInputError, match=r"h0 must have shape"):
        gpu.forward("rnn", p, x, h0=h0[:1])
    fwd = gpu.forward("rnn", p, x)
    with pytest.raises(KernelInputError, match=r"dh and fwd.h"):
        gpu.backward("rnn", p, x, fwd, dh[:1])
    d = {k: cuda.to_device(v) for k, v in p.items()}
    hs = cuda.to_device(np.zeros((3, 2, 4), np.float32))
    with pytest.raises(KernelInputError, match=r"x must be float32, got float64"):
        gpu_rnn.forward(cuda.to_device(x.astype(np.float64)), d["weight_ih"], d["weight_hh"], d["bias_ih"], hs)
    with pytest.raises(KernelInputError, match=r"hs must have shape"):
        gpu_rnn.forward(cuda.to_device(x), d["weight_ih"], d["weight_hh"], d["bias_ih"], hs[:2])
    with pytest.raises(KernelInputError, match=r"device array"):
        gpu_rnn.forward(x, d["weight_ih"], d["weight_hh"], d["bias_ih"], hs)
