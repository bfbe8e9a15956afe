"""Time a full training step (forward, BPTT, clip, Adam) against PyTorch and JAX on the CPU, in one run.

Every side trains the adding problem's shapes (I = 2 inputs, one output, MSE
at the last step), float32, with the same number of threads: ours (Numba),
PyTorch (the cell's ``torch.nn`` module) and JAX (XLA CPU: the same step as
one jitted function, in a worker process of its own so that XLA's thread
settings take effect before JAX is imported). Each config is warmed up, then
timed as the median of repeated steps, the sides in interleaved rounds. The
float32 matrix-product peak of the machine (a large NumPy matmul) gives each
config's achieved fraction of peak. :func:`machine_info` names the machine:
CPU, the ISA Numba compiles for, OpenBLAS's core type, PyTorch's CPU
capability, JAX/XLA's version and threads.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

from kernels.machine import blas_info, host_cpu, numba_target

#: the benchmark grid: (T, B, H) for each cell
GRID = [(100, 32, 32), (100, 32, 128), (400, 32, 64), (1000, 32, 64), (100, 256, 128), (100, 64, 512)]
N_IN = 2  # adding problem inputs
LR = 1e-3  # Adam's learning rate on every side
CLIP = 1.0  # global-norm clip on every side


@dataclass
class BenchRow:
    cell: str
    seq_len: int
    batch: int
    hidden: int
    ms_per_step: float
    torch_ms_per_step: float | None
    speedup: float | None           # torch_ms_per_step / ms_per_step
    peak_fraction: float            # achieved FLOP/s of our step / matmul peak
    jax_ms_per_step: float | None = None  # None: JAX not installed, skipped, or no JAX step for this cell
    jax_speedup: float | None = None      # jax_ms_per_step / ms_per_step
    isa: str = ""                   # the ISA level Numba compiled our kernels for: "avx512", "avx2", ...


def step_flops(cell: str, T: int, B: int, H: int, I: int = N_IN) -> float:
    """Matrix-product FLOPs of one train step: forward (x·W_ihᵀ, h·W_hhᵀ) and backward
    (∂h through W_hh, ∂W_hh, ∂W_ih, ∂x), 2 FLOPs per multiply-add."""
    from kernels import cells

    G = cells.get(cell).rows(H)
    return 2.0 * T * B * G * (3 * H + 3 * I)


def threads() -> int:
    """Threads every side may use: NUMBA_NUM_THREADS if set, else every core."""
    return int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matrix-product FLOP/s of this machine (best of ``repeats``)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * n ** 3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# -- the machine -----------------------------------------------------------------------------------
#: environment variables that change which code path a library picks (../shared/avx2-env.sh sets them)
ISA_OVERRIDES = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY",
                 "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "XLA_FLAGS", "LSTM_EXPLORER_GEMM")


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def jax_available() -> bool:
    return importlib.util.find_spec("jax") is not None


def _products() -> dict:
    """How our kernels run their products here (kernels/tuning.py): tiles or one BLAS call for large
    skinny ones, the row kernel or BLAS for small-weight ones, the recurrent ones on packed weights or
    not, and why."""
    from kernels.tuning import ENV_FORCE, tune_products

    choice = tune_products()
    keep = ("tiling", "rows", "packed_small", "packed_large", "tiled_ms", "whole_ms", "rows_ms", "blas_ms",
            "packed_small_ms", "packed_large_ms")
    return dict({k: choice[k] for k in keep}, source=choice["source"] if choice["source"] != "env" else ENV_FORCE)


def machine_info(n_threads: int, use_torch: bool) -> dict:
    """Everything that decides how fast the sides run here (the ``machine`` block of every JSON row)."""
    import numba

    cpu = host_cpu()
    target = numba_target()
    info = {
        "cpu": cpu["model"], "cpu_vendor": cpu["vendor"], "cpu_family": cpu["family"], "cpu_model": cpu["model_id"],
        "host_isa": cpu["isa"], "cpu_count": os.cpu_count(), "threads": n_threads,
        "numba": numba.__version__, "numba_cpu": target["cpu"], "isa": target["isa"],
        "numba_features": target["features"], "numba_cache_dir": target["cache_dir"],
        # figures taken with the library ISAs capped below what the CPU has (../shared/avx2-env.sh)
        "emulated": cpu["isa"] is not None and target["isa"] != cpu["isa"],
        "overrides": {k: os.environ[k] for k in ISA_OVERRIDES if os.environ.get(k)},
        "numpy": np.__version__, "openblas": blas_info(), "products": _products(),
        "torch": None, "torch_capability": None, "torch_threads": None,
        "jax": None, "xla_threads": None, "xla_flags": None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average": None,
    }
    if use_torch:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        try:
            info["torch_capability"] = torch.backends.cpu.get_cpu_capability()
        except AttributeError:  # pragma: no cover - torch < 2.0
            pass
    return info


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every OS
        return None


# -- timing ----------------------------------------------------------------------------------------
class _Local:
    """A side timed in this process: a zero-argument callable, one call per step."""

    def __init__(self, step):
        self.step = step

    def warm(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def times(self, budget_s: float, cap: int) -> list[float]:
        out, spent = [], 0.0
        while spent < budget_s and len(out) < cap:
            out.append(_timed(self.step))
            spent += out[-1]
        return out


def _median_seconds(sides: list, budget_s: float, rounds: int = 5, min_repeats: int = 5,
                    warmup: int = 2) -> list[float]:
    """Median seconds per step of each side (a zero-argument callable, or an object with
    ``warm(n)`` and ``times(budget_s, cap) -> [seconds]`` such as the JAX worker), timed in ``rounds``
    interleaved rounds (a, b, a, b, …) of about ``budget_s / rounds`` each, so that a passing load
    on the machine hits every side alike; at least ``min_repeats`` steps each."""
    sides = [s if hasattr(s, "times") else _Local(s) for s in sides]
    for side in sides:
        side.warm(warmup)
    times = [[] for _ in sides]
    for _ in range(rounds):
        for side, ts in zip(sides, times):
            ts += side.times(budget_s / rounds, 1000 - len(ts))
    for side, ts in zip(sides, times):
        if len(ts) < min_repeats:
            ts += side.times(float("inf"), min_repeats - len(ts))
    return [statistics.median(ts) for ts in times]


def _batch(T: int, B: int, seed: int = 0):
    from explorer.tasks import make_task

    return make_task("adding", max(T, 2)).sample(np.random.default_rng(seed), B)


def _init(cell: str, H: int) -> dict:
    """The initial parameters every side starts from (PyTorch layout, float32)."""
    from kernels.params import init_params

    return init_params(cell, N_IN, H, 1, np.random.default_rng(0))


def ours_step(cell: str, T: int, B: int, H: int, backend: str = "cpu"):
    """A zero-argument callable running one of our train steps."""
    import kernels

    be = kernels.backend(backend)
    model = be.make_model(cell, _init(cell, H), loss_kind="mse_last", optimizer="adam", lr=LR, clip=CLIP)
    batch = _batch(T, B)
    return lambda: model.step(batch.x, batch.y)


def torch_step(cell: str, T: int, B: int, H: int):
    """The same step in PyTorch: the cell's torch.nn module (LSTM, GRU, RNN) + nn.Linear + MSE + backward +
    clip_grad_norm_ + Adam."""
    import torch

    torch.manual_seed(0)
    from kernels import cells

    rnn = getattr(torch.nn, cells.get(cell).torch_module)(N_IN, H)
    readout = torch.nn.Linear(H, 1)
    params = list(rnn.parameters()) + list(readout.parameters())
    opt = torch.optim.Adam(params, lr=LR)
    batch = _batch(T, B)
    x, y = torch.from_numpy(batch.x), torch.from_numpy(batch.y)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = torch.mean((readout(out[-1]).squeeze(1) - y) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()

    return step


# -- JAX (XLA CPU) -----------------------------------------------------------------------------------
def _jax_cells():
    """One JAX step per equation set, keyed like a cell spec's ``torch_module`` (the torch.nn module with the
    same equations): a registered cell whose ``torch_module`` is one of these gets a JAX column.
    Each maps ``(W_ih, W_hh, b_ih, b_hh, xw_t, carry) -> carry``; ``carry[0]`` is h; ``xw_t = x_t W_ihᵀ + b_ih``."""
    import jax
    import jax.numpy as jnp

    def rnn(W_hh, b_hh, xw_t, carry):
        (h,) = carry
        return (jnp.tanh(xw_t + h @ W_hh.T + b_hh),)

    def lstm(W_hh, b_hh, xw_t, carry):
        h, c = carry
        z = xw_t + h @ W_hh.T + b_hh
        i, f, g, o = jnp.split(z, 4, axis=-1)                  # PyTorch's gate order
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return (jax.nn.sigmoid(o) * jnp.tanh(c), c)

    def gru(W_hh, b_hh, xw_t, carry):
        # torch.nn.GRU (linear before reset): n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        (h,) = carry
        hw = h @ W_hh.T + b_hh
        xr, xz, xn = jnp.split(xw_t, 3, axis=-1)
        hr, hz, hn = jnp.split(hw, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return ((1.0 - z) * n + z * h,)

    return {"RNN": (rnn, 1), "LSTM": (lstm, 2), "GRU": (gru, 1)}


def jax_module(cell: str) -> str | None:
    """The key of :func:`_jax_cells` for ``cell``, or None when it has no JAX step (default options only:
    the RNN's relu option is not timed in JAX)."""
    from kernels import cells

    module = cells.get(cell).torch_module
    return module if module in ("RNN", "LSTM", "GRU") else None


def jax_train_step(module: str):
    """``(step, loss_and_grads)`` for the cell with ``torch_module == module``, both ``jax.jit``-ed.

    ``step(state, x, y) -> (state, loss, grad_norm)``: forward over ``x : (T, B, I)`` (``lax.scan`` over
    time, the input projection for every step as one product first), MSE of the linear readout at the
    last step against ``y : (B,)``, BPTT (``jax.value_and_grad``), global-norm clip to :data:`CLIP`
    (``clip_grad_norm_``'s formula), Adam (``torch.optim.Adam``'s formula, lr :data:`LR`); ``state`` =
    ``(params, m, v, count)`` with ``params`` in PyTorch's layout. ``loss_and_grads(params, x, y)`` is the
    unclipped loss and gradient (for the agreement test).
    """
    import jax
    import jax.numpy as jnp

    cell_step, n_states = _jax_cells()[module]

    def loss_fn(p, x, y):
        T, B, _ = x.shape
        H = p["weight_hh"].shape[1]
        xw = x @ p["weight_ih"].T + p["bias_ih"]             # (T, B, G): every step's input projection

        def scan_step(carry, xw_t):
            carry = cell_step(p["weight_hh"], p["bias_hh"], xw_t, carry)
            return carry, None

        init = tuple(jnp.zeros((B, H), x.dtype) for _ in range(n_states))
        (h_T, *_), _ = jax.lax.scan(scan_step, init, xw)
        out = h_T @ p["readout.weight"].T + p["readout.bias"]   # (B, 1)
        return jnp.mean((out[:, 0] - y) ** 2)

    loss_and_grads = jax.value_and_grad(loss_fn)

    def step(state, x, y):
        p, m, v, count = state
        loss, g = loss_and_grads(p, x, y)
        leaves = jax.tree_util.tree_leaves(g)
        norm = jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in leaves))
        coef = jnp.minimum(1.0, CLIP / (norm + 1e-6))
        g = jax.tree_util.tree_map(lambda a: a * coef, g)
        count = count + 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
        v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
        c = count.astype(jnp.float32)
        step_size = LR / (1 - b1 ** c)
        bc2_sqrt = jnp.sqrt(1 - b2 ** c)
        p = jax.tree_util.tree_map(lambda p_, m_, v_: p_ - step_size * m_ / (jnp.sqrt(v_) / bc2_sqrt + eps), p, m, v)
        return (p, m, v, count), loss, norm

    return jax.jit(step, donate_argnums=(0,)), jax.jit(loss_and_grads)


def jax_initial_state(params: dict):
    """``(params, m, v, count)`` on the JAX device from PyTorch-layout NumPy parameters."""
    import jax.numpy as jnp

    p = {k: jnp.asarray(v) for k, v in params.items()}
    zeros = {k: jnp.zeros_like(v) for k, v in p.items()}
    return p, zeros, {k: jnp.zeros_like(v) for k, v in p.items()}, jnp.zeros((), jnp.int32)


class JaxWorker:
    """A process that times JAX steps for :func:`run_bench` (JSON lines over its stdin/stdout).

    XLA reads its settings when JAX is first imported, so they are set in a fresh process:
    ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=N"`` (appended to the
    caller's XLA_FLAGS, e.g. an ISA cap), and, when N is below the cores this process may use, the
    worker's CPU affinity cut to N cores: XLA 0.10's intra-op pool ("tf_XLAEigen" threads) is sized from
    the affinity mask, and does not read ``intra_op_parallelism_threads`` (measured: 2 pool threads on a
    2-core machine with N = 1 in XLA_FLAGS; 1 with the affinity cut). ``info()`` reports the pool's size.
    """

    def __init__(self, n_threads: int):
        env = dict(os.environ)
        flags = f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={n_threads}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
        env["JAX_PLATFORMS"] = "cpu"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self._err = tempfile.TemporaryFile("w+")
        code = f"from explorer.benchmark import _jax_worker_main; _jax_worker_main({int(n_threads)})"
        self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._err, env=env, text=True, bufsize=1)

    def _ask(self, **request):
        from explorer.errors import ExplorerError

        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self._err.seek(0)
            last = (self._err.read().strip().splitlines() or [f"exit code {self._proc.poll()}"])[-1]
            raise ExplorerError(f"the JAX worker stopped: {last}")
        answer = json.loads(line)
        if "error" in answer:
            raise ExplorerError(f"the JAX step failed: {answer['error']}")
        return answer

    def info(self) -> dict:
        return self._ask(op="info")

    def side(self, module: str, T: int, B: int, H: int, cell: str):
        """Prepare (compile, not yet warm) the JAX step of one config; returns a side for :func:`_median_seconds`."""
        self._ask(op="setup", module=module, cell=cell, T=T, B=B, H=H)
        return _RemoteSide(self)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._proc.stdout.close()
        self._err.close()


class _RemoteSide:
    def __init__(self, worker: JaxWorker):
        self.worker = worker

    def warm(self, n: int) -> None:
        self.worker._ask(op="warm", n=n)

    def times(self, budget_s: float, cap: int) -> list[float]:
        return self.worker._ask(op="time", budget_s=min(budget_s, 3600.0), cap=cap)["times"]


def _jax_worker_main(n_threads: int) -> None:
    """The JAX worker's loop (see :class:`JaxWorker`): one JSON request per stdin line, one answer per line."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if allowed and n_threads < len(allowed):
        os.sched_setaffinity(0, allowed[:n_threads])
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the answers
    import warnings

    import jax

    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
    current = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            op = request["op"]
            if op == "info":
                import jax.numpy as jnp

                (jnp.ones((64, 64)) @ jnp.ones((64, 64))).block_until_ready()  # starts the intra-op pool
                answer = {"jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
                          "xla_threads": _thread_count("tf_XLAEigen"),
                          "affinity": len(os.sched_getaffinity(0)) if allowed else None}
            elif op == "setup":
                step, _ = jax_train_step(request["module"])
                T, B, H = request["T"], request["B"], request["H"]
                batch = _batch(T, B)
                x, y = jax.numpy.asarray(batch.x), jax.numpy.asarray(batch.y)
                state = jax_initial_state(_init(request["cell"], H))
                current = [step, state, x, y]
                answer = {"ok": True}
            elif op in ("warm", "time"):
                step, state, x, y = current

                def one():
                    current[1], loss, _ = step(current[1], x, y)
                    loss.block_until_ready()

                if op == "warm":
                    for _ in range(request["n"]):
                        one()
                    answer = {"ok": True}
                else:
                    answer = {"times": _Local(one).times(request["budget_s"], request["cap"])}
            else:
                answer = {"error": f"unknown request {op!r}"}
        except Exception as exc:  # reported to the parent, which raises it as one line
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")


def _thread_count(name: str) -> int | None:
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:  # pragma: no cover - not Linux
        return None
    count = 0
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/comm") as f:
                count += f.read().strip() == name
        except OSError:
            pass
    return count


# -- the run ---------------------------------------------------------------------------------------
def run_bench(cells=("rnn", "lstm", "gru"), grid=GRID, budget_s: float = 1.0, with_torch: bool = True,
              backend: str = "cpu", progress=None, with_jax: bool = True) -> tuple[list[BenchRow], dict]:
    """Benchmark every (cell, T, B, H); returns rows and the machine info (:func:`machine_info`, plus
    ``backend``, ``matmul_peak_gflops``, the load average at start and end, and JAX's figures)."""
    n_threads = threads()
    use_torch = with_torch and torch_available()
    use_jax = with_jax and jax_available()
    if use_torch:
        import torch

        torch.set_num_threads(n_threads)
    info = machine_info(n_threads, use_torch)
    info["backend"] = backend
    load_start = _loadavg()
    worker = None
    if use_jax:
        if progress:
            progress("starting the JAX worker")
        worker = JaxWorker(n_threads)
    try:
        if worker:
            jax_info = worker.info()
            info.update(jax=jax_info["jax"], xla_threads=jax_info["xla_threads"], xla_flags=jax_info["xla_flags"])
        peak = matmul_peak()
        timings = []
        for cell in cells:
            module = jax_module(cell) if worker else None
            for T, B, H in grid:
                if progress:
                    progress(f"{cell} T={T} B={B} H={H}")
                sides = [ours_step(cell, T, B, H, backend)]
                if use_torch:
                    sides.append(torch_step(cell, T, B, H))
                if module:
                    sides.append(worker.side(module, T, B, H, cell))
                seconds = _median_seconds(sides, budget_s)
                ours = seconds[0]
                theirs = seconds[1] if use_torch else None
                jax_s = seconds[-1] if module else None
                timings.append((cell, T, B, H, ours, theirs, jax_s))
        # the peak is measured again at the end and the higher kept: another job on the machine during
        # one measurement would otherwise inflate every fraction
        peak = max(peak, matmul_peak())
    finally:
        if worker:
            worker.close()
    info["matmul_peak_gflops"] = peak / 1e9
    info["load_average"] = [load_start, _loadavg()]
    rows = [BenchRow(cell=cell, seq_len=T, batch=B, hidden=H, ms_per_step=ours * 1e3,
                     torch_ms_per_step=None if theirs is None else theirs * 1e3,
                     speedup=None if theirs is None else theirs / ours,
                     peak_fraction=step_flops(cell, T, B, H) / ours / peak,
                     jax_ms_per_step=None if jax_s is None else jax_s * 1e3,
                     jax_speedup=None if jax_s is None else jax_s / ours,
                     isa=info["isa"])
            for cell, T, B, H, ours, theirs, jax_s in timings]
    return rows, info


def rows_as_dicts(rows: list[BenchRow], machine: dict | None = None) -> list[dict]:
    """The JSON rows: every :class:`BenchRow` field, and ``machine`` (the same dict in every row) when given."""
    out = [asdict(r) for r in rows]
    if machine is not None:
        for r in out:
            r["machine"] = machine
    return out


def machine_lines(info: dict) -> list[str]:
    """The text header: the machine, the ISA each library runs, the peers and their threads."""
    cpu = info.get("cpu") or "unknown CPU"
    fam = f" (family {info['cpu_family']}, model {info['cpu_model']})" if info.get("cpu_family") is not None else ""
    isa = f"{info['isa']}" + (f", EMULATED on a {info['host_isa']} CPU" if info.get("emulated") else "")
    blas = ", ".join(f"{b['library']} {b['architecture']}" for b in info.get("openblas", [])
                     if b.get("api") == "openblas") or "none found"
    lines = [
        f"machine  {cpu}{fam}, {info.get('cpu_count')} cores, hardware ISA {info.get('host_isa')}",
        f"ISA      {isa}: Numba compiles for {info.get('numba_cpu')} "
        f"({' '.join(info.get('numba_features') or []) or 'no AVX'}); OpenBLAS kernels: {blas}",
        f"threads  {info.get('threads')} per side; numba {info.get('numba')}, numpy {info.get('numpy')}; "
        + (f"torch {info['torch']} (CPU capability {info.get('torch_capability')}, {info.get('torch_threads')} threads)"
           if info.get("torch") else "torch not used")
        + "; " + (f"jax {info['jax']} (XLA CPU, {info.get('xla_threads')} intra-op threads)"
                  if info.get("jax") else "jax not used"),
    ]
    products = info.get("products")
    if products:
        large = "GEMM_TILE tiles" if products["tiling"] else "one BLAS call"
        small = "the row kernel" if products["rows"] else "BLAS"
        packed = {(True, True): "small and large", (True, False): "small only", (False, True): "large only",
                  (False, False): "neither"}[products["packed_small"], products["packed_large"]]
        why = (f"set by {products['source']}" if products["tiled_ms"] is None else
               f"{products['source']}: large: tiles {products['tiled_ms']:.2f}, one call {products['whole_ms']:.2f}, "
               f"packed {products['packed_large_ms']:.2f} ms; small: row kernel {products['rows_ms']:.3f}, "
               f"BLAS {products['blas_ms']:.3f}, packed {products['packed_small_ms']:.3f} ms")
        lines.append(f"products large skinny ones as {large}, small-weight ones in {small}; W_hh packed for our "
                     f"microkernel: {packed} ({why})")
    if info.get("overrides"):
        lines.append("overrides " + ", ".join(f"{k}={v if len(v) < 40 else v[:37] + '…'}"
                                              for k, v in info["overrides"].items()))
    load = info.get("load_average") or [None, None]
    lines.append(f"run      {info.get('date')}, load average {load[0]} at start, {load[1]} at end; "
                 f"float32 matmul peak {info.get('matmul_peak_gflops', 0):.0f} GFLOP/s")
    return lines


#: the memory target's config: an LSTM training run at T = 1000, B = 32, H = 128
MEMORY_CONFIG = (1000, 32, 128)


def activation_bytes(cell: str, T: int, B: int, H: int, itemsize: int = 4) -> int:
    """What BPTT must keep per training step: every state (h_t; c_t for the LSTM) and the arrays the cell
    saves for backward (the LSTM's four gates; the GRU's three and W_hn h + b_hn)."""
    from kernels import cells

    return cells.get(cell).bptt_width() * T * B * H * itemsize


def training_memory(cell: str = "lstm", T: int = MEMORY_CONFIG[0], B: int = MEMORY_CONFIG[1],
                    H: int = MEMORY_CONFIG[2], steps: int = 3) -> dict:
    """Peak memory of a training run (the Trainer, as ``lstm-explorer train`` runs it, probes included),
    measured in a fresh process as the growth of its peak resident set over the process just before.

    Returns ``{"cell", "seq_len", "batch", "hidden", "steps", "peak_mb", "activations_mb", "ratio"}``.
    """
    import json
    import subprocess
    import sys

    from explorer.errors import ExplorerError

    _memory_config(cell, T, B, H, steps).validate()  # a bad size is refused here, in one line
    code = f"from explorer.benchmark import _memory_child; _memory_child({cell!r}, {T}, {B}, {H}, {steps})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise ExplorerError(f"the memory measurement of {cell} T={T} B={B} H={H} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _memory_config(cell: str, T: int, B: int, H: int, steps: int):
    from explorer.config import TrainConfig

    # training alone: the held-out test set (test_size) is an evaluation of fixed size, not BPTT's memory
    return TrainConfig(task="adding", seq_len=T, cells=(cell,), hidden=H, batch=B, steps=steps, test_size=0)


def _memory_child(cell: str, T: int, B: int, H: int, steps: int) -> None:
    import json

    import kernels
    from explorer.training import Trainer

    kernels.backend("cpu").warm_up((cell,))  # compiled code is not the run's memory
    config = _memory_config(cell, T, B, H, steps)
    base = resident_bytes(reset_peak=True)
    for _ in Trainer(config).run():
        pass
    peak = resident_bytes(peak=True) - base
    activations = activation_bytes(cell, T, B, H)
    print(json.dumps({"cell": cell, "seq_len": T, "batch": B, "hidden": H, "steps": steps,
                      "peak_mb": peak / 2 ** 20, "activations_mb": activations / 2 ** 20,
                      "ratio": peak / activations}))


def resident_bytes(peak: bool = False, reset_peak: bool = False) -> int:
    """Resident set size of this process (Linux /proc; ``peak``: the high-water mark, which
    ``reset_peak`` first resets to the current size)."""
    if reset_peak:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    key = "VmHWM:" if peak else "VmRSS:"
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")
