"""LSTM forward and full BPTT backward on the CPU (``@njit``).

Shapes (PyTorch layout, gate rows in order i, f, g, o)::

    x     : (T, B, I)    W_ih : (4H, I)    W_hh : (4H, H)    b : (4H,) = b_ih + b_hh
    h, c  : (T, B, H)    gates: (T, B, 4H) post-activation [i | f | g | o]

Equations, per step t (⊙ element-wise)::

    z_t = x_t W_ihᵀ + h_{t-1} W_hhᵀ + b
    i, f, o = σ(z_i), σ(z_f), σ(z_o);  g = tanh(z_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)

Speed: sequences in a batch are independent, so the batch is split into one
chunk per thread (``prange``) and each thread runs the whole time loop on its
rows with single-threaded BLAS: no synchronisation per step. Per step a
thread does two small products and one fused gate loop that LLVM vectorizes
(float32 tanh/σ are polynomial, kernels/activations.py). The backward pass
fuses the element-wise work into the reverse sweep; the weight gradients are
then one product over all (t, b) rows, split over the threads. Callers own
every buffer: nothing is allocated per step.
"""
import numpy as np
from numba import njit

from kernels.activations import sigmoid, tanh
from kernels.config import JIT
from kernels.fpenv import denormals_off, restore


@njit(**JIT)
def _forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, b0, b1):
    T = x.shape[0]
    H = h0.shape[1]
    rec = np.empty((b1 - b0, 4 * H), dtype=x.dtype)  # h_{t-1} W_hhᵀ
    for t in range(T):
        h_prev = h0[b0:b1] if t == 0 else h[t - 1, b0:b1]
        c_prev = c0[b0:b1] if t == 0 else c[t - 1, b0:b1]
        z_all = gates[t, b0:b1]
        np.dot(x[t, b0:b1], W_ihT, z_all)
        np.dot(h_prev, W_hhT, rec)
        for n in range(b1 - b0):
            z = z_all[n]
            r = rec[n]
            for j in range(H):
                i_ = sigmoid(z[j] + r[j] + b[j])
                f_ = sigmoid(z[H + j] + r[H + j] + b[H + j])
                g_ = tanh(z[2 * H + j] + r[2 * H + j] + b[2 * H + j])
                o_ = sigmoid(z[3 * H + j] + r[3 * H + j] + b[3 * H + j])
                c_t = f_ * c_prev[n, j] + i_ * g_
                z[j] = i_
                z[H + j] = f_
                z[2 * H + j] = g_
                z[3 * H + j] = o_
                c[t, b0 + n, j] = c_t
                h[t, b0 + n, j] = o_ * tanh(c_t)


@njit(**JIT)
def _backward_rows(W_hh, h0, c0, h, c, gates, dh, dz, norm_sum, dh0, dc0, b0, b1):
    T = h.shape[0]
    H = h0.shape[1]
    one = h.dtype.type(1.0)
    dh_next = dh0[b0:b1]  # ∂L/∂h_t arriving from step t+1 (dh0 doubles as the buffer)
    dc_next = dc0[b0:b1]
    dh_next[:] = 0.0
    dc_next[:] = 0.0
    dh_t = np.empty(H, dtype=h.dtype)
    for t in range(T - 1, -1, -1):
        c_prev = c0 if t == 0 else c[t - 1]
        total = 0.0
        for n in range(b1 - b0):
            row = b0 + n
            gz = gates[t, row]
            d = dz[t, row]
            sq = h.dtype.type(0.0)
            for j in range(H):
                v = dh[t, row, j] + dh_next[n, j]
                dh_t[j] = v
                sq += v * v
            total += np.sqrt(sq)
            for j in range(H):
                i_ = gz[j]
                f_ = gz[H + j]
                g_ = gz[2 * H + j]
                o_ = gz[3 * H + j]
                tc = tanh(c[t, row, j])
                dc = dc_next[n, j] + dh_t[j] * o_ * (one - tc * tc)
                d[j] = dc * g_ * i_ * (one - i_)                   # ∂L/∂z_i
                d[H + j] = dc * c_prev[row, j] * f_ * (one - f_)   # ∂L/∂z_f
                d[2 * H + j] = dc * i_ * (one - g_ * g_)           # ∂L/∂z_g
                d[3 * H + j] = dh_t[j] * tc * o_ * (one - o_)      # ∂L/∂z_o
                dc_next[n, j] = dc * f_
        norm_sum[t] = total
        np.dot(dz[t, b0:b1], W_hh, dh_next)  # ∂L/∂h_{t-1} through the recurrence


@njit(**JIT)
def forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, b0, b1):
    """:func:`lstm_forward` on batch rows ``b0:b1``."""
    old = denormals_off()
    _forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, b0, b1)
    restore(old)


@njit(**JIT)
def backward_rows(W_hh, h0, c0, h, c, gates, dh, dz, norm_sum, dh0, dc0, b0, b1):
    """Reverse sweep of :func:`lstm_backward` on batch rows ``b0:b1``; ``norm_sum[t]`` gets Σ_rows ‖∂L/∂h_t‖."""
    old = denormals_off()
    _backward_rows(W_hh, h0, c0, h, c, gates, dh, dz, norm_sum, dh0, dc0, b0, b1)
    restore(old)
