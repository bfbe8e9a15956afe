"""Vanilla (Elman) RNN forward and full BPTT backward on an NVIDIA GPU (``numba.cuda``), tanh or ReLU.

Same shapes and formulas as kernels/cpu_rnn.py::

    x : (T, B, I)   W_ih : (H, I)   W_hh : (H, H)   b : (H,) = b_ih + b_hh
    hs : (T+1, B, H)  slot 0 holds h_0, slot t+1 holds h_t = act(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b)

``act`` (a kernel argument, uniform over the grid): 0 = tanh, 1 = ReLU (kernels.cpu_rnn.TANH/RELU).

Speed design: the structure of kernels/gpu_lstm.py with one gate block. The
input projection of all T steps is one tiled GEMM written into ``hs[1:]``; each
step is one fused kernel (tiled ``h_{t-1} W_hhᵀ`` through shared memory, then
bias + tanh in the epilogue, in place over the projection); each backward step
is one fused kernel (tiled ``dz_{t+1} W_hh`` + ``dh_t``, then ``dz_t = ∂L/∂h_t ⊙
(1 - h_t²)``); weight gradients are one product over all T·B rows. A persistent
kernel holding W_hh (H² values, H ≤ ~200 in float32 fits in one SM's shared
memory) for the whole sequence is the planned next step; see gpu_lstm.py.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, types

from kernels.cells import CudaKernels
from kernels.gpu_common import (cdiv, check_device, get_kernels, launch_gemm, numba_dtype, ptx_kernels,
                                 settings, weight_gradients)


def make_kernels(dtype, TILE: int, TPB: int) -> dict:
    """The RNN step kernels (Python functions) for one dtype and tile size."""
    DT = numba_dtype(dtype)
    TP = TILE + 1  # padded row of a shared tile (no bank conflicts on transposed stores)
    ZERO = np.dtype(dtype).type(0.0)
    ONE = np.dtype(dtype).type(1.0)

    def rnn_step_fwd(hs, W_hh, b, t, act):
        """Step t: hs[t+1] holds x_t W_ihᵀ in, h_t out; reads hs[t] = h_{t-1}. act 0 tanh, 1 ReLU."""
        sh = cuda.shared.array((TILE, TP), DT)        # h_{t-1}[n, k]
        sw = cuda.shared.array((TILE, TP), DT)        # W_hh[j, k] as [k, j]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        jr = cuda.blockIdx.x * TILE + ty
        B = hs.shape[1]
        H = hs.shape[2]
        acc = ZERO
        for k0 in range(0, H, TILE):
            k = k0 + tx
            sh[ty, tx] = hs[t, n, k] if (n < B and k < H) else ZERO
            sw[tx, ty] = W_hh[jr, k] if (jr < H and k < H) else ZERO
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sh[ty, kk] * sw[kk, tx]
            cuda.syncthreads()
        if n < B and j < H:
            v = hs[t + 1, n, j] + acc + b[j]
            if act == 1:
                hs[t + 1, n, j] = ZERO if v < ZERO else v    # ReLU; a NaN stays NaN
            else:
                hs[t + 1, n, j] = math.tanh(v)

    def rnn_step_bwd(dz, t, W_hh, dh, hs, dhtot, act):
        """Step t of BPTT: ∂L/∂h_t = dh[t] + dz[t+1] W_hh (tiled); dz[t] = ∂L/∂h_t ⊙ act'(z_t)
        (tanh: 1 - h_t², ReLU: [h_t > 0])."""
        sa = cuda.shared.array((TILE, TP), DT)
        sb = cuda.shared.array((TILE, TP), DT)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        T = dz.shape[0]
        B = dz.shape[1]
        H = W_hh.shape[1]
        acc = ZERO
        if t + 1 < T:
            for k0 in range(0, H, TILE):
                k = k0 + tx
                sa[ty, tx] = dz[t + 1, n, k] if (n < B and k < H) else ZERO
                k = k0 + ty
                sb[ty, tx] = W_hh[k, j] if (k < H and j < H) else ZERO
                cuda.syncthreads()
                for kk in range(TILE):
                    acc += sa[ty, kk] * sb[kk, tx]
                cuda.syncthreads()
        if n < B and j < H:
            v = dh[t, n, j] + acc
            dhtot[t, n, j] = v
            h_t = hs[t + 1, n, j]
            if act == 1:
                dz[t, n, j] = v if h_t > ZERO else ZERO
            else:
                dz[t, n, j] = v * (ONE - h_t * h_t)

    return dict(rnn_step_fwd=rnn_step_fwd, rnn_step_bwd=rnn_step_bwd)


def signatures(dtype) -> dict:
    """Numba signatures of :func:`make_kernels`' kernels, for compile_ptx."""
    D = numba_dtype(dtype)
    a1, a2, a3 = (types.Array(D, n, "C") for n in (1, 2, 3))
    i8 = types.int64
    return dict(rnn_step_fwd=types.void(a3, a2, a1, i8, i8),
                rnn_step_bwd=types.void(a3, i8, a2, a3, a3, a3, i8))


def _step_grid(B: int, H: int):
    tile, _, _ = settings()
    return (cdiv(H, tile), cdiv(B, tile)), (tile, tile)


def forward(x, W_ih, W_hh, b, hs, act: int = 0):
    """Run the RNN over ``x`` on the device; all arguments are device arrays.

    x : (T, B, I);  W_ih : (H, I);  W_hh : (H, H);  b : (H,);  hs : (T+1, B, H), slot 0 = h_0 in;
    act : 0 tanh, 1 ReLU
    """
    T, B, I = x.shape
    H = W_hh.shape[1]
    dtype = W_hh.dtype  # the parameters define the dtype, as on the CPU
    for name, a, shape in (("x", x, (T, B, I)), ("weight_ih", W_ih, (H, I)), ("weight_hh", W_hh, (H, H)),
                           ("bias", b, (H,)), ("hs", hs, (T + 1, B, H))):
        check_device(name, a, shape, dtype)
    k = get_kernels(dtype, "common")
    kr = get_kernels(dtype, "kernels.gpu_rnn")
    launch_gemm(k, x.reshape(T * B, I), W_ih, hs[1:].reshape(T * B, H), ta=0, tb=1)
    grid, block = _step_grid(B, H)
    for t in range(T):
        kr.rnn_step_fwd[grid, block](hs, W_hh, b, t, act)


def backward(x, W_ih, W_hh, hs, dh, dz, dhtot, dh_norm, dW_ih, dW_hh, db, db2, dx=None, dh0=None, act: int = 0):
    """Full BPTT on the device (see gpu_lstm.backward; no cell state); act 0 tanh, 1 ReLU."""
    T, B, I = x.shape
    H = W_hh.shape[1]
    dtype = W_hh.dtype  # the parameters define the dtype, as on the CPU
    for name, a, shape in (("x", x, (T, B, I)), ("weight_ih", W_ih, (H, I)), ("weight_hh", W_hh, (H, H)),
                           ("hs", hs, (T + 1, B, H)), ("dh", dh, (T, B, H)), ("dz", dz, (T, B, H)),
                           ("dhtot", dhtot, (T, B, H)), ("dh_norm", dh_norm, (T,)), ("dW_ih", dW_ih, (H, I)),
                           ("dW_hh", dW_hh, (H, H)), ("db", db, (H,)), ("db2", db2, (H,))):
        check_device(name, a, shape, dtype)
    k = get_kernels(dtype, "common")
    kr = get_kernels(dtype, "kernels.gpu_rnn")
    _, tpb, _ = settings()
    grid, block = _step_grid(B, H)
    for t in range(T - 1, -1, -1):
        kr.rnn_step_bwd[grid, block](dz, t, W_hh, dh, hs, dhtot, act)
    k.dh_norms[T, tpb](dhtot, dh_norm)
    weight_gradients(k, x, hs, dz, W_ih, W_hh, dW_ih, dW_hh, db, db2, dx, dh0)


def kernels_for_ptx(dtype=np.float32):
    """``[(name, python function, signature)]`` of every RNN kernel (compile_ptx checks)."""
    return ptx_kernels(make_kernels, signatures, dtype)


#: activation option -> the kernels' ``act`` code
ACTIVATIONS = {"tanh": 0, "relu": 1}


def _forward_cell(layer, ws):
    """:class:`kernels.cells.CudaKernels` ``forward``."""
    forward(ws.x, layer.W_ih, layer.W_hh, layer.b, ws.seqs["h"], ACTIVATIONS[layer.options["activation"]])


def _backward_cell(layer, ws, grads, dx=None, dh0=None):
    """:class:`kernels.cells.CudaKernels` ``backward``: both bias gradients get the same values."""
    dW_ih, dW_hh, db_ih, db_hh = grads
    backward(ws.x, layer.W_ih, layer.W_hh, ws.seqs["h"], ws.dh, ws.dz, ws.dhtot, ws.dh_norm, dW_ih, dW_hh, db_ih,
             db_hh, dx, dh0, ACTIVATIONS[layer.options["activation"]])


CUDA_KERNELS = CudaKernels(forward=_forward_cell, backward=_backward_cell, kernels_for_ptx=kernels_for_ptx,
                           kernel_set="kernels.gpu_rnn")
