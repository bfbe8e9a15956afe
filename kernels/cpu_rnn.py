"""Vanilla (Elman) RNN forward and full BPTT backward on the CPU (``@njit``), tanh or ReLU.

Shapes (PyTorch ``nn.RNN`` layout)::

    x : (T, B, I)    W_ih : (H, I)    W_hh : (H, H)    b : (H,) = b_ih + b_hh    h : (T, B, H)

Equation: ``h_t = act(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b)``, ``act`` = tanh or ReLU
(``nn.RNN(nonlinearity=...)``; ReLU + identity init is Le et al. 2015's IRNN).
``act`` is an argument of the row kernels (:data:`TANH`, :data:`RELU`), chosen once
per step outside the unit loops, so each gate loop stays branch-free. Same structure as
kernels/cpu_lstm.py: batch chunks in parallel, each running the whole time
loop with two small products and one vectorizable loop per step; weight
gradients gathered in panels during the reverse sweep (kernels/cpu_common.py).
"""
import numpy as np
from numba import njit

from kernels.activations import tanh
from kernels.blas import gemm, product
from kernels.cells import CpuKernels
from kernels.config import JIT
from kernels.cpu_common import finish_step, new_panel
from kernels.fpenv import denormals_off, restore

#: activation codes of the row kernels' ``act`` argument
TANH, RELU = 0, 1
ACTIVATIONS = {"tanh": TANH, "relu": RELU}


@njit(**JIT)
def _cell_forward(z, b):
    """``z : (n, H)`` holds x_t W_ihᵀ + h_{t-1} W_hhᵀ in, h_t out (a function of its own so it vectorizes)."""
    for n in range(z.shape[0]):
        z_n = z[n]
        for j in range(z.shape[1]):
            z_n[j] = tanh(z_n[j] + b[j])


@njit(**JIT)
def _cell_forward_relu(z, b):
    """``z : (n, H)`` holds x_t W_ihᵀ + h_{t-1} W_hhᵀ in, h_t = max(z + b, 0) out."""
    zero = z.dtype.type(0.0)
    for n in range(z.shape[0]):
        z_n = z[n]
        for j in range(z.shape[1]):
            v = z_n[j] + b[j]
            z_n[j] = zero if v < zero else v  # a NaN stays NaN (the comparison fails)


@njit(**JIT)
def _cell_backward(h, dh, dh_next, dz):
    """∂L/∂z_t = (∂L/∂h_t)(1 - h_t²) for ``n`` rows into ``dz : (n, H)``; returns Σ_rows ‖∂L/∂h_t‖."""
    one = h.dtype.type(1.0)
    total = 0.0
    for n in range(h.shape[0]):
        h_n, dh_in, dh_n, d = h[n], dh[n], dh_next[n], dz[n]
        sq = h.dtype.type(0.0)
        for j in range(h.shape[1]):
            v = dh_in[j] + dh_n[j]  # ∂L/∂h_t
            sq += v * v
            d[j] = v * (one - h_n[j] * h_n[j])
        total += np.sqrt(sq)
    return total


@njit(**JIT)
def _cell_backward_relu(h, dh, dh_next, dz):
    """∂L/∂z_t = (∂L/∂h_t)·[h_t > 0] (ReLU) into ``dz : (n, H)``; returns Σ_rows ‖∂L/∂h_t‖."""
    zero = h.dtype.type(0.0)
    total = 0.0
    for n in range(h.shape[0]):
        h_n, dh_in, dh_n, d = h[n], dh[n], dh_next[n], dz[n]
        sq = h.dtype.type(0.0)
        for j in range(h.shape[1]):
            v = dh_in[j] + dh_n[j]  # ∂L/∂h_t
            sq += v * v
            d[j] = v if h_n[j] > zero else zero
        total += np.sqrt(sq)
    return total


@njit(**JIT)
def _forward_rows(x, W_ihT, W_hhT, b, h0, h, act, b0, b1):
    for t in range(x.shape[0]):
        z = h[t, b0:b1]
        gemm(x[t, b0:b1], W_ihT, z, 0.0)
        product(h0[b0:b1] if t == 0 else h[t - 1, b0:b1], W_hhT, z, 1.0)
        if act == RELU:
            _cell_forward_relu(z, b)
        else:
            _cell_forward(z, b)


@njit(**JIT)
def _backward_rows(W_ih, W_hh, x, h0, h, dh, norm_sum, dh0, dW_ih, dW_hh, db, dx, act, b0, b1):
    n = b1 - b0
    dh_next = dh0[b0:b1]  # ∂L/∂h_t arriving from step t+1 (dh0 doubles as the buffer)
    dh_next[:] = 0.0
    panel = new_panel(n, h.shape[2], h.shape[2], x.shape[2], h)
    k = 0  # panel rows filled
    for t in range(h.shape[0] - 1, -1, -1):
        if act == RELU:
            norm_sum[t] = _cell_backward_relu(h[t, b0:b1], dh[t, b0:b1], dh_next, panel[0][k:k + n])
        else:
            norm_sum[t] = _cell_backward(h[t, b0:b1], dh[t, b0:b1], dh_next, panel[0][k:k + n])
        h_prev = h0[b0:b1] if t == 0 else h[t - 1, b0:b1]
        k = finish_step(panel, k, n, W_ih, W_hh, h_prev, x, dh_next, dx, t, b0, dW_ih, dW_hh, db)


@njit(**JIT)
def forward_rows(x, W_ihT, W_hhT, b, h0, h, act, b0, b1):
    """The forward pass on batch rows ``b0:b1``: writes ``h`` there; weights transposed, contiguous;
    ``act`` = :data:`TANH` or :data:`RELU`."""
    old = denormals_off()
    _forward_rows(x, W_ihT, W_hhT, b, h0, h, act, b0, b1)
    restore(old)


@njit(**JIT)
def backward_rows(W_ih, W_hh, x, h0, h, dh, norm_sum, dh0, dW_ih, dW_hh, db, dx, act, b0, b1):
    """BPTT on batch rows ``b0:b1``: adds their weight gradients into ``dW_ih, dW_hh, db`` (this
    chunk's own arrays), writes ``dx[:, b0:b1]`` unless ``dx`` has no rows, and sets
    ``norm_sum[t]`` = Σ_rows ‖∂L/∂h_t‖ and the ``dh0`` rows = ∂L/∂h_0."""
    old = denormals_off()
    _backward_rows(W_ih, W_hh, x, h0, h, dh, norm_sum, dh0, dW_ih, dW_hh, db, dx, act, b0, b1)
    restore(old)


def _forward_chunk(layer, x, fwd, b0, b1):
    """:class:`kernels.cells.CpuKernels` ``forward_rows``: the RNN on batch rows ``b0:b1``."""
    forward_rows(x, layer.W_ihT, layer.W_hhT, layer.b, fwd.initial["h"], fwd.states["h"],
                 ACTIVATIONS[layer.options["activation"]], b0, b1)


def _backward_chunk(layer, x, fwd, dh, dinit, grads, norm_sum, dx, b0, b1):
    """:class:`kernels.cells.CpuKernels` ``backward_rows``: BPTT on batch rows ``b0:b1``."""
    dW_ih, dW_hh, db_ih, db_hh = grads
    backward_rows(layer.W_ih, layer.W_hh_bwd, x, fwd.initial["h"], fwd.states["h"], dh, norm_sum, dinit["h"],
                  dW_ih, dW_hh, db_ih, dx, ACTIVATIONS[layer.options["activation"]], b0, b1)
    db_hh += db_ih  # b_ih and b_hh enter only as their sum: the same gradient (db_hh arrives zeroed)


def state_jacobian(W_hh, options, prev, new, saved):
    """∂h_t/∂h_{t-1} = diag(act'(z_t)) W_hh : (K, H, H) float64 for K steps, from ``new["h"] : (K, H)``
    (``W_hh : (H, H)``; ``prev`` and ``saved`` unused: act' is read off h_t, 1 - h_t² for tanh, [h_t > 0]
    for ReLU)."""
    h = new["h"]
    slope = 1.0 - h * h if options["activation"] == "tanh" else (h > 0).astype(np.float64)
    return slope[:, :, None] * W_hh


CPU_KERNELS = CpuKernels(forward_rows=_forward_chunk, backward_rows=_backward_chunk,
                         dispatchers=(forward_rows, backward_rows), state_jacobian=state_jacobian)
