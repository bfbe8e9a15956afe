"""The run card: one session's claims in one row per cell (Qt-free).

Solved at step N (M sequences) or not, best and final metric, the held-out test figure, the decay
ratio ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ and the memory gate's saturation at the last probe, parameters and
ms/step (the session's wall clock: cells trained side by side share it, so it is the step of them all). Read from any run with the ``sessions.Run`` API (a file, or a live run in the window);
shown by ``lstm-explorer info``, in the window's "Run card" tab and exported as ``card``.
"""
from __future__ import annotations

import csv
import math

import numpy as np

from explorer.errors import ExplorerError

#: steps the final loss and metric are averaged over (as in sweeps)
FINAL_WINDOW = 50

#: the card's columns, in order: key -> header
CARD_COLUMNS = {
    "cell": "cell",
    "status": "status",
    "steps": "steps",
    "solved": "solved at",
    "best_metric": "best metric",
    "final_metric": "final metric",
    "test": "held-out test",
    "decay_ratio": "‖∂L/∂h_1‖ / ‖∂L/∂h_T‖",
    "memory_gate_saturation": "memory gate saturated",
    "param_count": "parameters",
    "ms_per_step": "ms/step (all cells)",
}


def decay_ratio(grad_norm_t) -> float:
    """‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ of one probe's ``grad_norm_t : (L,)`` (NaN when undefined)."""
    g = np.asarray(grad_norm_t, dtype=np.float64).ravel()
    g = g[: np.flatnonzero(np.isfinite(g))[-1] + 1] if np.isfinite(g).any() else g   # a shorter batch: NaN tail
    if g.size == 0 or not np.isfinite(g[0]) or not np.isfinite(g[-1]) or g[-1] <= 0:
        return math.nan
    return float(g[0] / g[-1])


def final_mean(values) -> float:
    """Mean of the last :data:`FINAL_WINDOW` values (NaN for none)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.mean(v[-FINAL_WINDOW:])) if v.size else math.nan


def _memory_gate(run) -> tuple[str | None, int | None]:
    """The run's memory gate (LSTM f, GRU z) and its row in the saturation probe, from the cell registry."""
    from kernels import cells
    from kernels.errors import KernelInputError

    try:
        gate = cells.get(run.cell).memory_gate
    except KernelInputError:
        return None, None
    names = tuple(getattr(run, "gate_names", ()) or ())
    return (gate, names.index(gate)) if gate in names else (None, None)


class CardError(ExplorerError):
    """A run's data cannot make a card (a damaged file): the message names the run and what is wrong."""


def run_card(run) -> dict:
    """The card of one run: the keys of :data:`CARD_COLUMNS` as numbers (``solved`` as ``{"step",
    "sequences"}`` or None, ``test`` as the final held-out evaluation's dict or None) plus ``name``,
    ``metric_name``, ``higher_is_better`` and ``memory_gate``. :class:`CardError` when its data is malformed
    (a reader's own errors pass through)."""
    try:
        return _run_card(run)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise CardError(f"run {run.name!r}: its run card cannot be computed ({exc})") from None


def _run_card(run) -> dict:
    _, time, metric = run.scalar("metric")
    metric = np.asarray(metric, dtype=np.float64)
    n = metric.shape[0]
    finite = metric[np.isfinite(metric)]
    best = (finite.max() if run.higher_is_better else finite.min()) if finite.size else math.nan
    wall = float(np.asarray(time, dtype=np.float64)[-1]) if n else math.nan
    probes = run.probe_series("grad_norm_t")
    gate, row = _memory_gate(run)
    saturation = math.nan
    if row is not None:
        sat = np.asarray(run.probe_series("saturation"), dtype=np.float64)
        if sat.ndim == 2 and sat.shape[0] and row < sat.shape[1]:
            saturation = float(sat[-1, row])
    tests = [t for t in (getattr(run, "tests", None) or []) if t.get("final")]
    return dict(cell=run.cell, name=run.name, status=run.status, steps=int(run.steps),
                solved=getattr(run, "solved_at", None), best_metric=float(best), final_metric=final_mean(metric),
                metric_name=run.metric_name, higher_is_better=bool(run.higher_is_better),
                test=tests[-1] if tests else None,
                decay_ratio=decay_ratio(probes[-1]) if len(probes) else math.nan,
                memory_gate=gate, memory_gate_saturation=saturation, param_count=int(run.param_count),
                ms_per_step=1000.0 * wall / n if n and wall > 0 else math.nan)


def _num(v, fmt: str = ".4g") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def card_text(card: dict) -> dict[str, str]:
    """The card's cells as text, keyed as :data:`CARD_COLUMNS` (what the table, the window and CSV show)."""
    from explorer.console import compact

    s, t = card["solved"], card["test"]
    if t:
        wrong = "" if t.get("wrong") is None else f", {t['wrong']:,} wrong"
        test = f"{card['metric_name']} {_num(t['metric'])} (n={t['n']:,}{wrong})"
    else:
        test = "—"
    gate = card["memory_gate"]
    return dict(
        cell=card["name"], status=card["status"], steps=f"{card['steps']:,}",
        solved=f"step {s['step']:,} ({compact(s['sequences'])} seq.)" if s else "not solved",
        best_metric=f"{card['metric_name']} {_num(card['best_metric'])}",
        final_metric=f"{card['metric_name']} {_num(card['final_metric'])}", test=test,
        decay_ratio=_num(card["decay_ratio"], ".3g"),
        memory_gate_saturation=f"{gate}: {_num(card['memory_gate_saturation'], '.3f')}" if gate else "—",
        param_count=f"{card['param_count']:,}", ms_per_step=_num(card["ms_per_step"], ".3g"))


def csv_table(cards: list[dict]) -> tuple[list[str], list[list]]:
    """``(header, rows)`` of the card as CSV: plain numbers, one row per run."""
    header = ["cell", "status", "steps", "solved_step", "solved_sequences", "metric", "best_metric",
              "final_metric", "test_n", "test_metric", "test_wrong", "decay_ratio", "memory_gate",
              "memory_gate_saturation", "param_count", "ms_per_step"]
    rows = []
    for c in cards:
        s, t = c["solved"] or {}, c["test"] or {}
        rows.append([c["name"], c["status"], c["steps"], s.get("step", ""), s.get("sequences", ""), c["metric_name"],
                     c["best_metric"], c["final_metric"], t.get("n", ""), t.get("metric", ""),
                     "" if t.get("wrong") is None else t["wrong"], c["decay_ratio"], c["memory_gate"] or "",
                     c["memory_gate_saturation"], c["param_count"], c["ms_per_step"]])
    return header, rows


def write_csv(cards: list[dict], path: str) -> str:
    header, rows = csv_table(cards)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path
