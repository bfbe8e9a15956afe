"""Every CUDA kernel compiles to real PTX for sm_80 and sm_90 (no GPU needed: NVVM from numba-cuda[cu12])."""
import numpy as np
import pytest

from tests.cuda.conftest import SIMULATOR

pytestmark = pytest.mark.skipif(SIMULATOR, reason="compile_ptx is not available under the CUDA simulator")


def _all_kernels(dtype):
    """The shared kernels and those of every registered cell that has CUDA kernels."""
    from kernels import cells, gpu_common

    cell_kernels = [k for spec in cells.specs() if spec.cuda is not None
                    for k in spec.cuda_kernels().kernels_for_ptx(dtype)]
    return gpu_common.kernels_for_ptx(dtype) + cell_kernels


def test_kernel_list_is_complete():
    names = {name for name, _, _ in _all_kernels(np.float32)}
    assert {"gemm", "readout_rows", "sumsq_segments", "finish_norms", "clip_adaptive", "clip_sgd", "dh_norms",
            "lstm_step_fwd", "lstm_step_bwd", "rnn_step_fwd", "rnn_step_bwd", "gru_step_fwd", "gru_step_bwd",
            "gru_dh0_direct"} <= names


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

    hot = {"gemm", "lstm_step_fwd", "lstm_step_bwd", "rnn_step_fwd", "rnn_step_bwd", "gru_step_fwd", "gru_step_bwd",
           "readout_rows"}
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


def test_gru_shared_memory_tiles_follow_config(monkeypatch):
    from numba import cuda

    from kernels import config, gpu_gru

    monkeypatch.setattr(config, "CUDA_TILE", 8)
    (name, pyfunc, sig), *_ = gpu_gru.kernels_for_ptx(np.float32)
    assert name == "gru_step_fwd"
    ptx, _ = cuda.compile_ptx(pyfunc, sig, cc=(9, 0))
    # h tile 8 x 9 + three W_hh tiles 3 x 8 x 9, float32
    assert f"[{8 * 9 * 4}]" in ptx and f"[{3 * 8 * 9 * 4}]" in ptx
