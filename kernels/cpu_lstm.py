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
from numba import njit, prange

from kernels.activations import sigmoid, tanh
from kernels.cpu_common import batch_chunks, weight_gradients
from kernels.config import JIT, PARALLEL_JIT


@njit(**JIT)
def forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, b0, b1):
    """:func:`lstm_forward` on batch rows ``b0:b1``."""
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


@njit(**PARALLEL_JIT)
def lstm_forward(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, n_threads):
    """Run the LSTM over the sequence, filling ``h``, ``c`` and ``gates`` in place.

    Parameters
    ----------
    x : (T, B, I)
    W_ihT : (I, 4H), W_hhT : (H, 4H)  transposed weights, C-contiguous
    b : (4H,)  b_ih + b_hh
    h0, c0 : (B, H)
    h, c : (T, B, H)  outputs
    gates : (T, B, 4H)  output, post-activation i, f, g, o
    n_threads : batch chunks run in parallel (``numba.get_num_threads()``)
    """
    bounds = batch_chunks(x.shape[1], n_threads)
    for k in prange(bounds.size - 1):
        forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, bounds[k], bounds[k + 1])


@njit(**JIT)
def backward_rows(W_hh, h0, c0, h, c, gates, dh, dz, norm_sum, dh0, dc0, b0, b1):
    """Reverse sweep of :func:`lstm_backward` on batch rows ``b0:b1``; ``norm_sum[t]`` gets Σ_rows ‖∂L/∂h_t‖."""
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


@njit(**PARALLEL_JIT)
def lstm_backward(x, W_ih, W_hh, h0, c0, h, c, gates, dh, dz, dh_norm, dW_ih, dW_hh, db, dx, dh0, dc0, n_threads):
    """Backpropagate ``dh = ∂L/∂h`` through time; fill every gradient in place.

    Parameters
    ----------
    x, h0, c0, h, c, gates : as in :func:`lstm_forward`
    W_ih : (4H, I), W_hh : (4H, H)  untransposed
    dh : (T, B, H)  ∂L/∂h_t from the loss, for every step
    dz : (T, B, 4H)  workspace: ∂L/∂z_t, the gate pre-activations
    dh_norm : (T,)  output: batch mean of ‖∂L/∂h_t‖ (total, through time)
    dW_ih : (4H, I), dW_hh : (4H, H), db : (4H,), dx : (T, B, I)  outputs
    dh0, dc0 : (B, H)  outputs: ∂L/∂h_0, ∂L/∂c_0
    n_threads : batch chunks run in parallel
    """
    T, B, I = x.shape
    H = h0.shape[1]
    bounds = batch_chunks(B, n_threads)
    norms = np.empty((bounds.size - 1, T))
    for k in prange(bounds.size - 1):
        backward_rows(W_hh, h0, c0, h, c, gates, dh, dz, norms[k], dh0, dc0, bounds[k], bounds[k + 1])
    dh_norm[:] = norms.sum(axis=0) / B
    weight_gradients(x, W_ih, h0, h, dz, dW_ih, dW_hh, db, dx, n_threads)
