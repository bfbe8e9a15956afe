"""Every JIT and threading setting of the project, in one place.

CPU kernels are compiled with :data:`JIT` (``@njit(**JIT)``): cached on disk,
GIL released so the GUI thread keeps running, and a fastmath flag set that
allows reassociation and contraction (so gate loops vectorize) but *not*
``nnan``/``ninf``: a diverging run must still show up as NaN/inf.

Threads: one owner of the cores. The CPU backend splits a batch into one
chunk per thread (:func:`cpu_threads`: ``NUMBA_NUM_THREADS``, default every
core) and runs the GIL-free row kernels on plain Python threads, each calling
BLAS on its own rows; so the BLAS that Numba uses (SciPy's OpenBLAS) is
limited to one thread by :func:`own_the_threads`, otherwise the two pools
oversubscribe the cores (measured 60-100x slower, PITFALLS.md). No Numba
``parallel=True``: OpenBLAS warns and may hang when called inside an OpenMP
region, and plain threads are safe from the GUI's worker thread too.

CUDA settings (threads per block, tile sizes) live here too, so tests can
patch them small and launches span several blocks.
"""

import numba

#: fastmath flags without nnan/ninf, so NaN and inf propagate (PITFALLS.md)
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: keyword arguments of every CPU kernel: ``@njit(**JIT)``
JIT = dict(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy", boundscheck=False)
#: a step smaller than this many recurrent multiply-adds (B·H·G) runs on one thread:
#: below it, waking and joining threads every call costs more than it saves
PARALLEL_MIN_MACS = 1 << 17
#: matrix products are cut into blocks of at most this many multiply-adds (kernels/blas.py):
#: OpenBLAS runs products up to 100³ on its small-matrix kernels, twice as fast here as packed GEMM
SMALL_GEMM_MACS = 1_000_000
#: tile (m, n, k) of a larger product: 524k multiply-adds, within that limit; measured 98-114 GFLOP/s
#: on one core for every skinny shape the kernels use (packed GEMM: 41-93)
GEMM_TILE = (32, 128, 128)
#: the row kernel (kernels/blas.py) takes products whose right operand (the weights) has at most this
#: many entries: 256 kB in float32, so it stays in a core's L2 while every row block streams over it
ROW_KERNEL_MAX_WEIGHTS = 1 << 16
#: ... and at most this many rows (a batch of 32 on one thread, or split over two): with more rows
#: OpenBLAS's packing pays for itself (128 rows: 28 ms vs 38-48 for the RNN at B = 256, H = 128)
ROW_KERNEL_MAX_ROWS = 32



_thread_limit: int | None = None


def limit_threads(n: int) -> None:
    """Cap :func:`cpu_threads` at ``n`` for this process (a sweep worker runs one thread)."""
    global _thread_limit
    _thread_limit = max(1, int(n))


def cpu_threads() -> int:
    """Threads the CPU backend may use: ``NUMBA_NUM_THREADS`` (default every core), capped by :func:`limit_threads`."""
    n = max(1, int(numba.config.NUMBA_NUM_THREADS))
    return n if _thread_limit is None else min(n, _thread_limit)

#: CUDA: threads per block of 1-D element-wise launches
CUDA_THREADS_PER_BLOCK = 256
#: CUDA: edge of the square shared-memory tile of the matrix-product kernels
CUDA_TILE = 16

_owned = False


def own_the_threads() -> None:
    """Limit the BLAS that Numba calls (SciPy's OpenBLAS) to one thread per caller, once.

    NumPy's own BLAS is left alone. Without threadpoolctl this is a no-op.
    """
    global _owned
    if _owned:
        return
    _owned = True
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that Numba calls, so it can be limited)

    controller = ThreadpoolController()
    for lib in controller.lib_controllers:
        path = lib.filepath
        if lib.internal_api == "openblas" and ("scipy.libs" in path or "scipy_openblas32" in path):
            lib.set_num_threads(1)
#: CUDA: at most this many blocks per parameter in the first stage of the gradient-norm reduction
CUDA_REDUCE_BLOCKS = 64
#: CUDA simulator only (NUMBA_ENABLE_CUDASIM=1, every CUDA thread is a Python thread): caps on the
#: tile edge and threads per block; results do not depend on them (each sum runs in the same order)
CUDA_SIM_MAX_TILE = 4
CUDA_SIM_MAX_THREADS = 32
