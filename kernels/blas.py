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
call is as fast or faster (+27% for (64×512)·(512×2048)). There, OpenBLAS also
packs the weights again on every call, which a product of 16 rows does not
amortise (35 GFLOP/s): :func:`_row_kernel`, a plain loop over four rows at a
time that LLVM vectorises, runs those at 57-62 (rows 32-byte aligned,
:func:`kernels.cpu_common.aligned_empty`). :func:`set_strategy` switches both
at run time (kernels/tuning.py measures what is faster once per machine); the
compiled kernels read the switch at each call.

The call goes to Numba's own C helper ``numba_xxgemm`` (Fortran ``?gemm`` from
SciPy's BLAS) by symbol name, so ``cache=True`` keeps working; the switch is a
C global found by symbol name the same way.

The recurrent products (against W_hh at every step) go through :func:`product`, which also takes
the weights packed once per step (kernels/packed.py: a 3-D array) and then runs our microkernel
instead; whether the CPU backend packs them, for small weights and for large, is the last part of the
strategy (:func:`packing`).
"""
import ctypes

import llvmlite.binding as ll
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from kernels.config import GEMM_TILE, JIT, ROW_KERNEL_MAX_ROWS, ROW_KERNEL_MAX_WEIGHTS, SMALL_GEMM_MACS
from kernels.packed import STRIP, packed_gemm

_SWITCH_SYMBOL = "lstm_explorer_gemm_strategy"
_TILES, _ROWS = 1, 2      # the switch's bits
_switch = ctypes.c_int32(_TILES)
ll.add_symbol(_SWITCH_SYMBOL, ctypes.addressof(_switch))
_packing = [False, False]     # small weights, large weights


def set_strategy(tiles: bool, rows: bool, packed_small: bool = False, packed_large: bool = False) -> None:
    """From now on: large skinny products as ``GEMM_TILE`` tiles (``tiles``) or one BLAS call; products
    whose right operand has at most ``ROW_KERNEL_MAX_WEIGHTS`` entries by :func:`_row_kernel` (``rows``);
    the CPU backend packs W_hh for the recurrent products when it has at most that many entries
    (``packed_small``) or more (``packed_large``) (:func:`packing`)."""
    _switch.value = (_TILES if tiles else 0) | (_ROWS if rows else 0)
    _packing[:] = bool(packed_small), bool(packed_large)


def strategy() -> tuple[bool, bool, bool, bool]:
    """``(tiles, rows, packed_small, packed_large)`` as set by :func:`set_strategy`."""
    return bool(_switch.value & _TILES), bool(_switch.value & _ROWS), *_packing


def packing(weights: int) -> bool:
    """Whether the recurrent products on a W_hh of ``weights`` entries run on it packed (float32, H a
    multiple of 16; kernels/packed.py)."""
    return _packing[weights > ROW_KERNEL_MAX_WEIGHTS]


@intrinsic
def _strategy(typingctx):
    """The switch of :func:`set_strategy`, read from its C global at each call."""
    def codegen(context, builder, sig, args):
        gv = builder.module.globals.get(_SWITCH_SYMBOL)
        if gv is None:
            gv = ir.GlobalVariable(builder.module, ir.IntType(32), _SWITCH_SYMBOL)
            gv.linkage = "external"
        return builder.load(gv)

    return types.int32(), codegen


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
def _row_kernel(a, b, c, beta):
    """``c = a @ b + beta * c`` for operands whose rows are contiguous: four rows of ``a`` at a time,
    k unrolled by two, the inner loop over the contiguous columns of ``b`` (vectorised by LLVM)."""
    m, k = a.shape
    n = b.shape[1]
    bt = c.dtype.type(beta)
    zero = c.dtype.type(0.0)
    if beta != 1.0:
        for i in range(m):
            ci = c[i]
            for j in range(n):
                ci[j] = zero if beta == 0.0 else ci[j] * bt
    i = 0
    while i + 4 <= m:
        c0, c1, c2, c3 = c[i], c[i + 1], c[i + 2], c[i + 3]
        a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
        p = 0
        while p + 2 <= k:
            u, v = b[p], b[p + 1]
            x0, y0, x1, y1 = a0[p], a0[p + 1], a1[p], a1[p + 1]
            x2, y2, x3, y3 = a2[p], a2[p + 1], a3[p], a3[p + 1]
            for j in range(n):
                uj, vj = u[j], v[j]
                c0[j] += x0 * uj + y0 * vj
                c1[j] += x1 * uj + y1 * vj
                c2[j] += x2 * uj + y2 * vj
                c3[j] += x3 * uj + y3 * vj
            p += 2
        if p < k:
            u = b[p]
            x0, x1, x2, x3 = a0[p], a1[p], a2[p], a3[p]
            for j in range(n):
                uj = u[j]
                c0[j] += x0 * uj
                c1[j] += x1 * uj
                c2[j] += x2 * uj
                c3[j] += x3 * uj
        i += 4
    while i < m:
        ci, ai = c[i], a[i]
        for p in range(k):
            x, u = ai[p], b[p]
            for j in range(n):
                ci[j] += x * u[j]
        i += 1


def _by_row_kernel(a, b, c, beta, how):
    """Run ``c = a @ b + beta * c`` in :func:`_row_kernel` if the switch ``how`` and the sizes allow;
    returns whether it did. Only operands typed C-contiguous get the row kernel compiled in (decided
    when compiling: a column block such as the GRU's ``z[:, :2H]`` always goes to BLAS, and the many
    layouts ``gemm`` is compiled for do not each compile the row kernel)."""


@overload(_by_row_kernel, jit_options=dict(cache=True))
def _by_row_kernel_typed(a, b, c, beta, how):
    if not all(isinstance(x, types.Array) and x.layout == "C" for x in (a, b, c)):
        return lambda a, b, c, beta, how: False

    def impl(a, b, c, beta, how):
        m, k = a.shape
        if (how & _ROWS) and m <= ROW_KERNEL_MAX_ROWS and k * b.shape[1] <= ROW_KERNEL_MAX_WEIGHTS:
            _row_kernel(a, b, c, beta)
            return True
        return False
    return impl


@njit(**JIT)
def gemm(a, b, c, beta):
    """``c = a @ b + beta * c`` in place; ``a : (m, k)``, ``b : (k, n)``, ``c : (m, n)``, one float dtype.

    Views are fine (transposes, row and column blocks) as long as each
    operand has unit stride along one axis and ``c`` along its rows. With the
    row kernel on (:func:`set_strategy`), a product of C-contiguous operands with
    at most ``ROW_KERNEL_MAX_ROWS`` rows and at most ``ROW_KERNEL_MAX_WEIGHTS``
    entries in ``b`` runs in :func:`_row_kernel`. A product above ``SMALL_GEMM_MACS``
    multiply-adds with a side under 256 runs as tiles of
    ``kernels.config.GEMM_TILE`` (m, n, k) while tiling is on; where every
    side is 256 or more, OpenBLAS's packed GEMM is as fast or faster, so it
    gets the whole.
    """
    m, k = a.shape
    n = b.shape[1]
    how = _strategy()
    if _by_row_kernel(a, b, c, beta, how):
        return
    if m * n * k <= SMALL_GEMM_MACS or min(m, n, k) >= 256 or not (how & _TILES):
        _gemm_call(a, b, c, beta)
    else:
        _tiled_call(a, b, c, beta)


@njit(**JIT)
def _tiled_call(a, b, c, beta):
    """:func:`_gemm_call` on tiles of ``GEMM_TILE`` (m, n, k)."""
    m, k = a.shape
    n = b.shape[1]
    tm, tn, tk = GEMM_TILE
    for i in range(0, m, tm):
        for j in range(0, n, tn):
            for p in range(0, k, tk):
                _gemm_call(a[i:i + tm, p:p + tk], b[p:p + tk, j:j + tn], c[i:i + tm, j:j + tn],
                           beta if p == 0 else 1.0)


def product(a, w, c, beta):
    """``c = a @ w + beta * c`` for a recurrent product: ``w`` a 2-D weight matrix (:func:`gemm`) or the
    same packed by :func:`kernels.packed.pack` (a 3-D array, decided when compiling: our microkernel)."""


@overload(product, jit_options=dict(cache=True))
def _product_typed(a, w, c, beta):
    if isinstance(w, types.Array) and w.ndim == 3:
        if w.dtype != types.float32:
            raise TypeError("packed weights are float32 only")
        return lambda a, w, c, beta: packed_gemm(a, w, c, beta)
    return lambda a, w, c, beta: gemm(a, w, c, beta)


def columns(w, lo, hi):
    """Columns ``lo:hi`` of a weight matrix for :func:`product`, 2-D or packed (``lo``, ``hi`` then multiples of 16)."""


@overload(columns, jit_options=dict(cache=True))
def _columns_typed(w, lo, hi):
    if isinstance(w, types.Array) and w.ndim == 3:
        return lambda w, lo, hi: w[lo // STRIP:hi // STRIP]
    return lambda w, lo, hi: w[:, lo:hi]
