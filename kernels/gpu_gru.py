"""GRU forward and full BPTT backward on an NVIDIA GPU (``numba.cuda``), exactly ``torch.nn.GRU``.

Same shapes, gate order and formulas as kernels/cpu_gru.py::

    x : (T, B, I)   W_ih : (3H, I)   W_hh : (3H, H)   b_ih, b_hh : (3H,)  (not summed: b_hn is inside r ⊙ (...))
    hs : (T+1, B, H)   slot 0 holds h_0, slot t+1 holds h_t
    gates : (T, B, 3H) post-activation [r | z | n];   hn : (T, B, H) = h_{t-1} W_hnᵀ + b_hn

Speed design: the structure of kernels/gpu_lstm.py with three gate blocks.
- The input projection ``x W_ihᵀ`` of all T steps is one tiled GEMM into ``gates``.
- One fused kernel per step forward (:func:`gru_step_fwd`): a block stages a tile
  of h_{t-1} and the matching tiles of all three blocks of W_hh in shared memory,
  each thread accumulates its (n, j)'s three recurrent sums, then in the epilogue
  adds the input projection and both biases, applies σ/tanh with r inside the n
  block, and writes h_t, the gates and hn. One launch, one read of W_hh per block.
- One fused kernel per step backward (:func:`gru_step_bwd`): ``∂L/∂h_t = dh_t +
  dz_h[t+1] W_hh + ∂L/∂h_{t+1} ⊙ z_{t+1}`` (tiled product + the direct path), then
  the input-side ∂L/∂z = [dr, dz, dn] and the recurrent side [dr, dz, dn ⊙ r].
- Weight gradients batched over time (kernels/gpu_common.weight_gradients with
  ``dz_h``): ``dW_ih = dzᵀ x``, ``dW_hh = dz_hᵀ h``, ``db_ih = Σ dz``, ``db_hh = Σ dz_h``.

Launch geometry: block (TILE, TILE), grid (ceil(H/TILE), ceil(B/TILE)); read at launch time.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, types

from kernels.cells import CudaKernels
from kernels.gpu_common import (cdiv, check_device, get_kernels, launch_1d, launch_gemm, numba_dtype, ptx_kernels,
                                 settings, weight_gradients)

KERNEL_SET = "kernels.gpu_gru"


def make_kernels(dtype, TILE: int, TPB: int) -> dict:
    """The GRU step kernels (Python functions) for one dtype and tile size."""
    DT = numba_dtype(dtype)
    TP = TILE + 1  # padded row of a shared tile (no bank conflicts on transposed stores)
    ZERO = np.dtype(dtype).type(0.0)
    ONE = np.dtype(dtype).type(1.0)
    HALF = np.dtype(dtype).type(0.5)

    def gru_step_fwd(hs, W_hh, b_ih, b_hh, gates, hn, t):
        """Step t: gates[t] holds x_t W_ihᵀ in, r, z, n out; writes hn[t] and hs[t+1]."""
        sh = cuda.shared.array((TILE, TP), DT)        # h_{t-1}[n, k] tile
        sw = cuda.shared.array((3, TILE, TP), DT)     # W_hh[q·H + j, k] tiles as [q, k, j]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        jr = cuda.blockIdx.x * TILE + ty                    # the W_hh row this thread loads
        B = hs.shape[1]
        H = hs.shape[2]
        a_r = ZERO
        a_z = ZERO
        a_n = ZERO
        for k0 in range(0, H, TILE):
            k = k0 + tx
            sh[ty, tx] = hs[t, n, k] if (n < B and k < H) else ZERO
            for q in range(3):
                sw[q, tx, ty] = W_hh[q * H + jr, k] if (jr < H and k < H) else ZERO
            cuda.syncthreads()
            for kk in range(TILE):
                hv = sh[ty, kk]
                a_r += hv * sw[0, kk, tx]
                a_z += hv * sw[1, kk, tx]
                a_n += hv * sw[2, kk, tx]
            cuda.syncthreads()
        if n < B and j < H:
            r_ = HALF + HALF * math.tanh(HALF * (gates[t, n, j] + b_ih[j] + a_r + b_hh[j]))
            z_ = HALF + HALF * math.tanh(HALF * (gates[t, n, H + j] + b_ih[H + j] + a_z + b_hh[H + j]))
            a_ = a_n + b_hh[2 * H + j]                       # W_hn h_{t-1} + b_hn
            n_ = math.tanh(gates[t, n, 2 * H + j] + b_ih[2 * H + j] + r_ * a_)
            h_p = hs[t, n, j]
            gates[t, n, j] = r_
            gates[t, n, H + j] = z_
            gates[t, n, 2 * H + j] = n_
            hn[t, n, j] = a_
            hs[t + 1, n, j] = n_ + z_ * (h_p - n_)           # (1 - z) n + z h_{t-1}

    def gru_step_bwd(dz, dzh, t, W_hh, dh, gates, hn, hs, dhtot):
        """Step t of BPTT: ∂L/∂h_t = dh[t] + dz_h[t+1] W_hh (tiled) + ∂L/∂h_{t+1} ⊙ z_{t+1}; then
        ∂L/∂z input side into dz[t], recurrent side into dzh[t]."""
        sa = cuda.shared.array((TILE, TP), DT)        # dz_h[t+1][n, k]
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
                sa[ty, tx] = dzh[t + 1, n, k] if (n < B and k < G) else ZERO
                k = k0 + ty
                sb[ty, tx] = W_hh[k, j] if (k < G and j < H) else ZERO
                cuda.syncthreads()
                for kk in range(TILE):
                    acc += sa[ty, kk] * sb[kk, tx]
                cuda.syncthreads()
        if n < B and j < H:
            v = dh[t, n, j] + acc
            if t + 1 < T:
                v += dhtot[t + 1, n, j] * gates[t + 1, n, H + j]   # the z path of ∂L/∂h_{t+1}
            dhtot[t, n, j] = v                               # total ∂L/∂h_t
            r_ = gates[t, n, j]
            z_ = gates[t, n, H + j]
            n_ = gates[t, n, 2 * H + j]
            dn = v * (ONE - z_) * (ONE - n_ * n_)            # ∂L/∂a_n (inside tanh)
            du = v * (hs[t, n, j] - n_) * z_ * (ONE - z_)    # ∂L/∂z_z (inside σ)
            dr = dn * hn[t, n, j] * r_ * (ONE - r_)          # ∂L/∂z_r (inside σ)
            dz[t, n, j] = dr
            dz[t, n, H + j] = du
            dz[t, n, 2 * H + j] = dn
            dzh[t, n, j] = dr
            dzh[t, n, H + j] = du
            dzh[t, n, 2 * H + j] = dn * r_                   # b_hn and W_hn sit inside r ⊙ (...)

    def gru_dh0_direct(dhtot, gates, dh0):
        """dh0 = ∂L/∂h_1 ⊙ z_1: the direct path of ∂L/∂h_0 (the product is added after)."""
        i = cuda.grid(1)
        B = dh0.shape[0]
        H = dh0.shape[1]
        if i < B * H:
            n = i // H
            j = i - n * H
            dh0[n, j] = dhtot[0, n, j] * gates[0, n, H + j]

    return dict(gru_step_fwd=gru_step_fwd, gru_step_bwd=gru_step_bwd, gru_dh0_direct=gru_dh0_direct)


def signatures(dtype) -> dict:
    """Numba signatures of :func:`make_kernels`' kernels, for compile_ptx."""
    D = numba_dtype(dtype)
    a1, a2, a3 = (types.Array(D, n, "C") for n in (1, 2, 3))
    i8 = types.int64
    return dict(gru_step_fwd=types.void(a3, a2, a1, a1, a3, a3, i8),
                gru_step_bwd=types.void(a3, a3, i8, a2, a3, a3, a3, a3, a3),
                gru_dh0_direct=types.void(a3, a3, a2))


def _step_grid(B: int, H: int):
    tile, _, _ = settings()
    return (cdiv(H, tile), cdiv(B, tile)), (tile, tile)


def forward(x, W_ih, W_hh, b_ih, b_hh, hs, gates, hn):
    """Run the GRU over ``x`` on the device; all arguments are device arrays.

    Parameters
    ----------
    x : (T, B, I);  W_ih : (3H, I);  W_hh : (3H, H);  b_ih, b_hh : (3H,)
    hs : (T+1, B, H)  in: slot 0 = h_0; out: slots 1..T = h_t
    gates : (T, B, 3H), hn : (T, B, H)  out: post-activation gates, W_hn h_{t-1} + b_hn
    """
    T, B, I = x.shape
    H = W_hh.shape[1]
    G = 3 * H
    dtype = W_hh.dtype  # the parameters define the dtype, as on the CPU
    for name, a, shape in (("x", x, (T, B, I)), ("weight_ih", W_ih, (G, I)), ("weight_hh", W_hh, (G, H)),
                           ("bias_ih", b_ih, (G,)), ("bias_hh", b_hh, (G,)), ("hs", hs, (T + 1, B, H)),
                           ("gates", gates, (T, B, G)), ("hn", hn, (T, B, H))):
        check_device(name, a, shape, dtype)
    k = get_kernels(dtype, "common")
    kg = get_kernels(dtype, KERNEL_SET)
    launch_gemm(k, x.reshape(T * B, I), W_ih, gates.reshape(T * B, G), ta=0, tb=1)
    grid, block = _step_grid(B, H)
    for t in range(T):
        kg.gru_step_fwd[grid, block](hs, W_hh, b_ih, b_hh, gates, hn, t)


def backward(x, W_ih, W_hh, hs, gates, hn, dh, dz, dzh, dhtot, dh_norm, dW_ih, dW_hh, db_ih, db_hh,
             dx=None, dh0=None):
    """Full BPTT on the device; all arguments are device arrays, outputs filled in place.

    Parameters
    ----------
    x, W_ih, W_hh, hs, gates, hn : as in :func:`forward` after it ran
    dh : (T, B, H)  ∂L/∂h_t from the loss
    dz, dzh : (T, B, 3H), dhtot : (T, B, H)  workspaces (∂L/∂z input and recurrent side, total ∂L/∂h_t)
    dh_norm : (T,)  out: batch mean ‖∂L/∂h_t‖
    dW_ih, dW_hh, db_ih, db_hh  out: the parameter gradients (the biases' differ on the n rows)
    dx : (T, B, I), dh0 : (B, H)  optional outputs (skipped when None, e.g. in training)
    """
    T, B, I = x.shape
    H = W_hh.shape[1]
    G = 3 * H
    dtype = W_hh.dtype
    for name, a, shape in (("x", x, (T, B, I)), ("weight_ih", W_ih, (G, I)), ("weight_hh", W_hh, (G, H)),
                           ("hs", hs, (T + 1, B, H)), ("gates", gates, (T, B, G)), ("hn", hn, (T, B, H)),
                           ("dh", dh, (T, B, H)), ("dz", dz, (T, B, G)), ("dzh", dzh, (T, B, G)),
                           ("dhtot", dhtot, (T, B, H)), ("dh_norm", dh_norm, (T,)), ("dW_ih", dW_ih, (G, I)),
                           ("dW_hh", dW_hh, (G, H)), ("db_ih", db_ih, (G,)), ("db_hh", db_hh, (G,))):
        check_device(name, a, shape, dtype)
    k = get_kernels(dtype, "common")
    kg = get_kernels(dtype, KERNEL_SET)
    _, tpb, _ = settings()
    grid, block = _step_grid(B, H)
    for t in range(T - 1, -1, -1):
        kg.gru_step_bwd[grid, block](dz, dzh, t, W_hh, dh, gates, hn, hs, dhtot)
    k.dh_norms[T, tpb](dhtot, dh_norm)
    if dh0 is not None:
        check_device("dh0", dh0, (B, H), dtype)
        launch_1d(kg.gru_dh0_direct, B * H, dhtot, gates, dh0)
    weight_gradients(k, x, hs, dz, W_ih, W_hh, dW_ih, dW_hh, db_ih, db_hh, dx, dh0, dz_h=dzh)


def kernels_for_ptx(dtype=np.float32):
    """``[(name, python function, signature)]`` of every GRU kernel (compile_ptx checks)."""
    return ptx_kernels(make_kernels, signatures, dtype)


def _forward_cell(layer, ws):
    """:class:`kernels.cells.CudaKernels` ``forward``."""
    forward(ws.x, layer.W_ih, layer.W_hh, layer.b_ih, layer.b_hh, ws.seqs["h"], ws.saved["gates"], ws.saved["hn"])


def _backward_cell(layer, ws, grads, dx=None, dh0=None):
    """:class:`kernels.cells.CudaKernels` ``backward``; the recurrent-side ∂L/∂z buffer lives in ``ws.extra``."""
    dzh = ws.extra.get("dzh")
    if dzh is None:
        dzh = ws.extra["dzh"] = cuda.device_array(ws.dz.shape, ws.dz.dtype)
    dW_ih, dW_hh, db_ih, db_hh = grads
    backward(ws.x, layer.W_ih, layer.W_hh, ws.seqs["h"], ws.saved["gates"], ws.saved["hn"], ws.dh, ws.dz, dzh,
             ws.dhtot, ws.dh_norm, dW_ih, dW_hh, db_ih, db_hh, dx, dh0)


CUDA_KERNELS = CudaKernels(forward=_forward_cell, backward=_backward_cell, kernels_for_ptx=kernels_for_ptx,
                           kernel_set=KERNEL_SET, summed_bias=False)
