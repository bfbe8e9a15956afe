"""Time a full training step (forward, BPTT, clip, Adam) against PyTorch and JAX on the CPU.

Every side runs the adding problem's shapes in float32 with the same number of
threads (NUMBA_NUM_THREADS, default every core), measured in the same run:
warm-up, then the median of repeats in interleaved rounds. PyTorch runs the
cell's torch.nn module (RNN, LSTM, GRU); JAX (XLA CPU) the same step as one
jitted function in a worker process. Without PyTorch or JAX installed (extra
`bench`), their columns are empty. torch x, jax x = their time over ours.
peak = achieved fraction of this machine's float32 matrix-product peak (a
large NumPy matmul). The header names the machine: CPU, the ISA Numba
compiles for, OpenBLAS's kernels, PyTorch's CPU capability, XLA's threads,
the load average; --json repeats it as "machine" in every row.

--memory instead measures the peak memory of an LSTM training run at
T=1000, B=32, H=128 (or --grid's first TxBxH) in a fresh process, against the
activations BPTT must keep (h, c and four gates per step and sequence).

examples:
  lstm-explorer bench
  lstm-explorer bench --json --cell lstm --grid 100x32x32,1000x32x64
  lstm-explorer bench --cell gru --no-torch
  lstm-explorer bench --memory
"""
from __future__ import annotations

import argparse
import json
import sys

from explorer.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cell", default="rnn,lstm,gru", help="cells to time, comma separated (default: %(default)s)")
    p.add_argument("--grid", help="comma list of TxBxH (default: the standard grid of 6 configs)")
    p.add_argument("--backend", default="cpu", help="cpu | cuda (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=1.0,
                   help="time budget per config and framework (default: %(default)s)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-jax", action="store_true", help="skip the JAX (XLA CPU) comparison")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--memory", action="store_true",
                   help="measure the peak memory of a training run instead (Linux; default 1000x32x128, lstm)")


def _parse_grid(text: str | None):
    from explorer.benchmark import GRID

    if not text:
        return GRID
    grid = []
    for item in text.split(","):
        try:
            T, B, H = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--grid item {item!r} is not TxBxH, e.g. 100x32x64") from None
        if min(T, B, H) < 1:
            raise ConfigError(f"--grid item {item!r}: T, B and H must be >= 1")
        grid.append((T, B, H))
    return grid


def run(args: argparse.Namespace) -> int:
    from explorer.benchmark import jax_available, machine_lines, rows_as_dicts, run_bench, torch_available

    cells = tuple(c.strip() for c in args.cell.split(",") if c.strip())
    from explorer.config import cell_names

    bad = [c for c in cells if c not in cell_names()]
    if bad or not cells:
        raise ConfigError(f"--cell must be a comma list of {', '.join(cell_names())}, got {args.cell!r}")
    if args.seconds <= 0:
        raise ConfigError(f"--seconds must be > 0, got {args.seconds}")
    grid = _parse_grid(args.grid)
    if args.memory:
        return _memory(cells, grid if args.grid else None, args.json)
    missing = [name for name, skip, have in (("PyTorch", args.no_torch, torch_available()),
                                             ("JAX", args.no_jax, jax_available())) if not skip and not have]
    if missing and not args.json:
        print(f"{' and '.join(missing)} not installed (pip install 'lstm-explorer[bench]'): "
              "their columns stay empty", file=sys.stderr)
    rows, info = run_bench(cells, grid, args.seconds, not args.no_torch, args.backend,
                           progress=None if args.json else lambda what: print(f"timing {what}…", file=sys.stderr),
                           with_jax=not args.no_jax)
    if args.json:
        print(json.dumps(rows_as_dicts(rows, info), indent=1))
        return 0
    for line in machine_lines(info):
        print(line)
    print(f"{'cell':<5} {'T':>5} {'B':>4} {'H':>4} {'ours ms':>9} {'torch ms':>9} {'torch x':>8} "
          f"{'jax ms':>9} {'jax x':>7} {'peak':>6}")
    for r in rows:
        print(f"{r.cell:<5} {r.seq_len:>5} {r.batch:>4} {r.hidden:>4} {r.ms_per_step:>9.2f} "
              f"{_ms(r.torch_ms_per_step):>9} {_x(r.speedup):>8} {_ms(r.jax_ms_per_step):>9} {_x(r.jax_speedup):>7} "
              f"{100 * r.peak_fraction:>5.1f}%")
    return 0


def _ms(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _x(value) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _memory(cells, grid, as_json: bool) -> int:
    from explorer.benchmark import MEMORY_CONFIG, training_memory

    if not sys.platform.startswith("linux"):
        raise ConfigError("--memory reads /proc and works on Linux only")
    T, B, H = grid[0] if grid else MEMORY_CONFIG
    cell = "lstm" if "lstm" in cells else cells[0]
    result = training_memory(cell, T, B, H)
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{cell} T={T} B={B} H={H}: peak memory of training {result['peak_mb']:.1f} MiB, "
              f"activations BPTT must keep {result['activations_mb']:.1f} MiB, ratio {result['ratio']:.2f}x")
    return 0
