"""GRU forward and full BPTT backward on the CPU (``@njit``), exactly ``torch.nn.GRU``.

Shapes (PyTorch layout, gate rows in order r, z, n)::

    x     : (T, B, I)    W_ih : (3H, I)    W_hh : (3H, H)    b_ih, b_hh : (3H,)
    h     : (T, B, H)    gates: (T, B, 3H) post-activation [r | z | n]
    hn    : (T, B, H)    W_hn h_{t-1} + b_hn, kept for BPTT (∂L/∂r needs it)

Equations, per step t (⊙ element-wise; the "linear before reset" form of nn.GRU)::

    r = σ(x_t W_irᵀ + b_ir + h_{t-1} W_hrᵀ + b_hr)
    z = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)
    n = tanh(x_t W_inᵀ + b_in + r ⊙ (h_{t-1} W_hnᵀ + b_hn))
    h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

Because b_hn sits inside r ⊙ (...), the two bias vectors get different
gradients on the n rows (∂L/∂b_in = ∂L/∂a_n, ∂L/∂b_hn = ∂L/∂a_n ⊙ r), and so do
the two products: the input side sees ∂L/∂z_i = [dr, dz, dn], the recurrent side
∂L/∂z_h = [dr, dz, dn ⊙ r]. One recurrent product per step serves (its n block is
written to ``hn`` instead of being added to the input projection).

Design as kernels/cpu_lstm.py: batch chunks on threads, each running the whole
time loop; the per-step input and recurrent products (kernels/blas.py, the recurrent
ones on packed weights where faster: kernels/packed.py) straight into the gates buffer; one vectorizable gate loop per step in its own
function; the weight gradients gathered in split panels (kernels/cpu_common.py);
no allocation per step.
"""
import numpy as np
from numba import njit

from kernels.activations import sigmoid, tanh
from kernels.blas import columns, gemm, product
from kernels.cells import CpuKernels
from kernels.config import JIT
from kernels.cpu_common import finish_split_step, new_split_panel
from kernels.fpenv import denormals_off, restore


@njit(**JIT)
def _cell_forward(z, hn, b_ih, b_hh, h_prev, h):
    """One step of the gate loop for ``n`` rows.

    ``z : (n, 3H)`` holds x_t W_ihᵀ + [h_{t-1} W_hrᵀ, h_{t-1} W_hzᵀ, 0] in, the gates r, z, n out;
    ``hn : (n, H)`` holds h_{t-1} W_hnᵀ in, + b_hn out; writes ``h : (n, H)``.
    """
    H = h.shape[1]
    b_ir, b_iz, b_in = b_ih[:H], b_ih[H:2 * H], b_ih[2 * H:]
    b_hr, b_hz, b_hn = b_hh[:H], b_hh[H:2 * H], b_hh[2 * H:]
    for m in range(z.shape[0]):
        z_m = z[m]
        z_r, z_z, z_n = z_m[:H], z_m[H:2 * H], z_m[2 * H:]
        a_m, hp, h_m = hn[m], h_prev[m], h[m]
        for j in range(H):
            r_ = sigmoid(z_r[j] + b_ir[j] + b_hr[j])
            u_ = sigmoid(z_z[j] + b_iz[j] + b_hz[j])
            a_ = a_m[j] + b_hn[j]
            n_ = tanh(z_n[j] + b_in[j] + r_ * a_)
            z_r[j], z_z[j], z_n[j] = r_, u_, n_
            a_m[j] = a_
            h_m[j] = n_ + u_ * (hp[j] - n_)


@njit(**JIT)
def _forward_rows(x, W_ihT, W_hhT, b_ih, b_hh, h0, h, gates, hn, b0, b1):
    H = h.shape[2]
    W_hrzT, W_hnT = columns(W_hhT, 0, 2 * H), columns(W_hhT, 2 * H, 3 * H)
    for t in range(x.shape[0]):
        h_prev = h0[b0:b1] if t == 0 else h[t - 1, b0:b1]
        z = gates[t, b0:b1]
        a = hn[t, b0:b1]
        gemm(x[t, b0:b1], W_ihT, z, 0.0)
        product(h_prev, W_hrzT, z[:, :2 * H], 1.0)
        product(h_prev, W_hnT, a, 0.0)
        _cell_forward(z, a, b_ih, b_hh, h_prev, h[t, b0:b1])


@njit(**JIT)
def _cell_backward(gates, hn, h_prev, dh, dh_next, dzi, dzh):
    """One step of the reverse sweep for ``n`` rows; returns Σ_rows ‖∂L/∂h_t‖.

    ``gates, dzi, dzh : (n, 3H)``; ``hn, h_prev, dh : (n, H)``; ``dh_next : (n, H)`` carries
    ∂L/∂h_t in from step t+1 and the direct share ∂L/∂h_t ⊙ z of ∂L/∂h_{t-1} out.
    """
    H = hn.shape[1]
    one = hn.dtype.type(1.0)
    total = 0.0
    for m in range(gates.shape[0]):
        g_m, di_m, dh_m = gates[m], dzi[m], dzh[m]
        gr, gz, gn = g_m[:H], g_m[H:2 * H], g_m[2 * H:]
        di_r, di_z, di_n = di_m[:H], di_m[H:2 * H], di_m[2 * H:]
        dh_r, dh_z, dh_n = dh_m[:H], dh_m[H:2 * H], dh_m[2 * H:]
        a_m, hp, dh_in, carry = hn[m], h_prev[m], dh[m], dh_next[m]
        sq = hn.dtype.type(0.0)
        for j in range(H):
            v = dh_in[j] + carry[j]                    # ∂L/∂h_t
            sq += v * v
            r_, u_, n_ = gr[j], gz[j], gn[j]
            dn = v * (one - u_) * (one - n_ * n_)      # ∂L/∂a_n (inside tanh)
            du = v * (hp[j] - n_) * u_ * (one - u_)    # ∂L/∂z_z (inside σ)
            dr = dn * a_m[j] * r_ * (one - r_)         # ∂L/∂z_r (inside σ)
            di_r[j], di_z[j], di_n[j] = dr, du, dn     # input side: ∂L/∂(x W_ihᵀ + b_ih)
            dh_r[j], dh_z[j], dh_n[j] = dr, du, dn * r_  # recurrent side: ∂L/∂(h W_hhᵀ + b_hh)
            carry[j] = v * u_                          # direct path of ∂L/∂h_{t-1}
        total += np.sqrt(sq)
    return total


@njit(**JIT)
def _backward_rows(W_ih, W_hh, x, h0, h, gates, hn, dh, norm_sum, dh0, dW_ih, dW_hh, db_ih, db_hh, dx, b0, b1):
    n = b1 - b0
    dh_next = dh0[b0:b1]  # ∂L/∂h_t arriving from step t+1 (dh0 doubles as the buffer)
    dh_next[:] = 0.0
    panel = new_split_panel(n, gates.shape[2], h.shape[2], x.shape[2], h)
    k = 0  # panel rows filled
    for t in range(h.shape[0] - 1, -1, -1):
        h_prev = h0[b0:b1] if t == 0 else h[t - 1, b0:b1]
        norm_sum[t] = _cell_backward(gates[t, b0:b1], hn[t, b0:b1], h_prev, dh[t, b0:b1], dh_next,
                                     panel[0][k:k + n], panel[1][k:k + n])
        k = finish_split_step(panel, k, n, W_ih, W_hh, h_prev, x, dh_next, dx, t, b0, dW_ih, dW_hh, db_ih, db_hh)


@njit(**JIT)
def forward_rows(x, W_ihT, W_hhT, b_ih, b_hh, h0, h, gates, hn, b0, b1):
    """The forward pass on batch rows ``b0:b1``: writes ``h, gates, hn`` there.

    Takes the weights transposed and contiguous (``W_ihT : (I, 3H)``, ``W_hhT : (H, 3H)``) and the
    two bias vectors (they are not interchangeable: b_hn is inside r ⊙ (...)).
    """
    old = denormals_off()
    _forward_rows(x, W_ihT, W_hhT, b_ih, b_hh, h0, h, gates, hn, b0, b1)
    restore(old)


@njit(**JIT)
def backward_rows(W_ih, W_hh, x, h0, h, gates, hn, dh, norm_sum, dh0, dW_ih, dW_hh, db_ih, db_hh, dx, b0, b1):
    """BPTT on batch rows ``b0:b1``: adds their gradients into ``dW_ih, dW_hh, db_ih, db_hh`` (this
    chunk's own arrays), writes ``dx[:, b0:b1]`` unless ``dx`` has no rows, and sets
    ``norm_sum[t]`` = Σ_rows ‖∂L/∂h_t‖ and the ``dh0`` rows = ∂L/∂h_0."""
    old = denormals_off()
    _backward_rows(W_ih, W_hh, x, h0, h, gates, hn, dh, norm_sum, dh0, dW_ih, dW_hh, db_ih, db_hh, dx, b0, b1)
    restore(old)


def _forward_chunk(layer, x, fwd, b0, b1):
    """:class:`kernels.cells.CpuKernels` ``forward_rows``: the GRU on batch rows ``b0:b1``."""
    forward_rows(x, layer.W_ihT, layer.W_hhT, layer.b_ih, layer.b_hh, fwd.initial["h"], fwd.states["h"],
                 fwd.saved["gates"], fwd.saved["hn"], b0, b1)


def _backward_chunk(layer, x, fwd, dh, dinit, grads, norm_sum, dx, b0, b1):
    """:class:`kernels.cells.CpuKernels` ``backward_rows``: BPTT on batch rows ``b0:b1``."""
    dW_ih, dW_hh, db_ih, db_hh = grads
    backward_rows(layer.W_ih, layer.W_hh_bwd, x, fwd.initial["h"], fwd.states["h"], fwd.saved["gates"],
                  fwd.saved["hn"], dh, norm_sum, dinit["h"], dW_ih, dW_hh, db_ih, db_hh, dx, b0, b1)


def state_jacobian(W_hh, options, prev, new, saved):
    """∂h_t/∂h_{t-1} : (K, H, H) float64 for K steps, from ``prev["h"] : (K, H)``, the steps' gates
    ``saved["gates"] : (K, 3H)`` and ``saved["hn"] : (K, H)`` = W_hn h_{t-1} + b_hn."""
    H = W_hh.shape[1]
    r, z, n = (saved["gates"][:, k * H:(k + 1) * H] for k in range(3))
    W_r, W_z, W_n = (W_hh[k * H:(k + 1) * H] for k in range(3))
    da_n = r[:, :, None] * W_n + (saved["hn"] * r * (1.0 - r))[:, :, None] * W_r   # ∂a_n/∂h_{t-1}, n = tanh(a_n)
    J = ((1.0 - z) * (1.0 - n * n))[:, :, None] * da_n + ((prev["h"] - n) * z * (1.0 - z))[:, :, None] * W_z
    units = np.arange(H)
    J[:, units, units] += z
    return J


CPU_KERNELS = CpuKernels(forward_rows=_forward_chunk, backward_rows=_backward_chunk,
                         dispatchers=(forward_rows, backward_rows), state_jacobian=state_jacobian)
