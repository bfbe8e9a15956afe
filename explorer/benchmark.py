"""Time a full training step (forward, BPTT, clip, Adam) against PyTorch's CPU LSTM/RNN, in one run.

Both sides train the adding problem's shapes (I = 2 inputs, one output, MSE
at the last step), float32, with the same number of threads. Each config is
warmed up, then timed as the median of repeated steps, ours and PyTorch's
in interleaved rounds. The float32
matrix-product peak of the machine (a large NumPy matmul) gives each
config's achieved fraction of peak.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

#: the benchmark grid: (T, B, H) for each cell
GRID = [(100, 32, 32), (100, 32, 128), (400, 32, 64), (1000, 32, 64), (100, 256, 128), (100, 64, 512)]
N_IN = 2  # adding problem inputs


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


def step_flops(cell: str, T: int, B: int, H: int, I: int = N_IN) -> float:
    """Matrix-product FLOPs of one train step: forward (x·W_ihᵀ, h·W_hhᵀ) and backward
    (∂h through W_hh, ∂W_hh, ∂W_ih, ∂x), 2 FLOPs per multiply-add."""
    from kernels import cells

    G = cells.get(cell).rows(H)
    return 2.0 * T * B * G * (3 * H + 3 * I)


def threads() -> int:
    """Threads both sides may use: NUMBA_NUM_THREADS if set, else every core."""
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


def _median_seconds(steps: list, budget_s: float, rounds: int = 5, min_repeats: int = 5,
                    warmup: int = 2) -> list[float]:
    """Median seconds per call of each zero-argument callable in ``steps``, timed in ``rounds``
    interleaved rounds (a, b, a, b, …) of about ``budget_s / rounds`` each, so that a passing load
    on the machine hits every side alike; at least ``min_repeats`` calls each."""
    for step in steps:
        for _ in range(warmup):
            step()
    times = [[] for _ in steps]
    for _ in range(rounds):
        for step, ts in zip(steps, times):
            spent = 0.0
            while spent < budget_s / rounds and len(ts) < 1000:
                ts.append(_timed(step))
                spent += ts[-1]
    for step, ts in zip(steps, times):
        while len(ts) < min_repeats:
            ts.append(_timed(step))
    return [statistics.median(ts) for ts in times]


def _batch(T: int, B: int, seed: int = 0):
    from explorer.tasks import make_task

    return make_task("adding", max(T, 2)).sample(np.random.default_rng(seed), B)


def ours_step(cell: str, T: int, B: int, H: int, backend: str = "cpu"):
    """A zero-argument callable running one of our train steps."""
    import kernels
    from kernels.params import init_params

    be = kernels.backend(backend)
    model = be.make_model(cell, init_params(cell, N_IN, H, 1, np.random.default_rng(0)),
                          loss_kind="mse_last", optimizer="adam", lr=1e-3, clip=1.0)
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
    opt = torch.optim.Adam(params, lr=1e-3)
    batch = _batch(T, B)
    x, y = torch.from_numpy(batch.x), torch.from_numpy(batch.y)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = torch.mean((readout(out[-1]).squeeze(1) - y) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_bench(cells=("rnn", "lstm", "gru"), grid=GRID, budget_s: float = 1.0, with_torch: bool = True,
              backend: str = "cpu", progress=None) -> tuple[list[BenchRow], dict]:
    """Benchmark every (cell, T, B, H); returns rows and the machine info (peak, threads, versions)."""
    import numba

    n_threads = threads()
    use_torch = with_torch and torch_available()
    info = {"threads": n_threads, "backend": backend, "numba": numba.__version__, "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "torch": None}
    if use_torch:
        import torch

        torch.set_num_threads(n_threads)
        info["torch"] = torch.__version__
    peak = matmul_peak()
    timings = []
    for cell in cells:
        for T, B, H in grid:
            if progress:
                progress(f"{cell} T={T} B={B} H={H}")
            steps = [ours_step(cell, T, B, H, backend)] + ([torch_step(cell, T, B, H)] if use_torch else [])
            ours, *theirs = _median_seconds(steps, budget_s)
            timings.append((cell, T, B, H, ours, theirs[0] if theirs else None))
    # the peak is measured again at the end and the higher kept: another job on the machine during
    # one measurement would otherwise inflate every fraction
    peak = max(peak, matmul_peak())
    info["matmul_peak_gflops"] = peak / 1e9
    rows = [BenchRow(cell=cell, seq_len=T, batch=B, hidden=H, ms_per_step=ours * 1e3,
                     torch_ms_per_step=None if theirs is None else theirs * 1e3,
                     speedup=None if theirs is None else theirs / ours,
                     peak_fraction=step_flops(cell, T, B, H) / ours / peak)
            for cell, T, B, H, ours, theirs in timings]
    return rows, info


def rows_as_dicts(rows: list[BenchRow]) -> list[dict]:
    return [asdict(r) for r in rows]


#: the memory target's config: an LSTM training run at T = 1000, B = 32, H = 128
MEMORY_CONFIG = (1000, 32, 128)


def activation_bytes(cell: str, T: int, B: int, H: int, itemsize: int = 4) -> int:
    """What BPTT must keep per training step: every state (h_t; c_t for the LSTM) and the arrays the cell
    saves for backward (the LSTM's four gates; the GRU's three and W_hn h + b_hn)."""
    from kernels import cells

    spec = cells.get(cell)
    return (len(spec.states) + sum(spec.saved_widths().values())) * T * B * H * itemsize


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
    from explorer.training import TrainConfig

    return TrainConfig(task="adding", seq_len=T, cells=(cell,), hidden=H, batch=B, steps=steps)


def _memory_child(cell: str, T: int, B: int, H: int, steps: int) -> None:
    import json

    import kernels
    from explorer.training import Trainer

    kernels.backend("cpu").warm_up((cell,))  # compiled code is not the run's memory
    config = _memory_config(cell, T, B, H, steps)
    base = _resident_bytes(reset_peak=True)
    for _ in Trainer(config).run():
        pass
    peak = _resident_bytes(peak=True) - base
    activations = activation_bytes(cell, T, B, H)
    print(json.dumps({"cell": cell, "seq_len": T, "batch": B, "hidden": H, "steps": steps,
                      "peak_mb": peak / 2 ** 20, "activations_mb": activations / 2 ** 20,
                      "ratio": peak / activations}))


def _resident_bytes(peak: bool = False, reset_peak: bool = False) -> int:
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
