"""What the CPU RNN and LSTM kernels share: how work is split over threads, the weight gradients."""
import numpy as np
from numba import njit, prange

from kernels.config import JIT, PARALLEL_JIT

#: fewest (t, b) rows per thread in the weight-gradient products (below, one thread is faster)
MIN_ROWS_PER_THREAD = 256


@njit(**JIT)
def _even_bounds(n_items, n_parts):
    parts = max(1, min(n_parts, n_items))
    bounds = np.empty(parts + 1, dtype=np.int64)
    for k in range(parts + 1):
        bounds[k] = (k * n_items) // parts
    return bounds


@njit(**JIT)
def batch_chunks(B, n_threads):
    """Chunk bounds ``(n + 1,)`` splitting ``B`` sequences over ``n_threads`` (one chunk per thread)."""
    return _even_bounds(B, n_threads)


@njit(**JIT)
def row_chunks(rows, n_threads):
    """Chunk bounds splitting ``rows`` (t, b) rows over ``n_threads``, at least MIN_ROWS_PER_THREAD each."""
    return _even_bounds(rows, min(n_threads, max(1, rows // MIN_ROWS_PER_THREAD)))


@njit(**JIT)
def gradient_rows(x2, W_ih, h0, h2, dz2, B, r0, r1, dW_ih, dW_hh, db, dx2):
    """Add the weight gradients of (t, b) rows ``r0:r1`` into ``dW_ih, dW_hh, db``; write ``dx2[r0:r1]``.

    ``x2 : (T·B, I)``, ``h2 : (T·B, H)``, ``dz2 : (T·B, G)`` are the flattened sequences.
    """
    dW_ih += np.dot(dz2[r0:r1].T, x2[r0:r1])
    np.dot(dz2[r0:r1], W_ih, dx2[r0:r1])
    # ∂W_hh = Σ_t dz_tᵀ h_{t-1}: rows r of dz pair with rows r - B of h (h_0 for the first B)
    lo = max(r0, B)
    if r1 > lo:
        dW_hh += np.dot(dz2[lo:r1].T, h2[lo - B:r1 - B])
    if r0 < B:
        dW_hh += np.dot(dz2[r0:min(r1, B)].T, h0[r0:min(r1, B)])
    for r in range(r0, r1):
        db += dz2[r]


@njit(**PARALLEL_JIT)
def weight_gradients(x, W_ih, h0, h, dz, dW_ih, dW_hh, db, dx, n_threads):
    """∂W_ih, ∂W_hh, ∂b and ∂x from ``dz : (T, B, G)``: products over all (t, b) rows, the rows split
    over ``n_threads`` (shared by the LSTM, G = 4H, and the RNN, G = H)."""
    T, B, I = x.shape
    H = h0.shape[1]
    G = dz.shape[2]
    TB = T * B
    bounds = row_chunks(TB, n_threads)
    n = bounds.size - 1
    parts_ih = np.zeros((n, G, I), dtype=x.dtype)
    parts_hh = np.zeros((n, G, H), dtype=x.dtype)
    parts_b = np.zeros((n, G), dtype=x.dtype)
    for k in prange(n):
        gradient_rows(x.reshape(TB, I), W_ih, h0, h.reshape(TB, H), dz.reshape(TB, G), B,
                      bounds[k], bounds[k + 1], parts_ih[k], parts_hh[k], parts_b[k], dx.reshape(TB, I))
    dW_ih[:] = parts_ih.sum(axis=0)
    dW_hh[:] = parts_hh.sum(axis=0)
    db[:] = parts_b.sum(axis=0)
