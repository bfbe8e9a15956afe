"""The recurrent products on packed weights: ``c = a @ w + beta * c`` with ``w`` cut into strips of 16 columns.

OpenBLAS packs its right operand again on every call; for the recurrent products (16-64 rows of
h_{t-1} or ∂L/∂z_t against the same W_hh at every one of T steps) that copy is not amortised (on its
Haswell kernels, one core: 30-50 GFLOP/s at 16-32 rows of a core's ~96). Here the weights are packed
once per training step (:func:`pack`: ``w : (k, n)`` -> ``(n / 16, k, 16)``, each strip contiguous)
and every product runs a register-blocked microkernel (:func:`_micro_4x16`, LLVM IR: a 4 × 16 block
of ``c`` in eight 8-float vector registers, one multiply-add per row and half-strip for each k, fused
where the CPU has FMA), strip by strip so a strip stays in L1/L2 while every 4-row block of ``a``
passes over it (measured on a Zen 3 core: 56-90 GFLOP/s on the kernels' shapes).

Only float32, and only ``n`` a multiple of 16 (the caller packs when H is); :func:`packed_gemm`
handles any number of rows (the last ``m mod 4`` in a plain loop). Whether it beats OpenBLAS and the
row kernel on this machine is measured by kernels/tuning.py, like the other strategies.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from kernels.config import JIT

#: columns per strip: two 8-float (AVX2) vectors
STRIP = 16

_F32 = ir.FloatType()
_V8 = ir.VectorType(_F32, 8)
_I32, _I64 = ir.IntType(32), ir.IntType(64)


@intrinsic
def _micro_4x16(typingctx, a_addr, lda, w_addr, c_addr, ldc, k):
    """``c[0:4, 0:16] += a[0:4, 0:k] @ strip``: ``a`` and ``c`` row-major float32 with row strides ``lda``,
    ``ldc`` (in floats), ``strip`` a packed (k, 16) block, 32-byte aligned; addresses as integers."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, sig, args):
        a_i, lda_, w_i, c_i, ldc_, k_ = args
        fp, vp = _F32.as_pointer(), _V8.as_pointer()
        a, w, c = builder.inttoptr(a_i, fp), builder.inttoptr(w_i, fp), builder.inttoptr(c_i, fp)
        fma = builder.module.globals.get("llvm.fmuladd.v8f32")
        if fma is None:
            fma = ir.Function(builder.module, ir.FunctionType(_V8, [_V8, _V8, _V8]), name="llvm.fmuladd.v8f32")
        # the 4 × 16 block of c in eight vector accumulators (allocas that LLVM promotes to registers)
        accs = []
        for r in range(4):
            row = builder.gep(c, [builder.mul(ldc_, ir.Constant(_I64, r))])
            for half in range(2):
                ptr = builder.bitcast(builder.gep(row, [ir.Constant(_I64, 8 * half)]), vp)
                value = builder.load(ptr)
                value.align = 4
                slot = cgutils.alloca_once(builder, _V8)
                builder.store(value, slot)
                accs.append((slot, ptr))
        a_rows = [builder.gep(a, [builder.mul(lda_, ir.Constant(_I64, r))]) for r in range(4)]
        undef = ir.Constant(_V8, ir.Undefined)
        splat = ir.Constant(ir.VectorType(_I32, 8), [0] * 8)
        with cgutils.for_range(builder, k_) as loop:
            p = loop.index
            w_p = builder.gep(w, [builder.mul(p, ir.Constant(_I64, STRIP))])
            halves = []
            for half in range(2):
                v = builder.load(builder.bitcast(builder.gep(w_p, [ir.Constant(_I64, 8 * half)]), vp))
                v.align = 4      # aligned in fact (pack: 64 bytes); unaligned loads cost nothing then
                halves.append(v)
            for r in range(4):
                x = builder.load(builder.gep(a_rows[r], [p]))
                xv = builder.shuffle_vector(builder.insert_element(undef, x, ir.Constant(_I32, 0)), undef, splat)
                for half in range(2):
                    slot = accs[2 * r + half][0]
                    builder.store(builder.call(fma, [xv, halves[half], builder.load(slot)]), slot)
        for slot, ptr in accs:
            out = builder.store(builder.load(slot), ptr)
            out.align = 4
        return context.get_dummy_value()

    return sig, codegen


@njit(**JIT)
def pack_into(w, wp):
    """``wp[s, p, j] = w[p, 16 s + j]``: ``w : (k, n)`` (any strides) into ``wp : (n / 16, k, 16)``."""
    k = w.shape[0]
    for s in range(wp.shape[0]):
        for p in range(k):
            row, dst = w[p], wp[s, p]
            for j in range(STRIP):
                dst[j] = row[STRIP * s + j]


def packable(w) -> bool:
    """Whether ``w : (k, n)`` can be packed: float32 with ``n`` a multiple of :data:`STRIP`."""
    return w.dtype == np.float32 and w.ndim == 2 and w.shape[1] % STRIP == 0 and w.shape[1] > 0


def pack(w) -> np.ndarray:
    """``w : (k, n)`` float32 (``n`` a multiple of 16) as ``(n / 16, k, 16)`` strips, 64-byte aligned."""
    from kernels.cpu_common import aligned_empty

    k, n = w.shape
    wp = aligned_empty((n // STRIP, k, STRIP), np.float32)
    pack_into(w, wp)
    return wp


@njit(**JIT)
def packed_gemm(a, wp, c, beta):
    """``c = a @ w + beta * c`` in place, ``w`` packed by :func:`pack`: ``a : (m, k)``, ``wp : (n / 16, k, 16)``,
    ``c : (m, n)``, float32, rows of ``a`` and ``c`` contiguous."""
    m, k = a.shape
    if a.strides[1] != 4 or c.strides[1] != 4:
        raise ValueError("packed_gemm needs contiguous rows")
    if beta != 1.0:
        bt = np.float32(beta)
        for i in range(m):
            ci = c[i]
            for j in range(ci.size):
                ci[j] = 0.0 if beta == 0.0 else ci[j] * bt
    if m == 0 or k == 0:
        return
    lda, ldc = a.strides[0] // 4, c.strides[0] // 4
    a0, w0, c0 = a.ctypes.data, wp.ctypes.data, c.ctypes.data
    full = m - m % 4
    for s in range(wp.shape[0]):
        strip = w0 + 4 * s * k * STRIP
        for i in range(0, full, 4):
            _micro_4x16(a0 + 4 * i * lda, lda, strip, c0 + 4 * (i * ldc + STRIP * s), ldc, k)
        for i in range(full, m):
            ai, ci, ws = a[i], c[i, STRIP * s:STRIP * (s + 1)], wp[s]
            for p in range(k):
                x, wr = ai[p], ws[p]
                for j in range(STRIP):
                    ci[j] += x * wr[j]
