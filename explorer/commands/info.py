"""Print what a session file holds: each run's config, status, steps, final loss and
metric, and the chance baseline; then the run card, one column per run: solved at step N
(M sequences) or not, best and final metric, the held-out test, the decay ratio
||dL/dh_1|| / ||dL/dh_T|| and the memory gate's saturation at the last probe, parameters,
ms/step. With --json each run also carries "card": {best_metric, final_metric, decay_ratio,
memory_gate, memory_gate_saturation, param_count, ms_per_step} (null for NaN).

A run whose writer was killed (or crashed) while it trained is reported as
"interrupted", with the steps it had flushed. A file that is still being written
is read as it is now.

examples:
  lstm-explorer info run.h5
  lstm-explorer info run.h5 --json | python -m json.tool
  lstm-explorer info run.h5 --check      # also validate the file against sessions/SCHEMA.md

exit status: 0 ok; 1 --check found problems; 2 the file cannot be read (one line on stderr)
"""
from __future__ import annotations

import argparse
import json
import math
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="an HDF5 session file (lstm-explorer train --out FILE)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: {format_version, runs: [{name, cell, config, status, steps, "
                             "final, baseline, solved_at, test}]} (NaN as null)")
    parser.add_argument("--check", action="store_true",
                        help="also validate the file against the schema; exit 1 if it has problems")


def _num(x):
    """float -> JSON number, NaN/inf -> None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _clean(obj):
    """Replace non-finite floats anywhere in a JSON-able structure by None."""
    if isinstance(obj, float):
        return _num(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def summary(session) -> dict:
    """The ``--json`` document of an open :class:`sessions.Session`."""
    runs = []
    for run in session.runs:
        final = run.final
        runs.append({
            "name": run.name,
            "cell": run.cell,
            "gates": list(run.gate_names),
            "init": run.init,
            "cell_options": _clean(run.cell_options),
            "config": _clean(run.config),
            "status": run.status,
            "steps": int(run.steps),
            "final": {"loss": _num(final["loss"]), "metric": _num(final["metric"])},
            "baseline": {"loss": _num(run.baseline["loss"]), "metric": _num(run.baseline["metric"])},
            "solved_at": _solved_at(run),
            "test": _test(run),
            "card": _card_json(run),
        })
    return {"format_version": session.format_version, "runs": runs}


def _solved_at(run) -> dict | None:
    """(session format 1.2) ``{"step", "sequences"}`` where the run's stop rule first held, else None."""
    at = getattr(run, "solved_at", None)
    return {"step": int(at["step"]), "sequences": int(at["sequences"])} if at else None


def _test(run) -> dict | None:
    """(1.2) The run's latest held-out test evaluation ``{"n", "loss", "metric", "wrong", "step"}``, else None."""
    t = getattr(run, "test", None)
    if not t:
        return None
    return {"n": int(t["n"]), "loss": _num(t["loss"]), "metric": _num(t["metric"]),
            "wrong": None if t["wrong"] is None else int(t["wrong"]), "step": int(t["step"])}


def _card_json(run) -> dict | None:
    """The run card's figures beyond the entry's own (:mod:`explorer.card`); None when the data cannot make one."""
    from explorer.card import CardError, run_card

    try:
        c = run_card(run)
    except CardError:
        return None
    return _clean({k: c[k] for k in ("best_metric", "final_metric", "decay_ratio", "memory_gate",
                                     "memory_gate_saturation", "param_count", "ms_per_step")})


def print_card(session, out=None) -> None:
    """The run card of every run as one table (or one line saying why it cannot be made)."""
    from explorer.card import CARD_COLUMNS, CardError, card_text, run_card
    from explorer.console import print_table

    try:
        cards = [card_text(run_card(run)) for run in session.runs]
    except CardError as exc:
        print(f"\nrun card: unavailable ({exc})", file=out)
        return
    if cards:      # one column per run, one row per figure: narrow enough for a terminal
        print(file=out)
        print_table([("run card", "left")] + [(c["cell"], "right") for c in cards],
                    [[header] + [c[k] for c in cards] for k, header in list(CARD_COLUMNS.items())[1:]], out=out)


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.6g}"


def _config_line(config: dict) -> str:
    parts = []
    for k, v in config.items():
        if isinstance(v, (list, tuple)):
            v = ",".join(map(str, v))
        parts.append(f"{k}={v}")
    return " ".join(parts)


def print_text(session, out=None) -> None:
    out = sys.stdout if out is None else out
    print(f"{session.path}: LSTM Explorer session, format {session.format_version}, "
          f"written by lstm-explorer {session.software_version or '?'}, created {session.created or '?'}"
          + ("  [still being written]" if session.live else ""), file=out)
    if not session.runs:
        print("  (no runs)", file=out)
    for run in session.runs:
        final, base = run.final, run.baseline
        planned = run.config.get("steps") if isinstance(run.config, dict) else None
        of = f" of {planned}" if isinstance(planned, int) else ""
        print(f"\nrun {run.name} ({run.cell}): {run.status}, {run.steps}{of} steps, "
              f"{run.param_count:,} parameters", file=out)
        if run.message:
            print(f"  message:  {run.message}", file=out)
        print(f"  config:   {_config_line(run.config)}", file=out)
        options = "".join(f", {k} {v}" for k, v in run.cell_options.items())
        print(f"  cell:     gates {','.join(run.gate_names) or 'none'}, init {run.init}{options}", file=out)
        better = "higher is better" if run.higher_is_better else "lower is better"
        print(f"  final:    loss {_fmt(final['loss'])}   {run.metric_name} {_fmt(final['metric'])}", file=out)
        print(f"  baseline: loss {_fmt(base['loss'])}   {run.metric_name} {_fmt(base['metric'])}"
              f"   (chance level; {run.metric_name}: {better})", file=out)
        at, test = _solved_at(run), _test(run)
        if at or "until_solved" in run.config:      # a file of format 1.2 or later
            print("  solved:   " + (f"at step {at['step']:,} ({at['sequences']:,} training sequences)" if at
                                    else "no (the stop rule never held)"), file=out)
        if test:
            wrong = "" if test["wrong"] is None else f"   wrong {test['wrong']:,} of {test['n']:,}"
            print(f"  test:     {test['n']:,} held-out sequences at step {test['step']:,}: loss {_fmt(test['loss'])}"
                  f"   {run.metric_name} {_fmt(test['metric'])}{wrong}", file=out)
        print(f"  probes:   {run.n_probes}   final parameters: {'saved' if run.params is not None else 'not saved'}",
              file=out)
    print_card(session, out)


def run(args: argparse.Namespace) -> int:
    from sessions import open_session, validate

    with open_session(args.file) as session:
        if session.damaged:
            print(f"lstm-explorer info: warning: {args.file}: {session.damaged}", file=sys.stderr)
        if args.json:
            json.dump(summary(session), sys.stdout, indent=2, allow_nan=False)
            print()
        else:
            print_text(session)
    if args.check:
        problems = validate(args.file)
        out = sys.stderr if args.json else sys.stdout
        if problems:
            print(f"{args.file}: {len(problems)} schema problem(s):", file=out)
            for p in problems:
                print(f"  - {p}", file=out)
            return 1
        print(f"{args.file}: valid (matches the session schema)", file=out)
    return 0
