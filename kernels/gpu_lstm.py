"""LSTM forward and full BPTT backward on an NVIDIA GPU (``numba.cuda``).

Same shapes, gate order and formulas as kernels/cpu_lstm.py::

    x : (T, B, I)   W_ih : (4H, I)   W_hh : (4H, H)   b : (4H,) = b_ih + b_hh
    hs, cs : (T+1, B, H)   slot 0 holds h_0 / c_0, slot t+1 holds h_t / c_t
    gates  : (T, B, 4H)    post-activation [i | f | g | o]

Speed design
------------
- **Input projection once.** ``x W_ihᵀ`` for all T steps is one tiled GEMM
  (T·B x I x 4H) written straight into ``gates``; the sequential loop only does
  the recurrent part.
- **One fused kernel per timestep, forward.** :func:`lstm_step_fwd` computes the
  recurrent product ``h_{t-1} W_hhᵀ`` as a tiled matrix product (block = TILE
  batch rows x TILE hidden units; it stages one tile of h_{t-1} and the matching
  tile of *all four gate blocks* of W_hh in shared memory, so each thread
  accumulates z_i, z_f, z_g, z_o of its own (n, j)) and then, in the same kernel,
  adds the input projection and bias, applies σ/tanh, updates c_t and writes
  h_t. The gate pre-activations never go to global memory; per step there is
  one launch and one read of W_hh per block.
- **One fused kernel per timestep, backward.** :func:`lstm_step_bwd` computes
  ``∂L/∂h_t = dh_t + dz_{t+1} W_hh`` as a tiled product and, in its epilogue, the
  four ∂L/∂z, the carried ∂L/∂c and the total ∂L/∂h_t for the gradient-flow plot.
  ``dc`` is carried in place (each thread owns its (n, j)).
- **Weight gradients batched over time.** After the reverse sweep ``dW_ih =
  dzᵀ x``, ``dW_hh = dzᵀ h_{0..T-1}`` (one product thanks to the ``hs`` layout
  with h_0 in slot 0), ``db`` (column sums) and ``dx = dz W_ih`` are four large
  launches instead of 4·T small ones.
- **Persistent RNN (not done yet, the next step).** For small H the per-step work
  is a few blocks, so the loop is bound by launch latency (~5 µs + numba's
  Python dispatch per step) and by re-reading W_hh from L2 each step. Diamos et
  al. (2016) keep W_hh in registers/shared memory for the whole sequence in one
  persistent kernel with a grid-wide barrier per step; 4H x H float32 fits in one
  SM's shared memory up to H ≈ 100 (228 KB on H100), or across a cooperative grid
  for larger H. That kernel (and/or capturing the T launches in a CUDA graph) is
  the planned follow-up; it needs a real GPU to tune and verify.

Launch geometry: block (TILE, TILE) = (config.CUDA_TILE,)*2, grid
(ceil(H/TILE), ceil(B/TILE)); read at launch time.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, types

from kernels.cells import CudaKernels
from kernels.gpu_common import (cdiv, check_device, fill, get_kernels, launch_gemm, numba_dtype, ptx_kernels,
                                 settings, weight_gradients)


def make_kernels(dtype, TILE: int, TPB: int) -> dict:
    """The LSTM step kernels (Python functions) for one dtype and tile size."""
    DT = numba_dtype(dtype)
    TP = TILE + 1  # padded row of a shared tile (no bank conflicts on transposed stores)
    ZERO = np.dtype(dtype).type(0.0)
    ONE = np.dtype(dtype).type(1.0)
    HALF = np.dtype(dtype).type(0.5)

    def lstm_step_fwd(hs, cs, W_hh, b, gates, t):
        """Step t: gates[t] holds x_t W_ihᵀ in, σ/tanh gates out; writes hs[t+1], cs[t+1]."""
        sh = cuda.shared.array((TILE, TP), DT)        # h_{t-1}[n, k] tile
        sw = cuda.shared.array((4, TILE, TP), DT)     # W_hh[q·H + j, k] tiles as [q, k, j]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        jr = cuda.blockIdx.x * TILE + ty                    # the W_hh row this thread loads
        B = hs.shape[1]
        H = hs.shape[2]
        a_i = ZERO
        a_f = ZERO
        a_g = ZERO
        a_o = ZERO
        for k0 in range(0, H, TILE):
            k = k0 + tx
            sh[ty, tx] = hs[t, n, k] if (n < B and k < H) else ZERO
            for q in range(4):
                sw[q, tx, ty] = W_hh[q * H + jr, k] if (jr < H and k < H) else ZERO
            cuda.syncthreads()
            for kk in range(TILE):
                hv = sh[ty, kk]
                a_i += hv * sw[0, kk, tx]
                a_f += hv * sw[1, kk, tx]
                a_g += hv * sw[2, kk, tx]
                a_o += hv * sw[3, kk, tx]
            cuda.syncthreads()
        if n < B and j < H:
            i_ = HALF + HALF * math.tanh(HALF * (gates[t, n, j] + a_i + b[j]))
            f_ = HALF + HALF * math.tanh(HALF * (gates[t, n, H + j] + a_f + b[H + j]))
            g_ = math.tanh(gates[t, n, 2 * H + j] + a_g + b[2 * H + j])
            o_ = HALF + HALF * math.tanh(HALF * (gates[t, n, 3 * H + j] + a_o + b[3 * H + j]))
            c_t = f_ * cs[t, n, j] + i_ * g_
            gates[t, n, j] = i_
            gates[t, n, H + j] = f_
            gates[t, n, 2 * H + j] = g_
            gates[t, n, 3 * H + j] = o_
            cs[t + 1, n, j] = c_t
            hs[t + 1, n, j] = o_ * math.tanh(c_t)

    def lstm_step_bwd(dz, t, W_hh, dh, gates, cs, dc, dhtot):
        """Step t of BPTT: ∂L/∂h_t = dh[t] + dz[t+1] W_hh (tiled), then ∂L/∂z_t, carried ∂L/∂c."""
        sa = cuda.shared.array((TILE, TP), DT)        # dz[t+1][n, k]
        sb = cuda.shared.array((TILE, TP), DT)        # W_hh[k, j]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        T = dz.shape[0]
        B = dz.shape[1]
        G = W_hh.shape[0]
        H = W_hh.shape[1]
        acc = ZERO
        if t + 1 < T:                                        # uniform over the grid
            for k0 in range(0, G, TILE):
                k = k0 + tx
                sa[ty, tx] = dz[t + 1, n, k] if (n < B and k < G) else ZERO
                k = k0 + ty
                sb[ty, tx] = W_hh[k, j] if (k < G and j < H) else ZERO
                cuda.syncthreads()
                for kk in range(TILE):
                    acc += sa[ty, kk] * sb[kk, tx]
                cuda.syncthreads()
        if n < B and j < H:
            v = dh[t, n, j] + acc                            # total ∂L/∂h_t
            dhtot[t, n, j] = v
            i_ = gates[t, n, j]
            f_ = gates[t, n, H + j]
            g_ = gates[t, n, 2 * H + j]
            o_ = gates[t, n, 3 * H + j]
            tc = math.tanh(cs[t + 1, n, j])
            d = dc[n, j] + v * o_ * (ONE - tc * tc)          # ∂L/∂c_t
            dz[t, n, j] = d * g_ * i_ * (ONE - i_)           # ∂L/∂z_i
            dz[t, n, H + j] = d * cs[t, n, j] * f_ * (ONE - f_)   # ∂L/∂z_f
            dz[t, n, 2 * H + j] = d * i_ * (ONE - g_ * g_)   # ∂L/∂z_g
            dz[t, n, 3 * H + j] = v * tc * o_ * (ONE - o_)   # ∂L/∂z_o
            dc[n, j] = d * f_                                # ∂L/∂c_{t-1}

    return dict(lstm_step_fwd=lstm_step_fwd, lstm_step_bwd=lstm_step_bwd)


def signatures(dtype) -> dict:
    """Numba signatures of :func:`make_kernels`' kernels, for compile_ptx."""
    D = numba_dtype(dtype)
    a1, a2, a3 = (types.Array(D, n, "C") for n in (1, 2, 3))
    i8 = types.int64
    return dict(lstm_step_fwd=types.void(a3, a3, a2, a1, a3, i8),
                lstm_step_bwd=types.void(a3, i8, a2, a3, a3, a3, a2, a3))


def _step_grid(B: int, H: int):
    tile, _, _ = settings()
    return (cdiv(H, tile), cdiv(B, tile)), (tile, tile)


def forward(x, W_ih, W_hh, b, hs, cs, gates):
    """Run the LSTM over ``x`` on the device; all arguments are device arrays.

    Parameters
    ----------
    x : (T, B, I);  W_ih : (4H, I);  W_hh : (4H, H);  b : (4H,) = b_ih + b_hh
    hs, cs : (T+1, B, H)  in: slot 0 = h_0, c_0; out: slots 1..T = h_t, c_t
    gates : (T, B, 4H)  out: post-activation gates
    """
    T, B, I = x.shape
    H = W_hh.shape[1]
    dtype = W_hh.dtype  # the parameters define the dtype, as on the CPU
    for name, a, shape in (("x", x, (T, B, I)), ("weight_ih", W_ih, (4 * H, I)), ("weight_hh", W_hh, (4 * H, H)),
                           ("bias", b, (4 * H,)), ("hs", hs, (T + 1, B, H)), ("cs", cs, (T + 1, B, H)),
                           ("gates", gates, (T, B, 4 * H))):
        check_device(name, a, shape, dtype)
    k = get_kernels(dtype, "common")
    kl = get_kernels(dtype, "kernels.gpu_lstm")
    launch_gemm(k, x.reshape(T * B, I), W_ih, gates.reshape(T * B, 4 * H), ta=0, tb=1)
    grid, block = _step_grid(B, H)
    for t in range(T):
        kl.lstm_step_fwd[grid, block](hs, cs, W_hh, b, gates, t)


def backward(x, W_ih, W_hh, hs, cs, gates, dh, dz, dhtot, dc, dh_norm, dW_ih, dW_hh, db, db2,
             dx=None, dh0=None):
    """Full BPTT on the device; all arguments are device arrays, outputs filled in place.

    Parameters
    ----------
    x, W_ih, W_hh, hs, cs, gates : as in :func:`forward` after it ran
    dh : (T, B, H)  ∂L/∂h_t from the loss
    dz : (T, B, 4H), dhtot : (T, B, H)  workspaces (∂L/∂z_t, total ∂L/∂h_t)
    dc : (B, H)  out: ∂L/∂c_0
    dh_norm : (T,)  out: batch mean ‖∂L/∂h_t‖
    dW_ih, dW_hh, db, db2  out: weight gradients; db and db2 both get the bias gradient
    dx : (T, B, I), dh0 : (B, H)  optional outputs (skipped when None, e.g. in training)
    """
    T, B, I = x.shape
    H = W_hh.shape[1]
    G = 4 * H
    dtype = W_hh.dtype  # the parameters define the dtype, as on the CPU
    for name, a, shape in (("x", x, (T, B, I)), ("weight_ih", W_ih, (G, I)), ("weight_hh", W_hh, (G, H)),
                           ("hs", hs, (T + 1, B, H)), ("cs", cs, (T + 1, B, H)), ("gates", gates, (T, B, G)),
                           ("dh", dh, (T, B, H)), ("dz", dz, (T, B, G)), ("dhtot", dhtot, (T, B, H)),
                           ("dc", dc, (B, H)), ("dh_norm", dh_norm, (T,)), ("dW_ih", dW_ih, (G, I)),
                           ("dW_hh", dW_hh, (G, H)), ("db", db, (G,)), ("db2", db2, (G,))):
        check_device(name, a, shape, dtype)
    k = get_kernels(dtype, "common")
    kl = get_kernels(dtype, "kernels.gpu_lstm")
    _, tpb, _ = settings()
    fill(k, dc, 0.0)
    grid, block = _step_grid(B, H)
    for t in range(T - 1, -1, -1):
        kl.lstm_step_bwd[grid, block](dz, t, W_hh, dh, gates, cs, dc, dhtot)
    k.dh_norms[T, tpb](dhtot, dh_norm)
    weight_gradients(k, x, hs, dz, W_ih, W_hh, dW_ih, dW_hh, db, db2, dx, dh0)


def kernels_for_ptx(dtype=np.float32):
    """``[(name, python function, signature)]`` of every LSTM kernel (compile_ptx checks)."""
    return ptx_kernels(make_kernels, signatures, dtype)


def _forward_cell(layer, ws):
    """:class:`kernels.cells.CudaKernels` ``forward``."""
    forward(ws.x, layer.W_ih, layer.W_hh, layer.b, ws.seqs["h"], ws.seqs["c"], ws.saved["gates"])


def _backward_cell(layer, ws, grads, dx=None, dh0=None):
    """:class:`kernels.cells.CudaKernels` ``backward``: both bias gradients get the same values."""
    dW_ih, dW_hh, db_ih, db_hh = grads
    backward(ws.x, layer.W_ih, layer.W_hh, ws.seqs["h"], ws.seqs["c"], ws.saved["gates"], ws.dh, ws.dz, ws.dhtot,
             ws.dcarry["c"], ws.dh_norm, dW_ih, dW_hh, db_ih, db_hh, dx, dh0)


CUDA_KERNELS = CudaKernels(forward=_forward_cell, backward=_backward_cell, kernels_for_ptx=kernels_for_ptx,
                           kernel_set="kernels.gpu_lstm")
