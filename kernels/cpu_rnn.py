"""Vanilla (Elman, tanh) RNN forward and full BPTT backward on the CPU (``@njit``).

Shapes (PyTorch ``nn.RNN`` layout)::

    x : (T, B, I)    W_ih : (H, I)    W_hh : (H, H)    b : (H,) = b_ih + b_hh    h : (T, B, H)

Equation: ``h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b)``. Same structure as
kernels/cpu_lstm.py: batch chunks in parallel, each running the whole time
loop with two small products and one vectorizable loop per step; weight
gradients gathered in panels during the reverse sweep (kernels/cpu_common.py).
"""
import numpy as np
from numba import njit

from kernels.activations import tanh
from kernels.blas import gemm
from kernels.config import JIT
from kernels.cpu_common import finish_step, new_panel
from kernels.fpenv import denormals_off, restore


@njit(**JIT)
def _cell_forward(z, b):
    """``z : (n, H)`` holds x_t W_ihᵀ + h_{t-1} W_hhᵀ in, h_t out (a function of its own so it vectorizes)."""
    for n in range(z.shape[0]):
        z_n = z[n]
        for j in range(z.shape[1]):
            z_n[j] = tanh(z_n[j] + b[j])


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
def _forward_rows(x, W_ihT, W_hhT, b, h0, h, b0, b1):
    for t in range(x.shape[0]):
        z = h[t, b0:b1]
        gemm(x[t, b0:b1], W_ihT, z, 0.0)
        gemm(h0[b0:b1] if t == 0 else h[t - 1, b0:b1], W_hhT, z, 1.0)
        _cell_forward(z, b)


@njit(**JIT)
def _backward_rows(W_ih, W_hh, x, h0, h, dh, norm_sum, dh0, dW_ih, dW_hh, db, dx, b0, b1):
    n = b1 - b0
    dh_next = dh0[b0:b1]  # ∂L/∂h_t arriving from step t+1 (dh0 doubles as the buffer)
    dh_next[:] = 0.0
    panel = new_panel(n, h.shape[2], h.shape[2], x.shape[2], h)
    k = 0  # panel rows filled
    for t in range(h.shape[0] - 1, -1, -1):
        norm_sum[t] = _cell_backward(h[t, b0:b1], dh[t, b0:b1], dh_next, panel[0][k:k + n])
        h_prev = h0[b0:b1] if t == 0 else h[t - 1, b0:b1]
        k = finish_step(panel, k, n, W_ih, W_hh, h_prev, x, dh_next, dx, t, b0, dW_ih, dW_hh, db)


@njit(**JIT)
def forward_rows(x, W_ihT, W_hhT, b, h0, h, b0, b1):
    """The forward pass on batch rows ``b0:b1``: writes ``h`` there; weights transposed, contiguous."""
    old = denormals_off()
    _forward_rows(x, W_ihT, W_hhT, b, h0, h, b0, b1)
    restore(old)


@njit(**JIT)
def backward_rows(W_ih, W_hh, x, h0, h, dh, norm_sum, dh0, dW_ih, dW_hh, db, dx, b0, b1):
    """BPTT on batch rows ``b0:b1``: adds their weight gradients into ``dW_ih, dW_hh, db`` (this
    chunk's own arrays), writes ``dx[:, b0:b1]`` unless ``dx`` has no rows, and sets
    ``norm_sum[t]`` = Σ_rows ‖∂L/∂h_t‖ and the ``dh0`` rows = ∂L/∂h_0."""
    old = denormals_off()
    _backward_rows(W_ih, W_hh, x, h0, h, dh, norm_sum, dh0, dW_ih, dW_hh, db, dx, b0, b1)
    restore(old)
