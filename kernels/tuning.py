"""How this machine runs the kernels' matrix products fastest, measured once and remembered.

Large skinny products (kernels/blas.py) run either as ``GEMM_TILE`` tiles or as one BLAS call; which
is faster depends on the BLAS build, not on our code (Zen 4 with OpenBLAS's AVX-512 kernels: tiles
twice as fast; Zen 3 with its Haswell kernels: one call 0-27% faster). :func:`tune_products` times
both on the products the kernels run (one thread, best of a few repeats, ~0.2 s) and keeps the
faster, cached per machine — CPU model, the ISA Numba compiles for, OpenBLAS's version and core
type — in ``gemm-tuning.json`` under the user's cache folder (``LSTM_EXPLORER_CACHE_DIR``, else
``$XDG_CACHE_HOME/lstm-explorer``, else ``~/.cache/lstm-explorer``). ``LSTM_EXPLORER_GEMM_TILING=0|1``
forces a choice (no measurement). The choice changes the order of the sums only: results agree to
float32 rounding either way.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
import time

import numpy as np
from numba import njit

from kernels.blas import _gemm_call, gemm, set_tiling
from kernels.config import JIT

#: (m, k, n) of the products timed: the recurrent products h·W_hhᵀ and ∂z·W_hh of the LSTM and GRU
#: at the benchmark grid's sizes, per thread (16-64 rows)
CALIBRATION_SHAPES = ((16, 128, 512), (32, 128, 512), (32, 512, 128), (32, 512, 2048), (64, 512, 2048),
                      (32, 2048, 512))
CACHE_FILE = "gemm-tuning.json"
ENV_FORCE = "LSTM_EXPLORER_GEMM_TILING"


@njit(**JIT)
def repeat_gemm(a, b, c, times, tiled):
    """``c = a @ b`` ``times`` times: through :func:`kernels.blas.gemm` (tiled while the switch is on) or
    as one BLAS call (``tiled`` False). For timing."""
    for _ in range(times):
        if tiled:
            gemm(a, b, c, 0.0)
        else:
            _gemm_call(a, b, c, 0.0)


def _seconds(a, b, c, tiled: bool, repeats: int = 5, times: int = 4) -> float:
    repeat_gemm(a, b, c, 1, tiled)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        repeat_gemm(a, b, c, times, tiled)
        best = min(best, time.perf_counter() - t)
    return best / times


def measure(shapes=CALIBRATION_SHAPES) -> dict:
    """Seconds per product, summed over ``shapes``, tiled and as one call (this thread, tiling as it is)."""
    set_tiling(True)            # gemm tiles only while the switch is on
    rng = np.random.default_rng(0)
    tiled = whole = 0.0
    for m, k, n in shapes:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)
        tiled += _seconds(a, b, c, True)
        whole += _seconds(a, b, c, False)
    return {"tiled_ms": 1000 * tiled, "whole_ms": 1000 * whole}


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
    """Set kernels/blas.py's tiling switch for this machine, once per process; returns the choice:
    ``{"tiling": bool, "source": "env" | "cache" | "measured", "tiled_ms", "whole_ms", "key"}``."""
    forced = os.environ.get(ENV_FORCE, "").strip()
    if forced in ("0", "1"):
        choice = {"tiling": forced == "1", "source": "env", "tiled_ms": None, "whole_ms": None, "key": None}
    else:
        key, path = machine_key(), cache_path()
        cached = _read_cache(path).get(key)
        if (isinstance(cached, dict) and isinstance(cached.get("tiling"), bool)
                and all(isinstance(cached.get(k), (int, float)) for k in ("tiled_ms", "whole_ms"))):
            choice = dict(cached, source="cache", key=key)
        else:
            times = measure()
            choice = dict(times, tiling=times["tiled_ms"] < times["whole_ms"], source="measured", key=key)
            data = _read_cache(path)
            if isinstance(data.get(key), dict) and isinstance(data[key].get("tiling"), bool):
                choice = dict(data[key], source="cache", key=key)   # another process measured it meanwhile
            else:
                data[key] = {k: choice[k] for k in ("tiling", "tiled_ms", "whole_ms")}
                _write_cache(path, data)
    set_tiling(choice["tiling"])
    return choice
