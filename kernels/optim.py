"""Gradient clipping by global norm, SGD with momentum, Adam and RMSprop (PyTorch's formulas).

All work on one flat parameter buffer and its flat gradient (see kernels/params.py), in one pass
each. Adam and RMSprop share one update, :func:`adaptive_step`: RMSprop is Adam without momentum and
without bias correction (:func:`adaptive_coefficients`).
"""
import numpy as np
from numba import njit

from kernels.config import JIT
from kernels.errors import KernelInputError

#: the optimizers, each with the default of its one option, or None where it takes none
#: ("rmsprop:α", α the smoothing constant of the squared-gradient average, PyTorch's default 0.99)
OPTIMIZERS = {"adam": None, "sgd": None, "rmsprop": 0.99}


def parse_optimizer(text: str) -> tuple[str, float | None]:
    """``"adam"`` | ``"sgd"`` | ``"rmsprop[:alpha]"`` -> ``(name, alpha)`` (alpha None but for RMSprop)."""
    name, _, option = str(text).strip().partition(":")
    if name not in OPTIMIZERS:
        raise KernelInputError(f"unknown optimizer {text!r}: choose adam, sgd or rmsprop[:alpha]")
    if OPTIMIZERS[name] is None:
        if option:
            raise KernelInputError(f"optimizer {name} takes no option, got {text!r}")
        return name, None
    try:
        alpha = float(option) if option else OPTIMIZERS[name]
    except ValueError:
        raise KernelInputError(f"{name}'s smoothing constant must be a number in [0, 1), got {option!r}") from None
    if not 0.0 <= alpha < 1.0:
        raise KernelInputError(f"{name}'s smoothing constant must be in [0, 1), got {alpha:g}")
    return name, alpha


def adaptive_coefficients(optimizer: str, lr: float, betas: tuple[float, float], alpha: float | None,
                          step: int) -> tuple[float, float, float, float]:
    """``(step_size, beta1, beta2, inv_bc2)`` of :func:`adaptive_step` at update ``step`` (1-based): Adam's
    (``torch.optim.Adam``: lr/(1-β1^t), β1, β2, 1/√(1-β2^t)) or RMSprop's (``torch.optim.RMSprop``, no
    momentum, not centered: lr, 0, α, 1)."""
    if optimizer == "rmsprop":
        return lr, 0.0, alpha, 1.0
    b1, b2 = betas
    return lr / (1.0 - b1 ** step), b1, b2, 1.0 / np.sqrt(1.0 - b2 ** step)


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
def adaptive_step(p, g, m, v, step_size, beta1, beta2, inv_bc2, eps):
    """One Adam or RMSprop update on flat arrays (no weight decay), with :func:`adaptive_coefficients`:
    ``m = β1·m + (1-β1)·g``, ``v = β2·v + (1-β2)·g²``, ``p -= step_size·m / (√v·inv_bc2 + eps)``."""
    t = p.dtype.type
    b1, b2, one = t(beta1), t(beta2), t(1.0)
    step_size_, inv_bc2_, eps_ = t(step_size), t(inv_bc2), t(eps)
    for k in range(p.size):
        mk = b1 * m[k] + (one - b1) * g[k]
        vk = b2 * v[k] + (one - b2) * g[k] * g[k]
        m[k] = mk
        v[k] = vk
        p[k] -= step_size_ * mk / (np.sqrt(vk) * inv_bc2_ + eps_)
