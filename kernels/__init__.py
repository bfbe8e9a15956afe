"""Numba compute kernels for training recurrent cells (no Qt, no h5py).

Use :func:`backend` to get an object with ``forward``, ``backward`` and
``make_model``; see README.md for a notebook example. The cells (RNN, LSTM,
GRU, and any registered later) are listed in :mod:`kernels.cells`; the
initialisations are in :mod:`kernels.inits`.
"""
from kernels.errors import BackendUnavailable, KernelInputError

BACKENDS = ("cpu", "cuda")


def backend(name: str = "cpu"):
    """Return the compute backend called ``name`` ("cpu" or "cuda").

    Raises
    ------
    BackendUnavailable
        ``name`` is unknown, or its hardware/driver is not usable here.
    """
    if name == "cpu":
        from kernels.cpu import CpuBackend

        return CpuBackend()
    if name == "cuda":
        try:
            from kernels.gpu import CudaBackend
        except ImportError as exc:
            raise BackendUnavailable(f"the CUDA backend is not installed ({exc})") from exc
        return CudaBackend()
    raise BackendUnavailable(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")


__all__ = ["backend", "BACKENDS", "BackendUnavailable", "KernelInputError"]
