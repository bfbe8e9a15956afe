"""Vanilla (Elman, tanh) RNN forward and full BPTT backward on the CPU (``@njit``).

Shapes (PyTorch ``nn.RNN`` layout)::

    x : (T, B, I)    W_ih : (H, I)    W_hh : (H, H)    b : (H,) = b_ih + b_hh    h : (T, B, H)

Equation: ``h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b)``. Same structure as
kernels/cpu_lstm.py: batch chunks in parallel, each running the whole time
loop with two small products and one vectorizable loop per step; weight
gradients as one product over all (t, b) rows.
"""
import numpy as np
from numba import njit

from kernels.activations import tanh
from kernels.blas import gemm
from kernels.config import JIT
from kernels.fpenv import denormals_off, restore


@njit(**JIT)
def _forward_rows(x, W_ihT, W_hhT, b, h0, h, b0, b1):
    H = h0.shape[1]
    for t in range(x.shape[0]):
        z_all = h[t, b0:b1]
        gemm(x[t, b0:b1], W_ihT, z_all, 0.0)
        gemm(h0[b0:b1] if t == 0 else h[t - 1, b0:b1], W_hhT, z_all, 1.0)
        for n in range(b1 - b0):
            z = z_all[n]
            for j in range(H):
                z[j] = tanh(z[j] + b[j])


@njit(**JIT)
def _backward_rows(W_hh, h, dh, dz, norm_sum, dh0, b0, b1):
    T, _, H = h.shape
    one = h.dtype.type(1.0)
    dh_next = dh0[b0:b1]
    dh_next[:] = 0.0
    for t in range(T - 1, -1, -1):
        total = 0.0
        for n in range(b1 - b0):
            row = b0 + n
            d = dz[t, row]
            ht = h[t, row]
            sq = h.dtype.type(0.0)
            for j in range(H):
                v = dh[t, row, j] + dh_next[n, j]
                sq += v * v
                d[j] = v * (one - ht[j] * ht[j])
            total += np.sqrt(sq)
        norm_sum[t] = total
        gemm(dz[t, b0:b1], W_hh, dh_next, 0.0)


@njit(**JIT)
def forward_rows(x, W_ihT, W_hhT, b, h0, h, b0, b1):
    """The forward pass on batch rows ``b0:b1``: writes ``h`` there; weights transposed, contiguous."""
    old = denormals_off()
    _forward_rows(x, W_ihT, W_hhT, b, h0, h, b0, b1)
    restore(old)


@njit(**JIT)
def backward_rows(W_hh, h, dh, dz, norm_sum, dh0, b0, b1):
    """The BPTT reverse sweep on batch rows ``b0:b1``; ``norm_sum[t]`` gets Σ_rows ‖∂L/∂h_t‖."""
    old = denormals_off()
    _backward_rows(W_hh, h, dh, dz, norm_sum, dh0, b0, b1)
    restore(old)
