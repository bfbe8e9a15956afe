"""LSTM forward and full BPTT backward on the CPU (``@njit``).

Shapes (PyTorch layout, gate rows in order i, f, g, o)::

    x     : (T, B, I)    W_ih : (4H, I)    W_hh : (4H, H)    b : (4H,) = b_ih + b_hh
    h, c  : (T, B, H)    gates: (T, B, 4H) post-activation [i | f | g | o]

Equations, per step t (⊙ element-wise)::

    z_t = x_t W_ihᵀ + h_{t-1} W_hhᵀ + b
    i, f, o = σ(z_i), σ(z_f), σ(z_o);  g = tanh(z_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)

Speed: sequences in a batch are independent, so the batch is split into one
chunk per thread and each thread runs the whole time loop on its rows with
single-threaded products: no synchronisation per step. Per step a thread does
the input projection (kernels/blas.py), the recurrent product (on W_hh packed
once per step for our microkernel where that is faster, kernels/packed.py) and
one fused gate loop that LLVM vectorizes (float32 tanh/σ are polynomial,
kernels/activations.py). The reverse sweep fuses the element-wise work and
gathers the weight gradients in panels of a few steps, each added with one
product (kernels/cpu_common.py). ∂L/∂z is never stored for all steps; the
large buffers (h, c, gates) belong to the caller.
"""
import numpy as np
from numba import njit

from kernels.activations import sigmoid, tanh
from kernels.blas import gemm, product
from kernels.cells import CpuKernels
from kernels.config import JIT
from kernels.cpu_common import finish_step, new_panel
from kernels.fpenv import denormals_off, restore


@njit(**JIT)
def _cell_forward(z, b, c_prev, c, h):
    """One step of the gate loop: ``z : (n, 4H)`` holds x_t W_ihᵀ + h_{t-1} W_hhᵀ in, the gate
    values out; writes ``c, h : (n, H)``.

    A function of its own, with one contiguous slice per gate: inlined into the
    time loop, LLVM kept the loop scalar (measured 15 ns a unit vs 2.5 ns).
    """
    H = c.shape[1]
    for n in range(z.shape[0]):
        z_n = z[n]
        for k in range(4 * H):
            z_n[k] += b[k]
        z_i, z_f, z_g, z_o = z_n[:H], z_n[H:2 * H], z_n[2 * H:3 * H], z_n[3 * H:]
        c_p, c_n, h_n = c_prev[n], c[n], h[n]
        for j in range(H):
            i_, f_, g_, o_ = sigmoid(z_i[j]), sigmoid(z_f[j]), tanh(z_g[j]), sigmoid(z_o[j])
            c_new = f_ * c_p[j] + i_ * g_
            z_i[j], z_f[j], z_g[j], z_o[j] = i_, f_, g_, o_
            c_n[j] = c_new
            h_n[j] = o_ * tanh(c_new)


@njit(**JIT)
def _forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, b0, b1):
    for t in range(x.shape[0]):
        h_prev = h0[b0:b1] if t == 0 else h[t - 1, b0:b1]
        c_prev = c0[b0:b1] if t == 0 else c[t - 1, b0:b1]
        z = gates[t, b0:b1]
        gemm(x[t, b0:b1], W_ihT, z, 0.0)
        product(h_prev, W_hhT, z, 1.0)
        _cell_forward(z, b, c_prev, c[t, b0:b1], h[t, b0:b1])


@njit(**JIT)
def _cell_backward(gates, c_prev, c, dh, dh_next, dc_next, dz):
    """One step of the reverse sweep for ``n`` rows; returns Σ_rows ‖∂L/∂h_t‖.

    ``gates, dz : (n, 4H)``; ``c_prev, c, dh : (n, H)``; ``dh_next, dc_next :
    (n, H)`` carry ∂L/∂h_t, ∂L/∂c_t in from step t+1 and ∂L/∂c_{t-1} out.
    """
    H = c.shape[1]
    one = c.dtype.type(1.0)
    total = 0.0
    for n in range(gates.shape[0]):
        g_n, d_n = gates[n], dz[n]
        gi, gf, gg, go = g_n[:H], g_n[H:2 * H], g_n[2 * H:3 * H], g_n[3 * H:]
        d_i, d_f, d_g, d_o = d_n[:H], d_n[H:2 * H], d_n[2 * H:3 * H], d_n[3 * H:]
        c_p, c_t, dh_in, dh_n, dc_n = c_prev[n], c[n], dh[n], dh_next[n], dc_next[n]
        sq = c.dtype.type(0.0)
        for j in range(H):
            dh_t = dh_in[j] + dh_n[j]                     # ∂L/∂h_t
            sq += dh_t * dh_t
            i_, f_, g_, o_ = gi[j], gf[j], gg[j], go[j]
            tc = tanh(c_t[j])
            dc = dc_n[j] + dh_t * o_ * (one - tc * tc)   # ∂L/∂c_t
            d_i[j] = dc * g_ * i_ * (one - i_)            # ∂L/∂z_i
            d_f[j] = dc * c_p[j] * f_ * (one - f_)        # ∂L/∂z_f
            d_g[j] = dc * i_ * (one - g_ * g_)            # ∂L/∂z_g
            d_o[j] = dh_t * tc * o_ * (one - o_)          # ∂L/∂z_o
            dc_n[j] = dc * f_                             # ∂L/∂c_{t-1}
        total += np.sqrt(sq)
    return total


@njit(**JIT)
def _backward_rows(W_ih, W_hh, x, h0, c0, h, c, gates, dh, norm_sum, dh0, dc0, dW_ih, dW_hh, db, dx, b0, b1):
    n = b1 - b0
    dh_next = dh0[b0:b1]  # ∂L/∂h_t arriving from step t+1 (dh0 doubles as the buffer)
    dc_next = dc0[b0:b1]
    dh_next[:] = 0.0
    dc_next[:] = 0.0
    panel = new_panel(n, gates.shape[2], h.shape[2], x.shape[2], h)
    k = 0  # panel rows filled
    for t in range(h.shape[0] - 1, -1, -1):
        h_prev = h0[b0:b1] if t == 0 else h[t - 1, b0:b1]
        c_prev = c0[b0:b1] if t == 0 else c[t - 1, b0:b1]
        norm_sum[t] = _cell_backward(gates[t, b0:b1], c_prev, c[t, b0:b1], dh[t, b0:b1], dh_next, dc_next,
                                     panel[0][k:k + n])
        k = finish_step(panel, k, n, W_ih, W_hh, h_prev, x, dh_next, dx, t, b0, dW_ih, dW_hh, db)


@njit(**JIT)
def forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, b0, b1):
    """The forward pass on batch rows ``b0:b1``: writes ``h, c, gates`` there.

    Takes the weights transposed and contiguous (``W_ihT : (I, 4H)``, ``W_hhT : (H, 4H)``, or W_hhᵀ
    packed: ``(4H / 16, H, 16)``): OpenBLAS runs that layout twice as fast as a transposed view.
    """
    old = denormals_off()
    _forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, b0, b1)
    restore(old)


@njit(**JIT)
def backward_rows(W_ih, W_hh, x, h0, c0, h, c, gates, dh, norm_sum, dh0, dc0, dW_ih, dW_hh, db, dx, b0, b1):
    """BPTT on batch rows ``b0:b1``: adds their weight gradients into ``dW_ih, dW_hh, db`` (this
    chunk's own arrays), writes ``dx[:, b0:b1]`` unless ``dx`` has no rows, and sets
    ``norm_sum[t]`` = Σ_rows ‖∂L/∂h_t‖ and ``dh0, dc0`` rows = ∂L/∂h_0, ∂L/∂c_0."""
    old = denormals_off()
    _backward_rows(W_ih, W_hh, x, h0, c0, h, c, gates, dh, norm_sum, dh0, dc0, dW_ih, dW_hh, db, dx, b0, b1)
    restore(old)


def _forward_chunk(layer, x, fwd, b0, b1):
    """:class:`kernels.cells.CpuKernels` ``forward_rows``: the LSTM on batch rows ``b0:b1``."""
    forward_rows(x, layer.W_ihT, layer.W_hhT, layer.b, fwd.initial["h"], fwd.initial["c"], fwd.states["h"],
                 fwd.states["c"], fwd.saved["gates"], b0, b1)


def _backward_chunk(layer, x, fwd, dh, dinit, grads, norm_sum, dx, b0, b1):
    """:class:`kernels.cells.CpuKernels` ``backward_rows``: BPTT on batch rows ``b0:b1``."""
    dW_ih, dW_hh, db_ih, db_hh = grads
    backward_rows(layer.W_ih, layer.W_hh_bwd, x, fwd.initial["h"], fwd.initial["c"], fwd.states["h"], fwd.states["c"],
                  fwd.saved["gates"], dh, norm_sum, dinit["h"], dinit["c"], dW_ih, dW_hh, db_ih, dx, b0, b1)
    db_hh += db_ih  # b_ih and b_hh enter only as their sum: the same gradient (db_hh arrives zeroed)


def state_jacobian(W_hh, options, prev, new, saved):
    """∂(h_t, c_t)/∂(h_{t-1}, c_{t-1}) : (K, 2H, 2H) float64 for K steps, blocks [[∂h/∂h, ∂h/∂c], [∂c/∂h,
    ∂c/∂c]], from ``prev``, ``new`` (``"h"``, ``"c"`` : (K, H)) and the steps' gates ``saved["gates"] : (K, 4H)``."""
    H = W_hh.shape[1]
    i, f, g, o = (saved["gates"][:, k * H:(k + 1) * H] for k in range(4))
    W_i, W_f, W_g, W_o = (W_hh[k * H:(k + 1) * H] for k in range(4))
    tc = np.tanh(new["c"])
    dh_dc = o * (1.0 - tc * tc)                                   # ∂h_t/∂c_t (diagonal)
    dc_dh = ((prev["c"] * f * (1.0 - f))[:, :, None] * W_f + (g * i * (1.0 - i))[:, :, None] * W_i
             + (i * (1.0 - g * g))[:, :, None] * W_g)             # ∂c_t/∂h_{t-1} through f, i and g
    J = np.zeros((f.shape[0], 2 * H, 2 * H))
    J[:, :H, :H] = (tc * o * (1.0 - o))[:, :, None] * W_o + dh_dc[:, :, None] * dc_dh
    J[:, H:, :H] = dc_dh
    units = np.arange(H)
    J[:, units, H + units] = dh_dc * f                            # ∂h_t/∂c_{t-1}, diagonal
    J[:, H + units, H + units] = f                                # ∂c_t/∂c_{t-1} = diag(f)
    return J


CPU_KERNELS = CpuKernels(forward_rows=_forward_chunk, backward_rows=_backward_chunk,
                         dispatchers=(forward_rows, backward_rows), state_jacobian=state_jacobian)
