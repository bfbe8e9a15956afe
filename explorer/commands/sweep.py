"""Train many (cell, lag T, seed) runs on Dask and measure the lag frontier.

Every (cell, T, seed) is one Dask task; each run writes its own session file
DIR/<task>-<cell>-T<T>-s<seed>.h5, and DIR/sweep.h5 collects the sweep's config
and every run's final loss, metric, solved flag, status and steps/s (rewritten
after each finished run). Running the same command again skips finished runs.

By default the runs go to an embedded Dask LocalCluster sized to this machine
(one thread per worker, NUMBA_NUM_THREADS=1). With --scheduler (or
DASK_SCHEDULER_ADDRESS) the same sweep goes to a real cluster; its workers must
have lstm-explorer installed and see DIR (a shared folder):

  dask scheduler --host 127.0.0.1 --port 8786 &
  NUMBA_NUM_THREADS=1 dask worker tcp://127.0.0.1:8786 --nworkers 2 --nthreads 1 &

example:
  lstm-explorer sweep --task adding --cells rnn,lstm --seq-lens 10,20,50,100,200 \\
      --seeds 5 --steps 3000 --hidden 64 --lr 1e-2 --out sweeps/adding
  lstm-explorer export sweeps/adding/sweep.h5 --plot frontier --out frontier.png
"""
from __future__ import annotations

import argparse
import sys

from explorer.commands.train import add_config_arguments, config_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cells", default="rnn,lstm", help="cells to sweep, comma separated: any of rnn, lstm, gru "
                                                        "(default: %(default)s)")
    p.add_argument("--seq-lens", metavar="T,T,...", help="lags T to sweep, comma separated (required), e.g. 10,20,50,100")
    p.add_argument("--seeds", type=int, default=5, help="seeds per (cell, T): runs seeds 0..N-1 (default: %(default)s)")
    p.add_argument("--vary", action="append", metavar="FIELD=V1,V2",
                   help="one more sweep axis: any training setting (lr, hidden, batch, clip, optimizer, ...) "
                        "and its values, e.g. --vary lr=1e-3,1e-2 (repeatable: the product of all)")
    p.add_argument("--inits", metavar="INIT,INIT",
                   help="initialisations to sweep (one more axis), e.g. default,chrono; separate with ; when an "
                        "item names cells: 'default;lstm=chrono,rnn=identity'")
    add_config_arguments(p)
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the session files and sweep.h5")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="Dask scheduler to send the runs to (default: $DASK_SCHEDULER_ADDRESS, "
                        "else an embedded LocalCluster)")
    p.add_argument("--workers", type=int, help="worker processes of the embedded cluster (default: one per core)")
    p.add_argument("--retries", type=int, default=2,
                   help="times a run that raises is retried (default: %(default)s); a lost worker's run is "
                        "always rescheduled, a diverged run never retried")
    p.add_argument("--force", action="store_true", help="retrain every run, even those already finished in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the summary")


def run(args: argparse.Namespace) -> int:
    from explorer.errors import ConfigError
    from explorer.sweep import SweepPlan, parse_inits, parse_int_list, parse_vary, run_sweep

    if args.seq_lens is None:
        raise ConfigError("no seq-lens given: pass --seq-lens as a comma list, e.g. --seq-lens 10,20,50,100")
    seq_lens = parse_int_list(args.seq_lens, "seq-lens")
    cells = tuple(c.strip() for c in (args.cells or "").split(",") if c.strip())
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    if args.retries < 0:
        raise ConfigError(f"--retries must be >= 0, got {args.retries}")
    if not cells:
        raise ConfigError("cells is empty: give one or more of rnn, lstm, gru, e.g. rnn,lstm")
    # the shared fields, checked here; every run (one cell at one T, its memory too) is checked by the plan
    base = config_from_args(args, cells=cells[:1], seq_len=min(seq_lens), seed=0)
    vary = parse_vary(args.vary)
    if args.inits:
        if args.init or "init" in vary:
            raise ConfigError("give the initialisations once: --inits, or --init, or --vary init=...")
        vary = {"init": parse_inits(args.inits), **vary}
    plan = SweepPlan(base=base, cells=cells, seq_lens=seq_lens, seeds=args.seeds, out=args.out,
                     vary=vary).validate()
    n = len(plan.specs())
    varied = "".join(f", {k} in {','.join(map(str, v))}" for k, v in plan.vary.items())
    print(f"sweep: {plan.base.task}, cells {','.join(cells)}, T in {','.join(map(str, seq_lens))}{varied}, "
          f"{plan.seeds} seed(s): {n} runs of {'up to ' if plan.base.until_solved else ''}{plan.base.steps} steps"
          f"{' (until solved)' if plan.base.until_solved else ''} -> {plan.out}", file=sys.stderr)
    summary = run_sweep(plan, scheduler=args.scheduler, workers=args.workers, retries=args.retries,
                        force=args.force, quiet=args.quiet)
    print_table(summary.results, plan)
    print(f"sweep file: {summary.path}  ({len(summary.results)}/{summary.total} runs finished"
          + (f", {summary.skipped} resumed" if summary.skipped else "")
          + (f", {summary.failed} failed" if summary.failed else "") + ")")
    if summary.interrupted:
        print("interrupted: run the same command again to finish the sweep", file=sys.stderr)
        return 130
    return 0 if summary.complete else 1


def print_table(results: list[dict], plan, out=None) -> None:
    """Success rate and median final metric per (cell, T), with the chance baseline."""
    from explorer.console import print_table as table
    from explorer.frontier import frontier

    rows = frontier(results)
    until = bool(getattr(getattr(plan, "base", None), "until_solved", False))
    if rows:
        table((("cell", "left"), ("T", "right"), ("solved", "right"), ("median metric", "right"),
               ("chance", "right"), ("diverged", "right")) + ((("median seq. to solve", "right"),) if until else ()),
              [(r["cell"], r["seq_len"], f"{r['n_solved']}/{r['n_seeds']}", f"{r['median_final_metric']:.4g}",
                f"{r['baseline_metric']:.4g}", r["n_diverged"])
               + ((f"{r['median_solved_sequences']:,.0f}" if r["median_solved_sequences"] == r["median_solved_sequences"]
                   else "-",) if until else ()) for r in rows], out=out)
