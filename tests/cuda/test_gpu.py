"""The CUDA backend on real hardware (``@pytest.mark.gpu``: skipped where numba.cuda.is_available() is False),
and the error a machine without a GPU gives."""
import time

import numpy as np
import pytest

from tests.cuda.conftest import SIMULATOR


def _gpu_present():
    from tests.cuda.conftest import _gpu_present as present

    return present()


@pytest.mark.skipif(SIMULATOR, reason="the simulator stands in for a GPU")
def test_no_gpu_gives_a_clear_backend_error():
    if _gpu_present():
        pytest.skip("a CUDA GPU is present")
    import kernels
    from kernels.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="no usable CUDA GPU") as info:
        kernels.backend("cuda")
    assert "--backend cpu" in str(info.value) and "\n" not in str(info.value)


def _rel_err(a, b):
    return np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(b)), 1e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["rnn", "rnn-relu", "lstm", "gru"])
@pytest.mark.parametrize("shape", [(50, 32, 2, 64), (20, 1, 3, 33), (10, 7, 4, 300)])
def test_gpu_matches_cpu(cell, shape):
    import kernels
    from kernels.params import init_params

    T, B, I, H = shape
    cell, _, act = cell.partition("-")
    options = {"activation": act} if act else {}
    cpu, gpu = kernels.backend("cpu"), kernels.backend("cuda")
    rng = np.random.default_rng(0)
    p = {k: v for k, v in init_params(cell, I, H, 1, rng).items() if not k.startswith("readout")}
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dh = rng.standard_normal((T, B, H)).astype(np.float32)
    want, got = cpu.forward(cell, p, x, **options), gpu.forward(cell, p, x, **options)
    assert _rel_err(got.h, want.h) < 1e-5
    g_want, g_got = cpu.backward(cell, p, x, want, dh), gpu.backward(cell, p, x, want, dh)
    for name in g_want:
        assert _rel_err(g_got[name], g_want[name]) < 1e-4, name  # long sums: float32 order differs


@pytest.mark.gpu
def test_gpu_training_matches_cpu_and_reports_speed(capsys):
    from explorer.config import TrainConfig
    from explorer.training import StepRecord, Trainer

    losses, seconds = {}, {}
    for backend in ("cpu", "cuda"):
        cfg = TrainConfig(task="adding", seq_len=100, cells=("rnn", "lstm"), hidden=64, batch=32, steps=30,
                          seed=0, backend=backend, probe_every=10)
        trainer = Trainer(cfg)
        if hasattr(trainer.backend, "warm_up"):
            trainer.backend.warm_up(cells=cfg.cells)
        start = time.perf_counter()
        losses[backend] = [r.loss for r in trainer.run() if isinstance(r, StepRecord)]
        seconds[backend] = time.perf_counter() - start
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-3)
    with capsys.disabled():
        print(f"\n30 steps adding T=100 H=64 B=32 rnn+lstm: cpu {seconds['cpu']:.2f} s, cuda {seconds['cuda']:.2f} s")
