"""Print what a session file holds: each run's config, status, steps, final loss and
metric, and the chance baseline.

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
