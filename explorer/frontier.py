"""The lag frontier and the claims table, computed from a sweep (Qt-free).

- :func:`frontier` — per (cell, T): seeds, seeds solved, success rate, median final
  metric and loss, the chance baseline, diverged/failed counts.
- :func:`claims` — one row per claim of the design's claims table, RNN vs LSTM:
  gradient decay ratio, largest T solved, gate saturation, loss spread across
  seeds, parameter count and ms/step.
- :func:`write_frontier_csv`, :func:`write_claims_csv`.

Inputs are result rows (dicts with the columns of :data:`sessions.sweep.COLUMNS`),
e.g. ``sessions.sweep.read_sweep(path).runs``.
"""
from __future__ import annotations

import csv
import math
import os
from collections import defaultdict

import numpy as np

CELL_ORDER = ("rnn", "lstm")
#: a cell "solves" T when at least this fraction of its seeds solved it
SOLVES_AT = 0.5

FRONTIER_COLUMNS = ("cell", "seq_len", "n_seeds", "n_solved", "success_rate", "median_final_metric",
                    "median_final_loss", "baseline_metric", "n_diverged", "n_failed")
CLAIMS_COLUMNS = ("claim", "number", "rnn", "lstm", "detail")


def _cells(results) -> list[str]:
    present = {r["cell"] for r in results}
    return [c for c in CELL_ORDER if c in present] + sorted(present - set(CELL_ORDER))


def _nanmedian(values) -> float:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def frontier(results) -> list[dict]:
    """One row per (cell, T), cells in RNN, LSTM order, T ascending.

    ``success_rate`` = seeds solved / seeds that ran (failed runs do not count as seeds).
    ``median_final_metric`` is over the seeds that produced a number (a diverged run keeps
    the metric of its last finite steps). ``sessions`` lists (seed, session file, solved).
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["cell"], int(r["seq_len"]))].append(r)
    rows = []
    for cell in _cells(results):
        for T in sorted(t for c, t in groups if c == cell):
            rs = groups[(cell, T)]
            ran = [r for r in rs if r.get("status") != "failed"]
            n = len(ran)
            solved = sum(1 for r in ran if r.get("solved"))
            base = [r.get("baseline_metric") for r in ran if r.get("baseline_metric") is not None]
            rows.append(dict(
                cell=cell, seq_len=T, n_seeds=n, n_solved=solved,
                success_rate=solved / n if n else math.nan,
                median_final_metric=_nanmedian(r.get("final_metric") for r in ran),
                median_final_loss=_nanmedian(r.get("final_loss") for r in ran),
                baseline_metric=float(base[0]) if base else math.nan,
                n_diverged=sum(1 for r in ran if r.get("status") == "diverged"),
                n_failed=len(rs) - n,
                sessions=sorted((int(r["seed"]), r.get("session_path") or r.get("session", ""), bool(r.get("solved")))
                                for r in ran),
            ))
    return rows


def largest_solved(rows: list[dict], cell: str, at: float = SOLVES_AT) -> int | None:
    """Largest T whose success rate is >= ``at`` for ``cell`` (None when it solves none)."""
    ts = [r["seq_len"] for r in rows if r["cell"] == cell and r["n_seeds"] and r["success_rate"] >= at]
    return max(ts) if ts else None


def _gate_saturation(results, cell: str, T: int) -> float:
    """Mean saturated fraction of the LSTM forget gate at the last probe, over the seeds at ``T``
    (read from the session files; NaN when none can be read)."""
    if cell != "lstm":
        return math.nan
    try:
        from sessions import open_session
    except ImportError:  # pragma: no cover
        return math.nan
    vals = []
    for r in results:
        if r["cell"] != cell or int(r["seq_len"]) != T or r.get("status") == "failed":
            continue
        path = r.get("session_path") or ""
        if not path or not os.path.isfile(path):
            continue
        try:
            with open_session(path) as s:
                run = s.run(s.run_names[0])
                sat = run.probe_series("saturation")
                if len(sat):
                    vals.append(float(sat[-1][1]))   # gates i, f, g, o -> f
        except Exception:
            continue
    return float(np.mean(vals)) if vals else math.nan


def claims(results, read_sessions: bool = True) -> list[dict]:
    """The claims table: one row per claim in the design's table (RNN vs LSTM numbers as floats)."""
    results = list(results)
    rows = frontier(results)
    cells = _cells(results)
    ran = [r for r in results if r.get("status") != "failed"]
    if not ran:
        return []
    common = set.intersection(*({int(r["seq_len"]) for r in ran if r["cell"] == c} for c in cells)) if cells else set()
    T_max = max(common) if common else max(int(r["seq_len"]) for r in ran)

    def per_cell(fn):
        return {c: fn(c) for c in CELL_ORDER}

    def at(cell, T, key):
        return [r.get(key) for r in ran if r["cell"] == cell and int(r["seq_len"]) == T]

    solved = per_cell(lambda c: largest_solved(rows, c))
    # compare gradient flow where it matters: the longest lag some cell still solves
    solved_Ts = [t for t in solved.values() if t is not None and t in common]
    T_ref = max(solved_Ts) if solved_Ts else T_max
    decay = per_cell(lambda c: _nanmedian(at(c, T_ref, "decay_ratio")))
    if read_sessions:
        sat = per_cell(lambda c: _gate_saturation(results, c, T_ref))
    else:
        sat = {c: math.nan for c in CELL_ORDER}

    def spread(c):
        Ts = sorted({int(r["seq_len"]) for r in ran if r["cell"] == c})
        stds = []
        for T in Ts:
            v = np.asarray([x for x in at(c, T, "final_loss") if x is not None], dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size >= 2:
                stds.append(float(np.std(v, ddof=1)))
        return float(np.mean(stds)) if stds else math.nan

    std_loss = per_cell(spread)
    params = per_cell(lambda c: (at(c, T_max, "param_count") or [math.nan])[0])
    ms = per_cell(lambda c: _nanmedian(at(c, T_max, "ms_per_step")))
    Ts = sorted({int(r["seq_len"]) for r in ran})

    def num(x):
        return math.nan if x is None else float(x)

    return [
        dict(claim="RNN gradients vanish through BPTT", number=f"decay ratio ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at T={T_ref}",
             rnn=num(decay["rnn"]), lstm=num(decay["lstm"]),
             detail="median over seeds, last probe of each run, at the longest T a cell solves; "
                    "smaller = more vanishing; 0 = underflowed float32 (below 1e-38)"),
        dict(claim="RNNs forget early inputs; LSTMs keep them", number="largest T solved",
             rnn=num(solved["rnn"]), lstm=num(solved["lstm"]),
             detail=f"T swept: {','.join(map(str, Ts))}; solved = at least {SOLVES_AT:.0%} of seeds meet the "
                    "task's solved rule; NaN = none solved"),
        dict(claim="gates select what to keep", number=f"forget-gate saturated fraction at T={T_ref}",
             rnn=num(sat["rnn"]), lstm=num(sat["lstm"]),
             detail="LSTM only: fraction of f outside [0.1, 0.9] on the probe sequence, last probe"),
        dict(claim="LSTM training is more stable", number="std of final loss across seeds",
             rnn=num(std_loss["rnn"]), lstm=num(std_loss["lstm"]),
             detail="std over seeds at each T, averaged over T"),
        dict(claim="LSTM costs more", number="parameter count",
             rnn=num(params["rnn"]), lstm=num(params["lstm"]), detail="readout included"),
        dict(claim="LSTM costs more", number=f"ms/step at T={T_max}",
             rnn=num(ms["rnn"]), lstm=num(ms["lstm"]),
             detail="median over seeds, wall time of the run's steps on its worker (CPU)"),
    ]


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    return str(v)


def write_frontier_csv(rows: list[dict], path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(FRONTIER_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r[c]) for c in FRONTIER_COLUMNS])


def write_claims_csv(rows: list[dict], path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CLAIMS_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r[c]) for c in CLAIMS_COLUMNS])
