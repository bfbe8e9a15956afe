"""Gradient clipping by global norm, SGD with momentum, and Adam (PyTorch's formulas).

All three work on one flat parameter buffer and its flat gradient (see
kernels/params.py), in one pass each.
"""
import numpy as np
from numba import njit

from kernels.config import JIT


@njit(**JIT)
def global_norm(g):
    """L2 norm of a flat gradient ``g : (N,)``, accumulated in float64."""
    s = 0.0
    for k in range(g.size):
        s += g[k] * g[k]
    return np.sqrt(s)


@njit(**JIT)
def clip_by_norm(g, max_norm, norm):
    """Scale ``g`` in place so its norm is at most ``max_norm`` (as ``torch.nn.utils.clip_grad_norm_``)."""
    if max_norm > 0.0:
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            c = g.dtype.type(coef)
            for k in range(g.size):
                g[k] *= c


@njit(**JIT)
def sgd_step(p, g, buf, lr, momentum, step):
    """SGD with momentum (``torch.optim.SGD``): ``buf = μ·buf + g``; ``p -= lr·buf``. ``step`` is 1-based."""
    lr_ = p.dtype.type(lr)
    mu = p.dtype.type(momentum)
    for k in range(p.size):
        if momentum == 0.0:
            b = g[k]
        elif step == 1:
            b = g[k]
            buf[k] = b
        else:
            b = mu * buf[k] + g[k]
            buf[k] = b
        p[k] -= lr_ * b


@njit(**JIT)
def adam_step(p, g, m, v, lr, beta1, beta2, eps, step):
    """Adam (``torch.optim.Adam``, no weight decay) on flat arrays; ``step`` is 1-based."""
    bc1 = 1.0 - beta1 ** step
    bc2_sqrt = np.sqrt(1.0 - beta2 ** step)
    t = p.dtype.type
    b1, b2, one = t(beta1), t(beta2), t(1.0)
    step_size = t(lr / bc1)
    inv_bc2 = t(1.0 / bc2_sqrt)
    eps_ = t(eps)
    for k in range(p.size):
        mk = b1 * m[k] + (one - b1) * g[k]
        vk = b2 * v[k] + (one - b2) * g[k] * g[k]
        m[k] = mk
        v[k] = vk
        p[k] -= step_size * mk / (np.sqrt(vk) * inv_bc2 + eps_)
