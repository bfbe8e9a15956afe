"""Every JIT setting of the project, in one place.

CPU kernels are compiled with :data:`JIT` (``@njit(**JIT)``): cached on disk,
GIL released so the GUI thread keeps running, and a fastmath flag set that
allows reassociation and contraction (so gate loops vectorize) but *not*
``nnan``/``ninf``: a diverging run must still show up as NaN/inf.

CUDA settings (threads per block, tile sizes) live here too, so tests can
patch them small and launches span several blocks.
"""

#: fastmath flags without nnan/ninf, so NaN and inf propagate (PITFALLS.md)
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: keyword arguments of every CPU kernel: ``@njit(**JIT)``
JIT = dict(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy", boundscheck=False)

#: CUDA: threads per block of 1-D element-wise launches
CUDA_THREADS_PER_BLOCK = 256
#: CUDA: edge of the square shared-memory tile of the matrix-product kernels
CUDA_TILE = 16
