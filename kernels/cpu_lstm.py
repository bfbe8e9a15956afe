"""LSTM forward and full BPTT backward on the CPU (``@njit``).

Shapes (PyTorch layout, gate rows in order i, f, g, o)::

    x     : (T, B, I)    W_ih : (4H, I)    W_hh : (4H, H)    b : (4H,) = b_ih + b_hh
    h, c  : (T, B, H)    gates: (T, B, 4H) post-activation [i | f | g | o]

Equations, per step t (⊙ element-wise)::

    z_t = x_t W_ihᵀ + h_{t-1} W_hhᵀ + b
    i, f, o = σ(z_i), σ(z_f), σ(z_o);  g = tanh(z_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)

Speed: the input projection for all T steps is one matrix product; each step
does one (B, H) x (H, 4H) product and one fused, vectorizable gate loop; the
backward pass fuses the element-wise work into the reverse sweep and forms
the weight gradients as one product over all timesteps. The kernels write
into caller-owned buffers: nothing is allocated per step.
"""
import numpy as np
from numba import njit

from kernels.activations import sigmoid, tanh
from kernels.config import JIT


@njit(**JIT)
def lstm_forward(x, W_ih, W_hhT, b, h0, c0, h, c, gates):
    """Run the LSTM over the sequence, filling ``h``, ``c`` and ``gates`` in place.

    Parameters
    ----------
    x : (T, B, I)
    W_ih : (4H, I)
    W_hhT : (H, 4H)  the transpose of W_hh, C-contiguous
    b : (4H,)  b_ih + b_hh
    h0, c0 : (B, H)
    h, c : (T, B, H)  outputs
    gates : (T, B, 4H)  output, post-activation i, f, g, o
    """
    T, B, I = x.shape
    H = h0.shape[1]
    # input projection of every step at once: (T·B, I) @ (I, 4H)
    np.dot(x.reshape(T * B, I), W_ih.T, gates.reshape(T * B, 4 * H))
    rec = np.empty((B, 4 * H), dtype=x.dtype)  # h_{t-1} W_hhᵀ
    for t in range(T):
        h_prev = h0 if t == 0 else h[t - 1]
        c_prev = c0 if t == 0 else c[t - 1]
        np.dot(h_prev, W_hhT, rec)
        for n in range(B):
            z = gates[t, n]
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
                c[t, n, j] = c_t
                h[t, n, j] = o_ * tanh(c_t)


@njit(**JIT)
def lstm_backward(x, W_ih, W_hh, h0, c0, h, c, gates, dh, dz, dh_norm, dW_ih, dW_hh, db, dx, dh0, dc0):
    """Backpropagate ``dh = ∂L/∂h`` through time; fill every gradient in place.

    Parameters
    ----------
    x, W_ih, W_hh, h0, c0, h, c, gates : as in :func:`lstm_forward` (W_hh : (4H, H) untransposed)
    dh : (T, B, H)  ∂L/∂h_t from the loss, for every step
    dz : (T, B, 4H)  workspace: ∂L/∂z_t, the gate pre-activations
    dh_norm : (T,)  output: batch mean of ‖∂L/∂h_t‖ (total, through time)
    dW_ih : (4H, I), dW_hh : (4H, H), db : (4H,), dx : (T, B, I)  outputs
    dh0, dc0 : (B, H)  outputs: ∂L/∂h_0, ∂L/∂c_0
    """
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1.0)
    dh_next = dh0  # ∂L/∂h_t arriving from step t+1 (dh0 doubles as the buffer)
    dc_next = dc0
    dh_next[:] = 0.0
    dc_next[:] = 0.0
    dh_t = np.empty(H, dtype=x.dtype)
    for t in range(T - 1, -1, -1):
        c_prev = c0 if t == 0 else c[t - 1]
        norm_sum = 0.0
        for n in range(B):
            gz = gates[t, n]
            d = dz[t, n]
            sq = x.dtype.type(0.0)
            for j in range(H):
                v = dh[t, n, j] + dh_next[n, j]
                dh_t[j] = v
                sq += v * v
            norm_sum += np.sqrt(sq)
            for j in range(H):
                i_ = gz[j]
                f_ = gz[H + j]
                g_ = gz[2 * H + j]
                o_ = gz[3 * H + j]
                tc = tanh(c[t, n, j])
                dc = dc_next[n, j] + dh_t[j] * o_ * (one - tc * tc)
                d[j] = dc * g_ * i_ * (one - i_)                 # ∂L/∂z_i
                d[H + j] = dc * c_prev[n, j] * f_ * (one - f_)   # ∂L/∂z_f
                d[2 * H + j] = dc * i_ * (one - g_ * g_)         # ∂L/∂z_g
                d[3 * H + j] = dh_t[j] * tc * o_ * (one - o_)    # ∂L/∂z_o
                dc_next[n, j] = dc * f_
        dh_norm[t] = norm_sum / B
        np.dot(dz[t], W_hh, dh_next)  # ∂L/∂h_{t-1} through the recurrence
    # weight gradients: one product over all timesteps
    TB = T * B
    dz2 = dz.reshape(TB, 4 * H)
    np.dot(dz2.T, x.reshape(TB, I), dW_ih)
    np.dot(dz[0].T, h0, dW_hh)
    if T > 1:
        dW_hh += np.dot(dz[1:].reshape((T - 1) * B, 4 * H).T, h[:-1].reshape((T - 1) * B, H))
    db[:] = dz2.sum(axis=0)
    np.dot(dz2, W_ih, dx.reshape(TB, I))
