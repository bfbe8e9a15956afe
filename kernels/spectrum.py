"""Jacobian spectra of a recurrent cell on one sequence (Pascanu et al. 2013): why a gradient vanishes or not.

Two measurements, both in float64 from a batch-1 forward run (``kernels.results.Forward``):

- :func:`weight_sigmas`: σ_max of ``W_hh`` and of each gate's row block, beside the vanishing bound 1/γ
  (γ the largest slope of the block's activation: 1 for tanh and ReLU, 1/4 for σ). For the RNN,
  σ_max(W_hh) < 1 is Pascanu's sufficient condition for the gradient to vanish.
- :func:`product_spectrum`: log10 σ_max of P_t = ∂s_{L-1}/∂s_t for every t, per state block (∂h/∂h; for the
  LSTM also ∂c/∂c), where s stacks the cell's carried states and J_t = ∂s_t/∂s_{t-1} is the cell's
  ``state_jacobian``. P_t = P_{t+1} J_{t+1} is built from the end backwards, one (S·H)³ product a step,
  rescaled each step with its log scale kept apart (an RNN's product of 1,000 steps, ~1e-300, is still
  measured). σ_max comes from a power iteration on PᵀP (:func:`_top_singular`) warm-started from the
  previous t's vector, O((S·H)²) an iteration, not an SVD (O((S·H)³) with a constant ten times a
  product's). The chain runs in one ``@njit`` function: per step, a product and a few matrix-vector ones.

Cost per call: about L·(S·H)³ multiply-adds; beside training, where one step costs ~3·L·B·G·H·(I+H)
multiply-adds, that is a small fraction of the time between two probes unless probes come every few
steps of a large H and a small batch: :func:`spectrum_interval` then spaces the spectra out so that they
take at most :data:`BUDGET` of the training time.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from kernels.cells import get as get_cell
from kernels.config import JIT

#: power iterations per σ_max at most, and the relative residual that ends them
MAX_ITERATIONS, TOLERANCE = 200, 1e-8
#: entries of the rescaled product (largest 1) below this are set to 0
TINY = 1e-150


#: the share of training time the spectra may take, and the state size below which they are always taken
#: (see :func:`spectrum_interval`)
BUDGET, SMALL_STATE = 0.05, 64


def spectrum_interval(cell: str, hidden: int, n_in: int, batch: int, probe_every: int) -> int:
    """Take the spectrum at every k-th probe: the smallest k for which its multiply-adds, L·(S·H)³, are at
    most :data:`BUDGET` of the training's between two of them, k·probe_every steps of ~3·L·B·G·H·(I+H)
    (forward and backward). 1 for the usual configurations (an LSTM with H = 64, B = 32, a probe every 50
    steps: 2.6%); 424 for an LSTM with H = 256, B = 8 probed at every step. L cancels. A state of at most
    :data:`SMALL_STATE` numbers costs little however often: every probe."""
    spec = get_cell(cell)
    n = len(spec.states) * hidden
    if n <= SMALL_STATE:
        return 1
    per_probe = n ** 3
    per_step = 3 * batch * spec.rows(hidden) * (n_in + hidden)
    return max(1, math.ceil(per_probe / (BUDGET * per_step * max(1, probe_every))))


def weight_labels(cell: str) -> tuple[str, ...]:
    """Names of :func:`weight_sigmas`' entries: ``("W_hh",)`` and then ``"W_h" + gate`` per gate."""
    return ("W_hh",) + tuple(f"W_h{g}" for g in get_cell(cell).gates)


def vanishing_bounds(cell: str) -> np.ndarray:
    """The bound 1/γ for each entry of :func:`weight_sigmas` : ``(1 + n_gates,)`` float64.

    γ is the largest slope of what the block feeds: tanh and ReLU 1, σ 1/4. The whole ``W_hh`` of a gated
    cell mixes both and has no single bound (NaN)."""
    spec = get_cell(cell)
    if not spec.gates:
        return np.ones(1)
    return np.array([math.nan] + [1.0 if g in spec.tanh_gates else 4.0 for g in spec.gates])


def weight_sigmas(cell: str, W_hh) -> np.ndarray:
    """σ_max of ``W_hh : (G, H)`` and of each gate's ``(H, H)`` row block : ``(1 + n_gates,)`` float64."""
    W = np.asarray(W_hh, dtype=np.float64)
    H = W.shape[1]
    blocks = [W] + [W[k * H:(k + 1) * H] for k in range(get_cell(cell).n_gates)]
    return np.array([np.linalg.norm(b, 2) for b in blocks])


def has_spectrum(cell: str) -> bool:
    """Whether ``cell``'s CPU kernels give a state Jacobian (every built-in cell does)."""
    return get_cell(cell).cpu_kernels().state_jacobian is not None


def product_spectrum(cell: str, W_hh, fwd, options: dict | None = None) -> np.ndarray:
    """log10 σ_max(∂s_{L-1}/∂s_t) for t = 0 .. L-1, per state : ``(L, S)`` float64 (S = the cell's states,
    ``h`` first; the last row is 0, the identity). ``fwd`` is a batch-1 run (its row 0 is used);
    ``-inf`` where the product is exactly zero (a ReLU RNN whose units all went dark), NaN where it
    overflowed. The step Jacobians are made in NumPy a chunk of steps at a time, the chain in
    :func:`_extend`."""
    spec = get_cell(cell)
    jacobian = spec.cpu_kernels().state_jacobian
    W = np.asarray(W_hh, dtype=np.float64)
    H = W.shape[1]
    options = spec.check_options(options)
    seq = {s: np.asarray(fwd.states[s][:, 0], dtype=np.float64) for s in spec.states}   # (L, H) each
    saved = {a: np.asarray(v[:, 0], dtype=np.float64) for a, v in fwd.saved.items()}     # (L, width·H)
    L, S = seq["h"].shape[0], len(spec.states)
    n = S * H
    out = np.zeros((L, S))
    P, log_scale = np.eye(n), np.zeros(1)
    vectors = np.random.default_rng(0).standard_normal((S, H))
    chunk = max(1, CHUNK_FLOATS // (n * n))
    end = L - 1                              # rows t < end are still to do, from end - 1 down
    while end > 0:
        start = max(0, end - chunk)
        J = jacobian(W, options, {s: seq[s][start:end] for s in spec.states},
                     {s: seq[s][start + 1:end + 1] for s in spec.states},
                     {a: v[start + 1:end + 1] for a, v in saved.items()})        # J[k] = ∂s_{start+k+1}/∂s_{start+k}
        if not _extend(np.ascontiguousarray(J), P, log_scale, vectors, H, out[start:end]):
            break
        end = start
    return out


#: the step Jacobians made at once hold at most this many float64 (32 MB)
CHUNK_FLOATS = 1 << 22


@njit(**JIT)
def _extend(J, P, log_scale, vectors, H, out):
    """Extend the product ``P : (n, n)`` by ``J : (K, n, n)``, last first: for k = K-1 .. 0, P ← P·J[k],
    rescaled to a largest entry of 1 (its log10 added to ``log_scale[0]``), and ``out[k, s]`` = log10 σ_max
    of P's diagonal block s (H×H), from the warm start ``vectors[s] : (H,)`` (updated). False when P
    became zero (the rest of ``out`` up to k: -inf) or not finite (NaN): the product stops there."""
    S = vectors.shape[0]
    for k in range(J.shape[0] - 1, -1, -1):
        P[:] = P @ J[k]
        scale = np.abs(P).max()
        if scale == 0.0 or not np.isfinite(scale):
            out[:k + 1] = -np.inf if scale == 0.0 else np.nan
            return False
        P /= scale
        for i in range(P.shape[0]):      # directions 1e150 below the top: float64 denormals run ~100x slower
            for j in range(P.shape[1]):
                if abs(P[i, j]) < TINY:
                    P[i, j] = 0.0
        log_scale[0] += np.log10(scale)
        for s in range(S):
            sigma = _top_singular(np.ascontiguousarray(P[s * H:(s + 1) * H, s * H:(s + 1) * H]), vectors[s])
            out[k, s] = log_scale[0] + np.log10(sigma) if sigma > 0.0 else -np.inf
    return True


@njit(**JIT)
def _top_singular(A, v):
    """σ_max of ``A : (m, n)`` by power iteration on AᵀA from ``v : (n,)`` (left holding the top right
    singular vector). It stops when ‖AᵀAv - σ²v‖ < TOLERANCE·σ² (σ² is then that close to an eigenvalue
    of AᵀA, the top one from a warm start); an exact SVD where the top two singular values lie too close
    to settle in MAX_ITERATIONS (an LSTM's cell state, where many forget gates sit near 1)."""
    v /= max(np.sqrt(np.sum(v * v)), 1e-300)
    for _ in range(MAX_ITERATIONS):
        w = A.T @ (A @ v)
        sigma2 = np.sum(w * v)              # Rayleigh quotient vᵀAᵀAv
        if sigma2 <= 0.0:
            return 0.0
        if np.sqrt(np.sum((w - sigma2 * v) ** 2)) <= TOLERANCE * sigma2:
            v[:] = w / np.sqrt(np.sum(w * w))
            return np.sqrt(sigma2)
        v[:] = w / np.sqrt(np.sum(w * w))
    _, s, vt = np.linalg.svd(A)
    v[:] = vt[0]
    return s[0]
