"""The machine the kernels run on, as the libraries see it: CPU model and ISA level, the CPU and features
Numba compiles for, the OpenBLAS builds loaded (their core type). Read by the product tuning
(kernels/tuning.py, its cache key) and named in every benchmark (explorer/benchmark.py)."""
from __future__ import annotations

import os

#: features worth naming, in the order they are printed
_NOTABLE = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16")


def isa_level(features) -> str:
    """The x86-64 ISA level a set of CPU features allows: "avx512", "avx2", "avx", "sse4.2" or "baseline"."""
    have = set(features)
    for level, needs in (("avx512", ("avx512f",)), ("avx2", ("avx2", "fma")), ("avx", ("avx",)),
                         ("sse4.2", ("sse4.2",))):
        if all(f in have for f in needs):
            return level
    return "baseline"


def numba_target() -> dict:
    """The CPU and features Numba's JIT compiles for (``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` or the host's),
    as Numba itself decides them (numba.core.codegen)."""
    import llvmlite.binding as ll
    import numba
    from numba.core.codegen import get_host_cpu_features

    name = numba.config.CPU_NAME or ll.get_host_cpu_name()
    text = numba.config.CPU_FEATURES if numba.config.CPU_FEATURES is not None else get_host_cpu_features()
    on = {f[1:] for f in text.split(",") if f.startswith("+")}
    return {"cpu": name, "isa": isa_level(on), "features": [f for f in _NOTABLE if f in on],
            "set_by_env": numba.config.CPU_NAME is not None or numba.config.CPU_FEATURES is not None,
            "cache_dir": numba.config.CACHE_DIR or None}


def host_cpu() -> dict:
    """The CPU as the OS reports it (/proc/cpuinfo on Linux): model name, family/model, hardware ISA level."""
    info = {"model": None, "family": None, "model_id": None, "isa": None, "vendor": None}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        import platform

        info["model"] = platform.processor() or platform.machine()
        return info
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    info["model"] = fields.get("model name")
    info["vendor"] = fields.get("vendor_id")
    for key, name in (("cpu family", "family"), ("model", "model_id")):
        if fields.get(key, "").isdigit():
            info[name] = int(fields[key])
    flags = set(fields.get("flags", "").split())
    flags |= {"sse4.2"} if "sse4_2" in flags else set()
    info["isa"] = isa_level(flags)
    return info


def blas_info() -> list[dict]:
    """OpenBLAS (and other BLAS/OpenMP) libraries loaded in this process, as threadpoolctl sees them:
    which package ships each, its kernels ("architecture": the core type OpenBLAS runs) and threads.
    SciPy's OpenBLAS (the one Numba calls) is loaded first so it is listed."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - both are dependencies
        return []
    out = []
    for lib in threadpool_info():
        path = lib.get("filepath", "")
        # the package that ships it: site-packages/<package>.libs/ or site-packages/<package>/
        parts = path.replace("\\", "/").split("/")
        owner = next((parts[k + 1].split(".")[0] for k, d in enumerate(parts[:-2])
                      if d in ("site-packages", "dist-packages")), "")
        out.append({"library": owner or os.path.basename(path), "api": lib.get("internal_api"),
                    "version": lib.get("version"), "architecture": lib.get("architecture"),
                    "threads": lib.get("num_threads")})
    return out
