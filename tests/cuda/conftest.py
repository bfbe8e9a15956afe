"""CUDA tests: simulator tests run only in a process started with NUMBA_ENABLE_CUDASIM=1
(numba reads it at import), real-GPU tests only where numba.cuda.is_available()."""
import os

import pytest

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "") == "1"


def _gpu_present() -> bool:
    if SIMULATOR:
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    skip_sim = pytest.mark.skip(reason="CUDA simulator test: run with NUMBA_ENABLE_CUDASIM=1 in its own "
                                       "pytest process (make test does: pytest -m cudasim tests/cuda)")
    gpu = None
    for item in items:
        if "cudasim" in item.keywords and not SIMULATOR:
            item.add_marker(skip_sim)
        if "gpu" in item.keywords:
            if gpu is None:
                gpu = _gpu_present()
            if not gpu:
                item.add_marker(pytest.mark.skip(reason="needs a real CUDA GPU (numba.cuda.is_available() is False)"))


@pytest.fixture
def small_launches(monkeypatch):
    """Tiny tiles and blocks so every launch spans several blocks (and the simulator stays fast)."""
    from kernels import config

    monkeypatch.setattr(config, "CUDA_TILE", 4)
    monkeypatch.setattr(config, "CUDA_THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(config, "CUDA_REDUCE_BLOCKS", 2, raising=False)
