"""Device code shared by the CUDA cells' kernels: tiled GEMM, readout/loss,
gradient norms, clipping, Adam and SGD (``numba.cuda``).

Speed design (see also kernels/gpu_lstm.py for the recurrent part)
-------------------------------------------------------------------
- **Tiled matrix product.** Every product that is not on the recurrent critical
  path -- the input projection ``x W_ihᵀ`` of all T steps at once, the weight
  gradients ``dzᵀ x`` and ``dzᵀ h_{t-1}`` over all T·B rows at once, ``dx``, the
  readout -- is one launch of :func:`_gemm`: a ``TILE x TILE`` thread block
  stages one tile of each operand in shared memory (padded by one column so the
  transposed stores do not hit the same bank), global loads are coalesced for
  both transposed and untransposed operands, each thread accumulates one output.
  Batching over time turns T small products into one large one, which is where a
  GPU is efficient.
- **Reductions on the device.** The global and per-parameter gradient norms are a
  two-stage reduction (:func:`_sumsq_segments`: a grid-stride loop plus a
  shared-memory tree per block, one block row per parameter, accumulated in
  float64 like the CPU; then :func:`_finish_norms`).
- **Clipping fused into the optimizer.** :func:`_clip_adaptive` / :func:`_clip_sgd`
  read the global norm from device memory and scale the gradient inside the
  update kernel: no host round trip between backward and update.
- **What crosses PCIe.** Parameters, gradients, optimizer moments, activations and
  workspaces live in device arrays for the whole run. Per step the host uploads
  the batch (the trainer samples it on the host) into a preallocated device
  buffer and reads back only metrics: the readout outputs ``(N, K)`` (for the task
  metric), one value per readout row for the loss, the 7 norms and ``dh_norm (T,)``.
  Probe snapshots (h, c, gates) are copied back only when the trainer probes.

Settings (``CUDA_TILE``, ``CUDA_THREADS_PER_BLOCK``, ``CUDA_REDUCE_BLOCKS``) are
read from kernels/config.py at launch time; kernels are specialised per
``(dtype, tile, threads)`` by :func:`get_kernels` (shared-memory sizes must be
compile-time constants), so tests can patch them small.
"""
from __future__ import annotations

import functools
import importlib
import math
from types import SimpleNamespace

import numpy as np
from numba import cuda, types

from kernels.errors import KernelInputError

#: loss kind codes passed to the readout kernel
LOSS_CODES = {"mse_last": 0, "ce_last": 1, "ce_window": 1}


# -- launch settings ------------------------------------------------------------------------------
def settings() -> tuple[int, int, int]:
    """``(tile, threads_per_block, reduce_blocks)`` read from kernels/config.py now (not at import)."""
    from kernels import config

    tile = int(config.CUDA_TILE)
    tpb = int(config.CUDA_THREADS_PER_BLOCK)
    nb = int(getattr(config, "CUDA_REDUCE_BLOCKS", 64))
    from numba import config as numba_config

    if getattr(numba_config, "ENABLE_CUDASIM", False):  # Python threads: keep blocks small
        tile = min(tile, int(getattr(config, "CUDA_SIM_MAX_TILE", 4)))
        tpb = min(tpb, int(getattr(config, "CUDA_SIM_MAX_THREADS", 32)))
    if tile < 1 or tile * tile > 1024:
        raise KernelInputError(f"config.CUDA_TILE={tile}: a tile needs 1 <= TILE² <= 1024 threads")
    if not 1 <= tpb <= 1024:
        raise KernelInputError(f"config.CUDA_THREADS_PER_BLOCK={tpb} must be in 1..1024")
    tpb = 1 << (tpb.bit_length() - 1)  # the tree reductions need a power of two
    return tile, tpb, max(1, nb)


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def numba_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return types.float32
    if dtype == np.float64:
        return types.float64
    raise KernelInputError(f"CUDA kernels take float32 or float64 arrays, got {dtype}")


# -- kernel factory -------------------------------------------------------------------------------
def _make(dtype, TILE: int, TPB: int):
    """Build the shared kernels for one dtype and launch geometry (closure constants)."""
    DT = numba_dtype(dtype)
    TP = TILE + 1  # padded row of a shared tile (no bank conflicts on transposed stores)
    ZERO = np.dtype(dtype).type(0.0)
    ONE = np.dtype(dtype).type(1.0)
    F64 = types.float64

    def gemm(A, B, C, ta, tb, accumulate):
        """C (M, N) [+]= op(A) (M, K) @ op(B) (K, N); op = transpose when ta / tb is 1.

        Block (TILE, TILE), grid (ceil(N/TILE), ceil(M/TILE)); both operand tiles staged
        in shared memory with coalesced global loads.
        """
        sa = cuda.shared.array((TILE, TP), DT)   # sa[m_local, k_local]
        sb = cuda.shared.array((TILE, TP), DT)   # sb[k_local, n_local]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        m0 = cuda.blockIdx.y * TILE
        n0 = cuda.blockIdx.x * TILE
        M = C.shape[0]
        N = C.shape[1]
        K = A.shape[0] if ta else A.shape[1]
        acc = ZERO
        for k0 in range(0, K, TILE):
            if ta:   # A is (K, M): consecutive tx read consecutive m
                m = m0 + tx
                k = k0 + ty
                sa[tx, ty] = A[k, m] if (m < M and k < K) else ZERO
            else:    # A is (M, K): consecutive tx read consecutive k
                m = m0 + ty
                k = k0 + tx
                sa[ty, tx] = A[m, k] if (m < M and k < K) else ZERO
            if tb:   # B is (N, K)
                n = n0 + ty
                k = k0 + tx
                sb[tx, ty] = B[n, k] if (n < N and k < K) else ZERO
            else:    # B is (K, N)
                n = n0 + tx
                k = k0 + ty
                sb[ty, tx] = B[k, n] if (n < N and k < K) else ZERO
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        row = m0 + ty
        col = n0 + tx
        if row < M and col < N:
            if accumulate:
                C[row, col] = C[row, col] + acc
            else:
                C[row, col] = acc

    def readout_rows(out, b, y, kind, scale, dout, rowval):
        """Per readout row r (thread): out += b; loss term and ∂L/∂out.

        mse (kind 0): rowval = out - y, dout = scale·diff (scale = 2/B).
        ce (kind 1): softmax, rowval = p[label], dout = (p - onehot)·scale (scale = 1/N).
        """
        r = cuda.grid(1)
        N = out.shape[0]
        if r >= N:
            return
        K = out.shape[1]
        for k in range(K):
            out[r, k] = out[r, k] + b[k]
        if kind == 0:
            d = out[r, 0] - y[r]
            rowval[r] = d
            dout[r, 0] = scale * d
        else:
            mx = out[r, 0]
            for k in range(1, K):
                if out[r, k] > mx:
                    mx = out[r, k]
            s = ZERO
            for k in range(K):
                e = math.exp(out[r, k] - mx)
                dout[r, k] = e
                s += e
            label = int(y[r])
            for k in range(K):
                p = dout[r, k] / s
                if k == label:
                    rowval[r] = p
                    p = p - ONE
                dout[r, k] = p * scale

    def colsum(A, out1, out2):
        """out1[g] = out2[g] = Σ_n A[n, g] (bias gradients; both biases get the same value)."""
        g = cuda.grid(1)
        if g >= A.shape[1]:
            return
        s = F64(0.0)
        for n in range(A.shape[0]):
            s += A[n, g]
        out1[g] = s
        out2[g] = s

    def add(a, b, out):
        """out = a + b (1-D): the summed recurrent bias b_ih + b_hh."""
        k = cuda.grid(1)
        if k < out.shape[0]:
            out[k] = a[k] + b[k]

    def fill(a, value):
        """a[:] = value (1-D view)."""
        k = cuda.grid(1)
        if k < a.shape[0]:
            a[k] = value

    def sumsq_segments(g, bounds, partial):
        """partial[s, block] = Σ g[k]² over the block's share of segment s = [bounds[s], bounds[s+1]).

        Grid (nb, S), block TPB: grid-stride loop, then a shared-memory tree (float64).
        """
        buf = cuda.shared.array(TPB, F64)
        s = cuda.blockIdx.y
        tid = cuda.threadIdx.x
        lo = bounds[s]
        hi = bounds[s + 1]
        acc = F64(0.0)
        k = lo + cuda.blockIdx.x * TPB + tid
        stride = cuda.gridDim.x * TPB
        while k < hi:
            v = F64(g[k])
            acc += v * v
            k += stride
        buf[tid] = acc
        cuda.syncthreads()
        half = TPB // 2
        while half > 0:
            if tid < half:
                buf[tid] += buf[tid + half]
            cuda.syncthreads()
            half //= 2
        if tid == 0:
            partial[s, cuda.blockIdx.x] = buf[0]

    def finish_norms(partial, norms):
        """norms[s] = √Σ partial[s, :]; norms[S] = global norm (one thread: S·nb values)."""
        if cuda.grid(1) != 0:
            return
        S = partial.shape[0]
        total = F64(0.0)
        for s in range(S):
            t = F64(0.0)
            for j in range(partial.shape[1]):
                t += partial[s, j]
            norms[s] = math.sqrt(t)
            total += t
        norms[S] = math.sqrt(total)

    def clip_adaptive(p, g, m, v, norms, S, max_norm, step_size, b1, b2, inv_bc2, eps):
        """Clip by the global norm norms[S] (as clip_grad_norm_) and take one Adam or RMSprop step, fused
        (the coefficients of kernels.optim.adaptive_coefficients)."""
        k = cuda.grid(1)
        if k >= p.shape[0]:
            return
        gk = g[k]
        if max_norm > 0.0:
            coef = max_norm / (norms[S] + 1e-6)
            if coef < 1.0:
                gk = gk * DT(coef)
                g[k] = gk
        mk = b1 * m[k] + (ONE - b1) * gk
        vk = b2 * v[k] + (ONE - b2) * gk * gk
        m[k] = mk
        v[k] = vk
        p[k] -= step_size * mk / (math.sqrt(vk) * inv_bc2 + eps)

    def clip_sgd(p, g, buf, norms, S, max_norm, lr, mu, first, use_momentum):
        """Clip by the global norm, then SGD with momentum (torch.optim.SGD), fused."""
        k = cuda.grid(1)
        if k >= p.shape[0]:
            return
        gk = g[k]
        if max_norm > 0.0:
            coef = max_norm / (norms[S] + 1e-6)
            if coef < 1.0:
                gk = gk * DT(coef)
                g[k] = gk
        if not use_momentum:
            bk = gk
        elif first:
            bk = gk
            buf[k] = bk
        else:
            bk = mu * buf[k] + gk
            buf[k] = bk
        p[k] -= lr * bk

    def dh_norms(dhtot, nrm):
        """nrm[t] = mean_n ‖dhtot[t, n, :]‖ (block t, threads over n, shared-memory tree)."""
        buf = cuda.shared.array(TPB, F64)
        t = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        B = dhtot.shape[1]
        H = dhtot.shape[2]
        acc = F64(0.0)
        n = tid
        while n < B:
            sq = ZERO
            for j in range(H):
                v = dhtot[t, n, j]
                sq += v * v
            acc += math.sqrt(sq)
            n += TPB
        buf[tid] = acc
        cuda.syncthreads()
        half = TPB // 2
        while half > 0:
            if tid < half:
                buf[tid] += buf[tid + half]
            cuda.syncthreads()
            half //= 2
        if tid == 0:
            nrm[t] = buf[0] / B

    return dict(gemm=gemm, readout_rows=readout_rows, colsum=colsum, add=add, fill=fill,
                sumsq_segments=sumsq_segments, finish_norms=finish_norms, clip_adaptive=clip_adaptive,
                clip_sgd=clip_sgd, dh_norms=dh_norms)


def signatures(dtype) -> dict:
    """Numba signatures of the shared kernels for ``dtype`` (C-contiguous arrays), for compile_ptx."""
    D = numba_dtype(dtype)
    a1, a2, a3 = (types.Array(D, n, "C") for n in (1, 2, 3))
    f1, f2 = types.Array(types.float64, 1, "C"), types.Array(types.float64, 2, "C")
    i1 = types.Array(types.int64, 1, "C")
    i8, f8 = types.int64, types.float64
    return dict(
        gemm=types.void(a2, a2, a2, i8, i8, i8),
        readout_rows=types.void(a2, a1, a1, i8, D, a2, a1),
        colsum=types.void(a2, a1, a1),
        add=types.void(a1, a1, a1),
        fill=types.void(a1, D),
        sumsq_segments=types.void(a1, i1, f2),
        finish_norms=types.void(f2, f1),
        clip_adaptive=types.void(a1, a1, a1, a1, f1, i8, f8, D, D, D, D, D),
        clip_sgd=types.void(a1, a1, a1, f1, i8, f8, D, D, types.boolean, types.boolean),
        dh_norms=types.void(a3, a1),
    )


@functools.lru_cache(maxsize=None)
def _jitted(dtype_name: str, tile: int, tpb: int, which: str):
    if which == "common":
        py = _make(np.dtype(dtype_name), tile, tpb)
    else:
        module = which if "." in which else f"kernels.gpu_{which}"
        py = importlib.import_module(module).make_kernels(np.dtype(dtype_name), tile, tpb)
    return SimpleNamespace(**{name: cuda.jit(f) for name, f in py.items()}, py=py)


def get_kernels(dtype, which: str = "common"):
    """Compiled (lazily, per argument types) kernels for ``dtype`` and the current config settings.

    ``which``: "common" (this module's), or a cell's kernel module ("kernels.gpu_lstm", or short "lstm")
    whose ``make_kernels(dtype, tile, tpb)`` returns its kernels as Python functions."""
    tile, tpb, _ = settings()
    return _jitted(np.dtype(dtype).name, tile, tpb, which)


# -- launch helpers -------------------------------------------------------------------------------
def launch_gemm(k, A, B, C, ta=0, tb=0, accumulate=0):
    """C [+]= op(A) @ op(B) with the tiled kernel; shapes are checked here."""
    tile, _, _ = settings()
    M, N = C.shape
    Ka = A.shape[0] if ta else A.shape[1]
    Am = A.shape[1] if ta else A.shape[0]
    Kb = B.shape[1] if tb else B.shape[0]
    Bn = B.shape[0] if tb else B.shape[1]
    if Am != M or Bn != N or Ka != Kb:
        raise KernelInputError(f"gemm shapes do not agree: op(A) {Am}x{Ka}, op(B) {Kb}x{Bn}, C {M}x{N}")
    if M == 0 or N == 0:
        return
    k.gemm[(cdiv(N, tile), cdiv(M, tile)), (tile, tile)](A, B, C, int(ta), int(tb), int(accumulate))


def launch_1d(kernel, n: int, *args):
    """Launch an element-wise kernel over ``n`` items."""
    _, tpb, _ = settings()
    if n > 0:
        kernel[cdiv(n, tpb), tpb](*args)


def fill(k, a, value=0.0):
    """Set every element of the contiguous device array ``a`` to ``value``."""
    flat = a.reshape(a.size)
    launch_1d(k.fill, flat.size, flat, flat.dtype.type(value))


def is_device_array(a) -> bool:
    return hasattr(a, "copy_to_host") and hasattr(a, "shape")


def check_device(name: str, a, shape, dtype):
    """Raise :class:`KernelInputError` unless ``a`` is a C-contiguous device array of ``shape``, ``dtype``."""
    if not is_device_array(a):
        raise KernelInputError(f"{name} must be a CUDA device array, got {type(a).__name__}")
    if tuple(a.shape) != tuple(shape):
        raise KernelInputError(f"{name} must have shape {tuple(shape)}, got {tuple(a.shape)}")
    if np.dtype(a.dtype) != np.dtype(dtype):
        raise KernelInputError(f"{name} must be {np.dtype(dtype)}, got {np.dtype(a.dtype)}")
    contiguous = a.is_c_contiguous() if hasattr(a, "is_c_contiguous") else True
    if not contiguous:
        raise KernelInputError(f"{name} must be C-contiguous (use numba.cuda.to_device(np.ascontiguousarray(...)))")


def to_device_checked(name: str, a, shape, dtype):
    """A C-contiguous device copy of host array ``a`` (or ``a`` itself if it already is one, checked)."""
    if is_device_array(a):
        check_device(name, a, shape, dtype)
        return a
    a = np.asarray(a)
    if a.shape != tuple(shape):
        raise KernelInputError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


class Norms:
    """Per-segment and global gradient norms of a flat device gradient (two-stage reduction)."""

    def __init__(self, sizes, dtype):
        _, tpb, nb = settings()
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.S = len(sizes)
        self.nb = max(1, min(nb, cdiv(int(max(sizes)), tpb)))
        self.bounds = cuda.to_device(bounds)
        self.partial = cuda.device_array((self.S, self.nb), np.float64)
        self.norms = cuda.device_array(self.S + 1, np.float64)

    def compute(self, k, g):
        """Launch the reduction of flat ``g``; the result stays on the device in ``self.norms``."""
        _, tpb, _ = settings()
        k.sumsq_segments[(self.nb, self.S), tpb](g, self.bounds, self.partial)
        k.finish_norms[1, 1](self.partial, self.norms)


def weight_gradients(k, x, hs, dz, W_ih, W_hh, dW_ih, dW_hh, db, db2, dx=None, dh0=None, dz_h=None):
    """After a reverse sweep: ``dW_ih, dW_hh, db`` (= ``db2``) as products over all (t, b) rows of
    ``dz : (T, B, G)``, and ∂L/∂x into ``dx``, ∂L/∂h_0 into ``dh0`` when given.

    A cell whose recurrent product sees another ∂L/∂z (the GRU) passes it as ``dz_h``: then
    ``dW_hh = dz_hᵀ h``, ``db2 = Σ dz_h``, ``db = Σ dz``, and ∂L/∂h_0 += dz_h[0] W_hh is *added* onto
    ``dh0`` (which holds the cell's direct share)."""
    T, B, I = x.shape
    G, H = W_hh.shape
    dz2 = dz.reshape(T * B, G)
    dzh2 = dz2 if dz_h is None else dz_h.reshape(T * B, G)
    launch_gemm(k, dz2, x.reshape(T * B, I), dW_ih, ta=1)
    launch_gemm(k, dzh2, hs[:T].reshape(T * B, H), dW_hh, ta=1)
    if dz_h is None:
        launch_1d(k.colsum, G, dz2, db, db2)
    else:
        launch_1d(k.colsum, G, dz2, db, db)
        launch_1d(k.colsum, G, dzh2, db2, db2)
    if dx is not None:
        check_device("dx", dx, (T, B, I), W_hh.dtype)
        launch_gemm(k, dz2, W_ih, dx.reshape(T * B, I))
    if dh0 is not None:
        check_device("dh0", dh0, (B, H), W_hh.dtype)
        launch_gemm(k, dz[0] if dz_h is None else dz_h[0], W_hh, dh0, accumulate=int(dz_h is not None))


def ptx_kernels(make, sigs, dtype=np.float32):
    """``[(name, python function, signature)]`` of the kernels ``make(dtype, tile, tpb)`` builds, with
    their signatures ``sigs(dtype)`` (compile_ptx checks)."""
    tile, tpb, _ = settings()
    py = make(np.dtype(dtype), tile, tpb)
    sig = sigs(dtype)
    return [(name, py[name], sig[name]) for name in py]


def kernels_for_ptx(dtype=np.float32):
    """``[(name, python function, signature)]`` of every shared kernel (compile_ptx checks)."""
    return ptx_kernels(_make, signatures, dtype)
