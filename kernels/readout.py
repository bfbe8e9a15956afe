"""Linear readout on the hidden states and the task losses, with their gradients.

Loss kinds (``window`` = how many final steps are read out):

- ``"mse_last"``: one output at the last step, mean squared error; ``y : (B,)``
- ``"ce_last"``: K logits at the last step, softmax cross-entropy; ``y : (B,)`` int
- ``"ce_window"``: K logits at each of the last ``window`` steps, cross-entropy
  averaged over window and batch; ``y : (window, B)`` int
"""
import numpy as np

from kernels.errors import KernelInputError

LOSS_KINDS = ("mse_last", "ce_last", "ce_window")


def readout_loss(kind, h, W, b, y, window, dh, dW, db, count=None):
    """Loss of the readout ``out = h W_rᵀ + b_r``; writes ∂L/∂h (window rows only), ∂L/∂W_r, ∂L/∂b_r.

    Every loss is a mean of per-sequence terms, so it can be computed on some
    of a batch's sequences: pass the whole batch's ``count`` (B, or window·B
    for ``ce_window``) and the parts' losses and gradients add up to the batch's.

    Parameters
    ----------
    kind : str  one of :data:`LOSS_KINDS`
    h : (T, B, H)  hidden states
    W : (K, H), b : (K,)  readout weight and bias
    y : targets, see the module docstring
    window : int  steps read out (1 for the ``*_last`` kinds)
    dh : (T, B, H)  output; only its last ``window`` rows are written (callers keep the rest zero)
    dW : (K, H), db : (K,)  outputs
    count : int, optional  terms the loss averages over (default: those of this call, window·B)

    Returns
    -------
    loss : float
    out : (B, K) for ``*_last``, (window, B, K) for ``ce_window``  the readout outputs
    """
    T, B, H = h.shape
    K = W.shape[0]
    if kind not in LOSS_KINDS:
        raise KernelInputError(f"unknown loss kind {kind!r}: choose one of {', '.join(LOSS_KINDS)}")
    if not 1 <= window <= T:
        raise KernelInputError(f"readout window {window} must be between 1 and T={T}")
    hw = h[T - window:].reshape(window * B, H)               # (N, H), N = window·B
    out = hw @ W.T + b                                       # (N, K)
    count = window * B if count is None else count
    if kind == "mse_last":
        diff = out[:, 0] - np.asarray(y, dtype=h.dtype).reshape(-1)
        loss = float(np.sum(diff.astype(np.float64) ** 2) / count)
        dout = (2.0 / count) * diff[:, None]
    else:
        labels = np.asarray(y).reshape(-1)
        shifted = out - out.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(labels.size)
        loss = float(-np.sum(np.log(np.maximum(p[rows, labels].astype(np.float64), 1e-300))) / count)
        dout = p
        dout[rows, labels] -= 1.0
        dout /= count
    dout = dout.astype(h.dtype, copy=False)
    np.dot(dout.T, hw, out=dW)
    db[:] = dout.sum(axis=0)
    dh[T - window:] = (dout @ W).reshape(window, B, H)
    out = out.reshape(window, B, K) if kind == "ce_window" else out
    return loss, out
