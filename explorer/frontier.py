"""The lag frontier and the claims table, computed from a sweep (Qt-free).

- :func:`frontier` — per (cell, T): seeds, seeds solved, success rate, median final
  metric and loss, the chance baseline, diverged/failed counts.
- :func:`claims` — one row per claim of the design's claims table, one number per
  series (a cell, or a cell and a ``--vary`` variant): gradient decay ratio, largest T
  solved, gate saturation, loss spread across seeds, parameter count and ms/step.
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

#: a cell "solves" T when at least this fraction of its seeds solved it
SOLVES_AT = 0.5

FRONTIER_COLUMNS = ("cell", "variant", "seq_len", "n_seeds", "n_solved", "success_rate", "median_final_metric",
                    "median_final_loss", "baseline_metric", "n_diverged", "n_failed")


def series_of(r: dict) -> str:
    """The curve a result row belongs to: its cell, or its cell and ``--vary`` variant ("lstm lr=0.01")."""
    return f"{r['cell']} {r['variant']}" if r.get("variant") else str(r["cell"])


def series_order(results) -> list[str]:
    """Every series of ``results``: cells in registry order (unregistered ones after, by name), variants in
    order of appearance."""
    from kernels import cells

    first = {}
    for r in results:
        first.setdefault(series_of(r), (r["cell"], len(first)))
    rank = {c: i for i, c in enumerate(cells.names())}
    return sorted(first, key=lambda k: (rank.get(first[k][0], len(rank)), first[k][0], first[k][1]))


def _nanmedian(values) -> float:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def frontier(results) -> list[dict]:
    """One row per (series, T): series as :func:`series_order`, T ascending.

    ``success_rate`` = seeds solved / seeds that ran (failed runs do not count as seeds).
    ``median_final_metric`` is over the seeds that produced a number (a diverged run keeps
    the metric of its last finite steps). ``sessions`` lists (seed, session file, solved).
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[(series_of(r), int(r["seq_len"]))].append(r)
    rows = []
    for series in series_order(results):
        for T in sorted(t for c, t in groups if c == series):
            rs = groups[(series, T)]
            ran = [r for r in rs if r.get("status") != "failed"]
            n = len(ran)
            solved = sum(1 for r in ran if r.get("solved"))
            base = [r.get("baseline_metric") for r in ran if r.get("baseline_metric") is not None]
            rows.append(dict(
                cell=rs[0]["cell"], variant=rs[0].get("variant", ""), series=series, seq_len=T, n_seeds=n,
                n_solved=solved,
                success_rate=solved / n if n else math.nan,
                median_final_metric=_nanmedian(r.get("final_metric") for r in ran),
                median_final_loss=_nanmedian(r.get("final_loss") for r in ran),
                baseline_metric=float(base[0]) if base else math.nan,
                n_diverged=sum(1 for r in ran if r.get("status") == "diverged"),
                median_solved_sequences=_nanmedian(r.get("solved_sequences") for r in ran
                                                   if r.get("solved") and (r.get("solved_sequences") or 0) > 0),
                n_failed=len(rs) - n,
                sessions=sorted((int(r["seed"]), r.get("session_path") or r.get("session", ""), bool(r.get("solved")))
                                for r in ran),
            ))
    return rows


def largest_solved(rows: list[dict], series: str, at: float = SOLVES_AT) -> int | None:
    """Largest T whose success rate is >= ``at`` for ``series`` (None when it solves none)."""
    ts = [r["seq_len"] for r in rows if r["series"] == series and r["n_seeds"] and r["success_rate"] >= at]
    return max(ts) if ts else None


def _gate_saturation(results, series: str, T: int) -> float:
    """Mean saturated fraction of the LSTM forget gate at the last probe, over the seeds at ``T``
    (read from the session files; NaN when none can be read)."""
    if not any(r["cell"] == "lstm" and series_of(r) == series for r in results):
        return math.nan
    try:
        from sessions import open_session
    except ImportError:  # pragma: no cover
        return math.nan
    vals = []
    for r in results:
        if series_of(r) != series or int(r["seq_len"]) != T or r.get("status") == "failed":
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
    """The claims table: one row per claim in the design's table, ``claim``, ``number``, ``detail`` and one
    float per series (``row["rnn"]``, ``row["lstm"]``, ``row["lstm lr=0.01"]``; see :func:`claims_columns`)."""
    results = list(results)
    rows = frontier(results)
    ran = [r for r in results if r.get("status") != "failed"]
    if not ran:
        return []
    names = series_order(ran)
    common = set.intersection(*({int(r["seq_len"]) for r in ran if series_of(r) == c} for c in names))
    T_max = max(common) if common else max(int(r["seq_len"]) for r in ran)

    def per_series(fn):
        return {c: fn(c) for c in names}

    def at(series, T, key):
        return [r.get(key) for r in ran if series_of(r) == series and int(r["seq_len"]) == T]

    solved = per_series(lambda c: largest_solved(rows, c))
    # compare gradient flow where it matters: the longest lag some series still solves
    solved_Ts = [t for t in solved.values() if t is not None and t in common]
    T_ref = max(solved_Ts) if solved_Ts else T_max
    decay = per_series(lambda c: _nanmedian(at(c, T_ref, "decay_ratio")))
    sat = per_series(lambda c: _gate_saturation(results, c, T_ref) if read_sessions else math.nan)

    def spread(c):
        stds = []
        for T in sorted({int(r["seq_len"]) for r in ran if series_of(r) == c}):
            v = np.asarray([x for x in at(c, T, "final_loss") if x is not None], dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size >= 2:
                stds.append(float(np.std(v, ddof=1)))
        return float(np.mean(stds)) if stds else math.nan

    def num(x):
        return math.nan if x is None else float(x)

    def row(claim, number, values, detail):
        return dict(claim=claim, number=number, detail=detail, **{c: num(values[c]) for c in names})

    Ts = sorted({int(r["seq_len"]) for r in ran})
    return [
        row("RNN gradients vanish through BPTT", f"decay ratio ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at T={T_ref}", decay,
            "median over seeds, last probe of each run, at the longest T a cell solves; "
            "smaller = more vanishing; 0 = underflowed float32 (below 1e-38)"),
        row("RNNs forget early inputs; LSTMs keep them", "largest T solved", solved,
            f"T swept: {','.join(map(str, Ts))}; solved = at least {SOLVES_AT:.0%} of seeds meet the "
            "task's solved rule; NaN = none solved"),
        row("gates select what to keep", f"forget-gate saturated fraction at T={T_ref}", sat,
            "LSTM only: fraction of f outside [0.1, 0.9] on the probe sequence, last probe"),
        row("LSTM training is more stable", "std of final loss across seeds", per_series(spread),
            "std over seeds at each T, averaged over T"),
        row("LSTM costs more", "parameter count", per_series(lambda c: (at(c, T_max, "param_count") or [math.nan])[0]),
            "readout included"),
        row("LSTM costs more", f"ms/step at T={T_max}", per_series(lambda c: _nanmedian(at(c, T_max, "ms_per_step"))),
            "median over seeds, wall time of the run's steps on its worker (CPU)"),
    ]


def claims_columns(rows: list[dict]) -> list[str]:
    """The columns of a claims table: ``claim``, ``number``, one per series, ``detail``."""
    series = [k for k in (rows[0] if rows else {}) if k not in ("claim", "number", "detail")]
    return ["claim", "number", *series, "detail"]


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
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
    columns = claims_columns(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([_fmt(r[c]) for c in columns])
