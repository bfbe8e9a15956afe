"""What the CPU cells' kernels share: how the batch is split, and the weight gradients.

The reverse sweep never stores ∂L/∂z for all steps. Each thread collects the
rows of its last few steps in a *panel* (∂L/∂z_t beside the h_{t-1} and x_t they
multiply) and, when the panel holds :data:`PANEL_ROWS` rows, adds them into its
own weight gradients with one matrix product: big enough for BLAS to run near
peak, small enough to stay in cache.
"""
import numpy as np
from numba import njit

from kernels.blas import gemm, product
from kernels.config import JIT

#: rows (steps × batch rows of a chunk) gathered before a weight-gradient product
PANEL_ROWS = 256


def aligned_empty(shape, dtype, align: int = 64, _alloc=np.empty) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting on an ``align``-byte boundary (NumPy's own start on 16): rows
    of a multiple of 8 floats then never straddle a vector load's cache lines, which costs the row
    kernel (kernels/blas.py) a third of its speed (57-62 vs 40-45 GFLOP/s, measured)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = _alloc(size + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + size].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype) -> np.ndarray:
    """:func:`aligned_empty`, zeroed as ``np.zeros`` does (pages never written stay unallocated)."""
    return aligned_empty(shape, dtype, _alloc=np.zeros)


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous, aligned copy of ``a``."""
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out


def even_bounds(n_items: int, n_parts: int) -> list[int]:
    """Bounds ``[0, ..., n_items]`` of ``min(n_parts, n_items)`` near-equal chunks."""
    parts = max(1, min(n_parts, n_items))
    return [k * n_items // parts for k in range(parts + 1)]


@njit(**JIT)
def new_panel(n_rows, G, H, I, like):
    """Panel buffers (∂L/∂z, h_{t-1}, x_t) for a chunk of ``n_rows`` batch rows, in ``like``'s dtype:
    ``steps · n_rows`` rows each, ``steps = max(1, PANEL_ROWS // n_rows)``."""
    rows = max(1, PANEL_ROWS // n_rows) * n_rows
    return np.empty((rows, G), like.dtype), np.empty((rows, H), like.dtype), np.empty((rows, I), like.dtype)


@njit(**JIT)
def copy_rows(src, dst):
    """``dst[:] = src`` for 2-D arrays with contiguous rows (a loop LLVM vectorizes; Numba's slice
    assignment does not)."""
    for n in range(src.shape[0]):
        s, d = src[n], dst[n]
        for k in range(s.size):
            d[k] = s[k]


@njit(**JIT)
def flush_panel(dz_p, h_p, x_p, rows, dW_ih, dW_hh, db):
    """Add the first ``rows`` panel rows into ``dW_hh += dzᵀ h``, ``dW_ih += dzᵀ x``, ``db += Σ dz``."""
    if rows == 0:
        return
    dz = dz_p[:rows]
    gemm(dz.T, h_p[:rows], dW_hh, 1.0)
    gemm(dz.T, x_p[:rows], dW_ih, 1.0)
    for r in range(rows):
        d = dz[r]
        for k in range(db.size):
            db[k] += d[k]


@njit(**JIT)
def finish_step(panel, k, n, W_ih, W_hh, h_prev, x, dh_next, dx, t, b0, dW_ih, dW_hh, db):
    """Everything after a reverse step's ∂L/∂z_t (panel rows ``k:k+n``) that the cells share.

    Writes ∂L/∂h_{t-1} = ∂L/∂z_t W_hh into ``dh_next`` and, if ``dx`` has rows, ∂L/∂x_t into
    ``dx[t, b0:b0+n]``; puts h_{t-1} and x_t beside ∂L/∂z_t in the panel and adds the panel into
    ``dW_ih, dW_hh, db`` when it is full or t = 0. Returns the panel rows now filled.
    """
    dz_p, h_p, x_p = panel
    dz = dz_p[k:k + n]
    product(dz, W_hh, dh_next, 0.0)
    if dx.shape[0] > 0:
        gemm(dz, W_ih, dx[t, b0:b0 + n], 0.0)
    copy_rows(h_prev, h_p[k:k + n])
    copy_rows(x[t, b0:b0 + n], x_p[k:k + n])
    k += n
    if k == dz_p.shape[0] or t == 0:
        flush_panel(dz_p, h_p, x_p, k, dW_ih, dW_hh, db)
        k = 0
    return k


# -- cells whose recurrent product sees a different ∂L/∂z than the input product (the GRU) ----------
@njit(**JIT)
def new_split_panel(n_rows, G, H, I, like):
    """Panel buffers (∂L/∂z input side, ∂L/∂z recurrent side, h_{t-1}, x_t), as :func:`new_panel`."""
    rows = max(1, PANEL_ROWS // n_rows) * n_rows
    return (np.empty((rows, G), like.dtype), np.empty((rows, G), like.dtype), np.empty((rows, H), like.dtype),
            np.empty((rows, I), like.dtype))


@njit(**JIT)
def _add_column_sums(dz, db):
    for r in range(dz.shape[0]):
        d = dz[r]
        for k in range(db.size):
            db[k] += d[k]


@njit(**JIT)
def flush_split_panel(dzi_p, dzh_p, h_p, x_p, rows, dW_ih, dW_hh, db_ih, db_hh):
    """``dW_ih += dz_iᵀ x``, ``db_ih += Σ dz_i``; ``dW_hh += dz_hᵀ h``, ``db_hh += Σ dz_h`` (first ``rows``)."""
    if rows == 0:
        return
    dzi, dzh = dzi_p[:rows], dzh_p[:rows]
    gemm(dzh.T, h_p[:rows], dW_hh, 1.0)
    gemm(dzi.T, x_p[:rows], dW_ih, 1.0)
    _add_column_sums(dzi, db_ih)
    _add_column_sums(dzh, db_hh)


@njit(**JIT)
def finish_split_step(panel, k, n, W_ih, W_hh, h_prev, x, dh_next, dx, t, b0, dW_ih, dW_hh, db_ih, db_hh):
    """:func:`finish_step` for a split panel (:func:`new_split_panel`, rows ``k:k+n`` filled).

    ``dh_next`` holds the step's direct share of ∂L/∂h_{t-1} in (the GRU's ∂L/∂h_t ⊙ z); the
    recurrent product ∂L/∂z_h W_hh is added onto it. ∂L/∂x_t = ∂L/∂z_i W_ih.
    """
    dzi_p, dzh_p, h_p, x_p = panel
    product(dzh_p[k:k + n], W_hh, dh_next, 1.0)
    if dx.shape[0] > 0:
        gemm(dzi_p[k:k + n], W_ih, dx[t, b0:b0 + n], 0.0)
    copy_rows(h_prev, h_p[k:k + n])
    copy_rows(x[t, b0:b0 + n], x_p[k:k + n])
    k += n
    if k == dzi_p.shape[0] or t == 0:
        flush_split_panel(dzi_p, dzh_p, h_p, x_p, k, dW_ih, dW_hh, db_ih, db_hh)
        k = 0
    return k
