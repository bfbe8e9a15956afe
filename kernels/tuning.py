"""How this machine runs the kernels' matrix products fastest, measured once and remembered.

Which way a product runs fastest depends on the BLAS build, not on our code. Large skinny products
run as ``GEMM_TILE`` tiles or as one call (Zen 4 with OpenBLAS's AVX-512 kernels: tiles twice as
fast; Zen 3 with its Haswell kernels: one call 0-27% faster); products on small weights (at most
``ROW_KERNEL_MAX_WEIGHTS``, the recurrent products up to H = 128) run in our row kernel or in
OpenBLAS (Zen 3, 16 rows: 57-62 vs 35 GFLOP/s); and the recurrent products on W_hh packed once per
step for our microkernel (kernels/packed.py) or on the weights as they are, for small and for large
weights apart (a Zen 4 core, one thread: packed 101-106 GFLOP/s on small weights where the row kernel
and OpenBLAS ran 49-102, 82-103 on large ones where OpenBLAS's tiles ran 92-106; a Zen 3: packed
56-90 everywhere, OpenBLAS 13-46). :func:`tune_products` times each choice on the products the kernels
run (one thread, best of a few repeats, ~0.5 s), keeps the faster and caches it per machine — CPU
model, the ISA Numba compiles for, OpenBLAS's version and core type — in ``gemm-tuning.json`` under
the user's cache folder (``LSTM_EXPLORER_CACHE_DIR``, else ``$XDG_CACHE_HOME/lstm-explorer``, else
``~/.cache/lstm-explorer``). ``LSTM_EXPLORER_GEMM`` set to ``blas`` or to any of ``tiles``, ``rows``,
``packed`` joined by ``+`` (``tiles+rows+packed``) forces a choice (no measurement). The choice
changes the order of the sums only: results agree to float32 rounding either way.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
import time

import numpy as np
from numba import njit

from kernels.blas import _gemm_call, _row_kernel, _tiled_call, gemm, set_strategy, strategy
from kernels.config import JIT, own_the_threads
from kernels.cpu_common import aligned_empty
from kernels.packed import pack, packed_gemm

#: (m, k, n) of the large products timed tiled and as one call: the recurrent products h·W_hhᵀ and
#: ∂z·W_hh of the LSTM and GRU at the benchmark grid's large sizes, per thread
TILE_SHAPES = ((32, 512, 2048), (64, 512, 2048), (32, 2048, 512), (64, 2048, 512))
#: (m, k, n) of the small-weight products timed in the row kernel and in OpenBLAS (H = 32 to 128, 16
#: and 32 rows: a batch of 32 split over two threads, or one)
ROW_SHAPES = ((16, 32, 128), (16, 64, 256), (16, 128, 512), (16, 512, 128), (32, 128, 512), (32, 512, 128))
CACHE_FILE = "gemm-tuning.json"
ENV_FORCE = "LSTM_EXPLORER_GEMM"
_PARTS = ("tiles", "rows", "packed")
_TIMES = ("tiled_ms", "whole_ms", "rows_ms", "blas_ms", "packed_large_ms", "packed_small_ms")
_FLAGS = ("tiling", "rows", "packed_small", "packed_large")
#: what the cached times mean; an entry of another version is measured again (3: packed weights chosen for
#: small and large W_hh apart, ``blas_ms`` as gemm runs the small products, tiled where tiles won)
VERSION = 3

ONE_CALL, TILES, ROWS, GEMM = 0, 1, 2, 3


@njit(**JIT)
def repeat_gemm(a, b, c, times, how):
    """``c = a @ b`` ``times`` times, ``how``: ONE_CALL (OpenBLAS), TILES (GEMM_TILE tiles), ROWS (the
    row kernel) or GEMM (:func:`kernels.blas.gemm` as the switch is set). For timing."""
    for _ in range(times):
        if how == TILES:
            _tiled_call(a, b, c, 0.0)
        elif how == ROWS:
            _row_kernel(a, b, c, 0.0)
        elif how == GEMM:
            gemm(a, b, c, 0.0)
        else:
            _gemm_call(a, b, c, 0.0)


@njit(**JIT)
def repeat_packed(a, wp, c, times):
    """``c = a @ w`` ``times`` times on ``w`` packed (kernels/packed.py). For timing."""
    for _ in range(times):
        packed_gemm(a, wp, c, 0.0)


def _ms(shapes, how, repeats: int = 5, times: int = 4) -> float:
    """Milliseconds per product, summed over ``shapes`` (aligned operands, best of ``repeats``); ``how``
    as :func:`repeat_gemm` takes it, or "packed"."""
    rng = np.random.default_rng(0)
    total = 0.0
    for m, k, n in shapes:
        a, b, c = aligned_empty((m, k), np.float32), aligned_empty((k, n), np.float32), aligned_empty((m, n), np.float32)
        a[:], b[:] = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        wp = pack(b) if how == "packed" else None

        def run(times):
            if wp is not None:
                repeat_packed(a, wp, c, times)
            else:
                repeat_gemm(a, b, c, times, how)

        run(1)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            run(times)
            best = min(best, time.perf_counter() - t)
        total += best / times
    return 1000 * total


def measure() -> dict:
    """Milliseconds per product of each strategy on its shapes (this thread); packed weights on both sets.
    ``blas_ms``: the small-weight products as :func:`kernels.blas.gemm` runs them without the row kernel,
    in tiles if they won on the large ones (OpenBLAS's AVX-512 small-matrix kernels: 115 GFLOP/s for
    (16×128)·(128×512) on a Zen 4 core, where one call ran 53 and the row kernel 52-66)."""
    own_the_threads()     # as the kernels run them: a two-thread OpenBLAS once made one call look faster
    times = {"tiled_ms": _ms(TILE_SHAPES, TILES), "whole_ms": _ms(TILE_SHAPES, ONE_CALL),
             "rows_ms": _ms(ROW_SHAPES, ROWS)}
    was = strategy()
    try:
        set_strategy(times["tiled_ms"] < times["whole_ms"], False)
        times["blas_ms"] = _ms(ROW_SHAPES, GEMM)
    finally:
        set_strategy(*was)
    return dict(times, packed_large_ms=_ms(TILE_SHAPES, "packed"), packed_small_ms=_ms(ROW_SHAPES, "packed"))


def choose(times: dict) -> dict:
    """The flags (``tiling``, ``rows``, ``packed_small``, ``packed_large``) that :func:`measure`'s times
    favour: packed weights, for small weights and for large apart, where the microkernel beats the faster
    of the other choices on the same shapes (a Zen 4's AVX-512 OpenBLAS tiles hold their own on the large
    ones, its Haswell kernels on a Zen 3 do not)."""
    return dict(tiling=times["tiled_ms"] < times["whole_ms"], rows=times["rows_ms"] < times["blas_ms"],
                packed_small=times["packed_small_ms"] < min(times["rows_ms"], times["blas_ms"]),
                packed_large=times["packed_large_ms"] < min(times["tiled_ms"], times["whole_ms"]))


def _forced(text: str) -> tuple[bool, bool, bool, bool] | None:
    """``LSTM_EXPLORER_GEMM``'s value as (tiles, rows, packed_small, packed_large); None if it names no
    choice (``packed`` packs small and large weights)."""
    parts = set(text.split("+"))
    if text == "blas":
        return False, False, False, False
    if parts and parts <= set(_PARTS):
        return "tiles" in parts, "rows" in parts, "packed" in parts, "packed" in parts
    return None


def machine_key() -> str:
    """What decides the products' speed: CPU model, Numba's target ISA and features, OpenBLAS builds."""
    from kernels.machine import blas_info, host_cpu, numba_target

    cpu, target = host_cpu(), numba_target()
    blas = sorted(f"{b['library']} {b['version']} {b['architecture']}" for b in blas_info() if b["api"] == "openblas")
    return " | ".join([f"{cpu['model']} (family {cpu['family']}, model {cpu['model_id']})",
                       f"numba {target['cpu']} {','.join(target['features'])}", *blas])


def cache_path() -> str:
    root = (os.environ.get("LSTM_EXPLORER_CACHE_DIR")
            or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lstm-explorer"))
    return os.path.join(root, CACHE_FILE)


def _read_cache(path: str) -> dict:
    """The cached choices by machine key; an unreadable or damaged file counts as empty (it is remeasured)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _valid(entry) -> bool:
    return (isinstance(entry, dict) and entry.get("version") == VERSION
            and all(isinstance(entry.get(k), bool) for k in _FLAGS)
            and all(isinstance(entry.get(k), (int, float)) for k in _TIMES))


def _write_cache(path: str, data: dict) -> None:
    """Write atomically (a concurrent reader sees the old file or the new); a folder we may not write
    to only means measuring again next time."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".gemm-tuning-", dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass


@functools.cache
def tune_products() -> dict:
    """Set kernels/blas.py's strategy for this machine, once per process; returns the choice:
    ``{"tiling": bool, "rows": bool, "packed_small": bool, "packed_large": bool, "source": "env" | "cache" |
    "measured", "key"}`` and the timings of :func:`measure` (None when forced)."""
    forced = _forced(os.environ.get(ENV_FORCE, "").strip().lower())
    if forced is not None:
        choice = dict(dict.fromkeys(_TIMES), **dict(zip(_FLAGS, forced)), source="env", key=None)
    else:
        key, path = machine_key(), cache_path()
        cached = _read_cache(path).get(key)
        if _valid(cached):
            choice = dict(cached, source="cache", key=key)
        else:
            times = measure()
            choice = dict(times, **choose(times), source="measured", key=key)
            data = _read_cache(path)
            if _valid(data.get(key)):
                choice = dict(data[key], source="cache", key=key)   # another process measured it meanwhile
            else:
                data[key] = {**{k: choice[k] for k in (*_FLAGS, *_TIMES)}, "version": VERSION}
                _write_cache(path, data)
    set_strategy(*(choice[f] for f in _FLAGS))
    return choice
