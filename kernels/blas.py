"""``c = a @ b + beta * c`` inside ``@njit`` kernels, on the BLAS that Numba's ``np.dot`` uses.

``np.dot`` in Numba cannot accumulate into its output or write into a strided
block, and it hands OpenBLAS whole products. The kernels need both: the
recurrent product added onto the input projection, weight gradients summed
over row blocks, and products cut into blocks of at most
:data:`kernels.config.SMALL_GEMM_MACS` multiply-adds, which OpenBLAS runs on
its small-matrix kernels without packing (measured on one core of a
Zen 4's AVX-512 build: 109 GFLOP/s for (16×128)·(128×512) as four tiles,
49 as one call).

Whether tiling pays depends on the BLAS build: OpenBLAS's small-matrix kernels
exist only for its AVX-512 targets; on its Haswell kernels (an AVX2 Zen 3) one
call is as fast or faster (+27% for (64×512)·(512×2048)). :func:`set_tiling`
switches it at run time (kernels/tuning.py measures which is faster once per
machine); the compiled kernels read the switch at each call.

The call goes to Numba's own C helper ``numba_xxgemm`` (Fortran ``?gemm`` from
SciPy's BLAS) by symbol name, so ``cache=True`` keeps working; the switch is a
C global found by symbol name the same way.
"""
import ctypes

import llvmlite.binding as ll
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from kernels.config import GEMM_TILE, JIT, SMALL_GEMM_MACS

_TILING_SYMBOL = "lstm_explorer_gemm_tiling"
_tiling = ctypes.c_int32(1)
ll.add_symbol(_TILING_SYMBOL, ctypes.addressof(_tiling))


def set_tiling(on: bool) -> None:
    """Run large skinny products as ``GEMM_TILE`` tiles (True) or as one BLAS call (False), from now on."""
    _tiling.value = 1 if on else 0


def tiling() -> bool:
    """Whether large skinny products run as tiles (see :func:`set_tiling`)."""
    return bool(_tiling.value)


@intrinsic
def _tiling_on(typingctx):
    """The switch of :func:`set_tiling`, read from its C global at each call."""
    def codegen(context, builder, sig, args):
        gv = builder.module.globals.get(_TILING_SYMBOL)
        if gv is None:
            gv = ir.GlobalVariable(builder.module, ir.IntType(32), _TILING_SYMBOL)
            gv.linkage = "external"
        return builder.icmp_signed("!=", builder.load(gv), ir.Constant(ir.IntType(32), 0))

    return types.boolean(), codegen

_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp,
    types.voidptr, types.voidptr, types.intp, types.voidptr, types.intp, types.voidptr, types.voidptr, types.intp))

_N, _T = 78, 84  # ord("N"), ord("T")


@intrinsic
def _address(typingctx, arr):
    """The data pointer of an array, as ``void*``."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.bitcast(data, cgutils.voidptr_t)

    return types.voidptr(arr), codegen


@intrinsic
def _scalar_address(typingctx, value):
    """A pointer to a stack copy of a float scalar, as ``void*`` (BLAS takes alpha/beta by reference)."""
    if not isinstance(value, types.Float):
        return None

    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once_value(builder, args[0])
        return builder.bitcast(slot, cgutils.voidptr_t)

    return types.voidptr(value), codegen


@njit(**JIT)
def _operand(x):
    """How BLAS (column-major) sees row-major operand ``x``: (transpose flag, leading dimension)."""
    rows, cols = x.shape
    size = x.itemsize
    if cols == 1 or x.strides[1] == size:  # rows contiguous: memory holds xᵀ column-major
        return _N, max(x.strides[0] // size, cols, 1)
    if rows == 1 or x.strides[0] == size:  # a transposed view: memory holds x column-major
        return _T, max(x.strides[1] // size, rows, 1)
    raise ValueError("gemm operands need unit stride along one axis")


@njit(**JIT)
def _gemm_call(a, b, c, beta):
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return
    if k == 0:
        c *= beta
        return
    if c.strides[1] != c.itemsize and n > 1:
        raise ValueError("gemm output rows must be contiguous")
    ldc = max(c.strides[0] // c.itemsize, n, 1)
    trans_a, lda = _operand(a)
    trans_b, ldb = _operand(b)
    kind = 115 if c.itemsize == 4 else 100  # "s" | "d"
    one = c.dtype.type(1.0)
    beta_ = c.dtype.type(beta)
    # row-major c = a·b is column-major cᵀ = bᵀ·aᵀ
    _xxgemm(kind, trans_b, trans_a, n, m, k, _scalar_address(one), _address(b), ldb, _address(a), lda,
            _scalar_address(beta_), _address(c), ldc)


@njit(**JIT)
def gemm(a, b, c, beta):
    """``c = a @ b + beta * c`` in place; ``a : (m, k)``, ``b : (k, n)``, ``c : (m, n)``, one float dtype.

    Views are fine (transposes, row and column blocks) as long as each
    operand has unit stride along one axis and ``c`` along its rows. A
    product above ``SMALL_GEMM_MACS`` multiply-adds with a side under 256
    runs as tiles of ``kernels.config.GEMM_TILE`` (m, n, k) while :func:`tiling` is on; where every
    side is 256 or more, OpenBLAS's packed GEMM is as fast or faster, so it gets the whole.
    """
    m, k = a.shape
    n = b.shape[1]
    if m * n * k <= SMALL_GEMM_MACS or min(m, n, k) >= 256 or not _tiling_on():
        _gemm_call(a, b, c, beta)
        return
    tm, tn, tk = GEMM_TILE
    for i in range(0, m, tm):
        for j in range(0, n, tn):
            for p in range(0, k, tk):
                _gemm_call(a[i:i + tm, p:p + tk], b[p:p + tk, j:j + tn], c[i:i + tm, j:j + tn],
                           beta if p == 0 else 1.0)
