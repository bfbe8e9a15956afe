"""Every CUDA kernel compiles to real PTX for sm_80 and sm_90 (no GPU needed: NVVM from numba-cuda[cu12])."""
import numpy as np
import pytest

from tests.cuda.conftest import SIMULATOR

pytestmark = pytest.mark.skipif(SIMULATOR, reason="compile_ptx is not available under the CUDA simulator")


def _all_kernels(dtype):
    from kernels import gpu_common, gpu_lstm, gpu_rnn

    return [k for mod in (gpu_common, gpu_lstm, gpu_rnn) for k in mod.kernels_for_ptx(dtype)]


def test_kernel_list_is_complete():
    names = {name for name, _, _ in _all_kernels(np.float32)}
    assert {"gemm", "readout_rows", "sumsq_segments", "finish_norms", "clip_adam", "clip_sgd", "dh_norms",
            "lstm_step_fwd", "lstm_step_bwd", "rnn_step_fwd", "rnn_step_bwd"} <= names


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)])
def test_every_kernel_compiles_to_ptx_float32(cc):
    from numba import cuda

    assert cuda.compile_ptx is not None
    for name, pyfunc, sig in _all_kernels(np.float32):
        ptx, _ = cuda.compile_ptx(pyfunc, sig, cc=cc)
        assert ".version" in ptx and f".target sm_{cc[0]}{cc[1]}" in ptx, name
        assert ".entry" in ptx, name


def test_every_kernel_compiles_to_ptx_float64():
    from numba import cuda

    for name, pyfunc, sig in _all_kernels(np.float64):
        ptx, _ = cuda.compile_ptx(pyfunc, sig, cc=(8, 0))
        assert ".target sm_80" in ptx, name


def test_hot_float32_kernels_do_no_float64_math():
    """Constants are typed: the recurrent kernels and the GEMM stay in float32 (f64 is slow on most GPUs)."""
    import re

    from numba import cuda

    hot = {"gemm", "lstm_step_fwd", "lstm_step_bwd", "rnn_step_fwd", "rnn_step_bwd", "readout_rows"}
    for name, pyfunc, sig in _all_kernels(np.float32):
        if name in hot:
            ptx, _ = cuda.compile_ptx(pyfunc, sig, cc=(8, 0))
            assert not re.search(r"\b(add|mul|fma|sub|div)\.[a-z.]*f64\b", ptx), name


def test_shared_memory_tiles_follow_config(monkeypatch):
    from numba import cuda

    from kernels import config, gpu_lstm

    monkeypatch.setattr(config, "CUDA_TILE", 8)
    (name, pyfunc, sig), _ = gpu_lstm.kernels_for_ptx(np.float32)
    ptx, _ = cuda.compile_ptx(pyfunc, sig, cc=(8, 0))
    # h tile 8 x 9 + four W_hh tiles 4 x 8 x 9, float32
    assert f"[{8 * 9 * 4}]" in ptx and f"[{4 * 8 * 9 * 4}]" in ptx
