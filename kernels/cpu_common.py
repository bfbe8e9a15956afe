"""What the CPU RNN and LSTM kernels share: how work is split into chunks, the weight gradients."""
import numpy as np
from numba import njit

from kernels.blas import gemm
from kernels.config import JIT
from kernels.fpenv import denormals_off, restore

#: fewest (t, b) rows per thread in the weight-gradient products (below, one thread is faster)
MIN_ROWS_PER_THREAD = 256


def even_bounds(n_items: int, n_parts: int) -> list[int]:
    """Bounds ``[0, ..., n_items]`` of ``min(n_parts, n_items)`` near-equal chunks."""
    parts = max(1, min(n_parts, n_items))
    return [k * n_items // parts for k in range(parts + 1)]


@njit(**JIT)
def _gradient_rows(x2, W_ih, h0, h2, dz2, B, r0, r1, dW_ih, dW_hh, db, dx2):
    gemm(dz2[r0:r1].T, x2[r0:r1], dW_ih, 1.0)
    if dx2.shape[0] > 0:
        gemm(dz2[r0:r1], W_ih, dx2[r0:r1], 0.0)
    # ∂W_hh = Σ_t dz_tᵀ h_{t-1}: rows r of dz pair with rows r - B of h (h_0 for the first B)
    lo = max(r0, B)
    if r1 > lo:
        gemm(dz2[lo:r1].T, h2[lo - B:r1 - B], dW_hh, 1.0)
    if r0 < B:
        gemm(dz2[r0:min(r1, B)].T, h0[r0:min(r1, B)], dW_hh, 1.0)
    for r in range(r0, r1):
        db += dz2[r]


@njit(**JIT)
def gradient_rows(x2, W_ih, h0, h2, dz2, B, r0, r1, dW_ih, dW_hh, db, dx2):
    """Add the weight gradients of (t, b) rows ``r0:r1`` into ``dW_ih, dW_hh, db``; write ``dx2[r0:r1]``.

    ``x2 : (T·B, I)``, ``h2 : (T·B, H)``, ``dz2 : (T·B, G)`` are the flattened sequences;
    ``dx2`` is ``(T·B, I)``, or ``(0, I)`` when ∂L/∂x is not wanted.
    """
    old = denormals_off()
    _gradient_rows(x2, W_ih, h0, h2, dz2, B, r0, r1, dW_ih, dW_hh, db, dx2)
    restore(old)
