"""Vanilla (Elman, tanh) RNN forward and full BPTT backward on the CPU (``@njit``).

Shapes (PyTorch ``nn.RNN`` layout)::

    x : (T, B, I)    W_ih : (H, I)    W_hh : (H, H)    b : (H,) = b_ih + b_hh    h : (T, B, H)

Equation: ``h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b)``. Same structure as
kernels/cpu_lstm.py: one input projection for all steps, one product and one
vectorizable loop per step, weight gradients as one product over all steps.
"""
import numpy as np
from numba import njit

from kernels.activations import tanh
from kernels.config import JIT


@njit(**JIT)
def rnn_forward(x, W_ih, W_hhT, b, h0, h):
    """Run the RNN over the sequence, filling ``h`` in place.

    Parameters
    ----------
    x : (T, B, I)
    W_ih : (H, I)
    W_hhT : (H, H)  the transpose of W_hh, C-contiguous
    b : (H,)  b_ih + b_hh
    h0 : (B, H)
    h : (T, B, H)  output
    """
    T, B, I = x.shape
    H = h0.shape[1]
    np.dot(x.reshape(T * B, I), W_ih.T, h.reshape(T * B, H))  # input projection of every step
    rec = np.empty((B, H), dtype=x.dtype)
    for t in range(T):
        np.dot(h0 if t == 0 else h[t - 1], W_hhT, rec)
        for n in range(B):
            z = h[t, n]
            r = rec[n]
            for j in range(H):
                z[j] = tanh(z[j] + r[j] + b[j])


@njit(**JIT)
def rnn_backward(x, W_ih, W_hh, h0, h, dh, dz, dh_norm, dW_ih, dW_hh, db, dx, dh0):
    """Backpropagate ``dh = ∂L/∂h`` through time; fill every gradient in place.

    Parameters
    ----------
    x, W_ih, h0, h : as in :func:`rnn_forward`;  W_hh : (H, H) untransposed
    dh : (T, B, H)  ∂L/∂h_t from the loss
    dz : (T, B, H)  workspace: ∂L/∂z_t, the pre-activations
    dh_norm : (T,)  output: batch mean of ‖∂L/∂h_t‖ (total, through time)
    dW_ih : (H, I), dW_hh : (H, H), db : (H,), dx : (T, B, I), dh0 : (B, H)  outputs
    """
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1.0)
    dh_next = dh0
    dh_next[:] = 0.0
    for t in range(T - 1, -1, -1):
        norm_sum = 0.0
        for n in range(B):
            d = dz[t, n]
            ht = h[t, n]
            sq = x.dtype.type(0.0)
            for j in range(H):
                v = dh[t, n, j] + dh_next[n, j]
                sq += v * v
                d[j] = v * (one - ht[j] * ht[j])
            norm_sum += np.sqrt(sq)
        dh_norm[t] = norm_sum / B
        np.dot(dz[t], W_hh, dh_next)
    TB = T * B
    dz2 = dz.reshape(TB, H)
    np.dot(dz2.T, x.reshape(TB, I), dW_ih)
    np.dot(dz[0].T, h0, dW_hh)
    if T > 1:
        dW_hh += np.dot(dz[1:].reshape((T - 1) * B, H).T, h[:-1].reshape((T - 1) * B, H))
    db[:] = dz2.sum(axis=0)
    np.dot(dz2, W_ih, dx.reshape(TB, I))
