"""Sweeps on Dask: many (cell, lag T, seed) runs, each its own session file, summed up in ``sweep.h5``.

Qt-free. The pieces::

    plan = SweepPlan(base=TrainConfig(task="adding", steps=3000), cells=("rnn", "lstm"),
                     seq_lens=(10, 20, 50), seeds=5, out="runs/")
    summary = run_sweep(plan)                 # embedded LocalCluster sized to the machine
    summary = run_sweep(plan, scheduler="tcp://127.0.0.1:8786")   # a real cluster

Each run is one Dask task, :func:`run_one` (importable on the workers, which must
have this package installed and see the output folder). It trains ONE cell at
one T and one seed, records it to ``<out>/<task>-<cell>-T<T>-s<seed>.h5`` (written
as ``.part`` and renamed when the run ends, so a finished file is always a whole
run) and returns a result dict (the columns of :data:`sessions.sweep.COLUMNS`).

- Resume: a run whose session file exists and ended ``completed``, ``diverged`` or
  ``stopped`` with the same config is not trained again; its result is read back.
- A worker that dies mid-run: the scheduler reschedules its task elsewhere; an
  exception inside a run is retried ``retries`` times. A run that diverges is a
  result (status ``diverged``), not an error, so it is never retried.
- Ctrl-C: pending and running tasks are cancelled, the cluster is closed, every
  finished run's file and ``sweep.h5`` stay as they were (``sweep.h5`` is always
  rewritten atomically).
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from explorer.card import decay_ratio, final_mean
from explorer.console import ProgressLine
from explorer.recording import SessionRecorder
from explorer.errors import ConfigError, ExplorerError
from explorer.config import TrainConfig

#: run statuses whose session file counts as finished (resume skips them)
FINISHED = ("completed", "diverged", "stopped")
#: fields of TrainConfig that differ between the runs of one sweep
PER_RUN_FIELDS = ("cells", "seq_len", "seed")
SWEEP_FILE = "sweep.h5"
#: environment of every worker process of the embedded cluster: one thread each
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}
CONNECT_TIMEOUT_S = 5


class SweepError(ExplorerError):
    """A sweep cannot start or go on (unreachable scheduler, unwritable folder, mixed configs)."""


# ---------------------------------------------------------------------------------------- plan
@dataclass
class SweepPlan:
    """What to run: every (cell, T, seed, variant) of ``cells`` x ``seq_lens`` x ``range(seeds)`` x the
    product of ``vary``'s values."""

    base: TrainConfig                      # shared training config (its cells/seq_len/seed are ignored)
    cells: tuple[str, ...] = ("rnn", "lstm")
    seq_lens: tuple[int, ...] = ()         # lags T
    seeds: int = 5                         # seeds 0 .. seeds-1
    out: str = "sweep"                     # folder for the session files and sweep.h5
    vary: dict[str, tuple] = field(default_factory=dict)  # more axes: TrainConfig field -> values

    def __post_init__(self):
        self.cells = tuple(self.cells)
        self.seq_lens = tuple(self.seq_lens)
        self.vary = {k: tuple(v) for k, v in dict(self.vary).items()}
        self.out = os.path.abspath(os.fspath(self.out))

    def validate(self) -> "SweepPlan":
        if not self.seq_lens:
            raise ConfigError("no seq-lens given: pass --seq-lens as a comma list, e.g. --seq-lens 10,20,50,100")
        if len(set(self.seq_lens)) != len(self.seq_lens):
            raise ConfigError(f"seq-lens repeat: {','.join(map(str, self.seq_lens))}")
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise ConfigError(f"seeds must be a positive integer (runs seeds 0..N-1), got {self.seeds!r}")
        for name, values in self.vary.items():
            if name in PER_RUN_FIELDS:
                raise ConfigError(f"--vary {name}: {name} is already an axis of every sweep "
                                  "(use --cells, --seq-lens or --seeds)")
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"--vary {name}: give distinct values, e.g. {name}=a,b")
        if not self.cells or len(set(self.cells)) != len(self.cells):
            raise ConfigError(f"cells: give distinct cells, e.g. rnn,lstm (got {','.join(self.cells) or 'none'})")
        for variant in self.variants():         # each run, as a worker trains it: one cell (memory too)
            for T in self.seq_lens:
                for cell in self.cells:
                    self.config(cell, T, 0, variant).validate()
        return self

    def variants(self) -> list[dict]:
        """Every combination of the ``vary`` values, as field -> value dicts (one empty dict without vary)."""
        return [dict(zip(self.vary, values)) for values in itertools.product(*self.vary.values())]

    def config(self, cell: str, seq_len: int, seed: int, variant: dict | None = None) -> TrainConfig:
        return TrainConfig(**{**self.base.to_dict(), **(variant or {}), "cells": (cell,), "seq_len": int(seq_len),
                              "seed": int(seed)})

    def specs(self) -> list[dict]:
        """One spec dict per run (plain data, sent to the workers), ordered long runs first."""
        specs = []
        for T in sorted(self.seq_lens, reverse=True):   # longest first: better packing on the workers
            for variant in self.variants():
                for seed in range(self.seeds):
                    for cell in self.cells:
                        cfg = self.config(cell, T, seed, variant)
                        specs.append(dict(config=cfg.to_dict(), cell=cell, seq_len=int(T), seed=int(seed),
                                          variant=variant_label(variant), out=self.out,
                                          session=session_name(cfg.task, cell, T, seed, variant)))
        return specs

    def to_dict(self) -> dict:
        base = {k: v for k, v in self.base.to_dict().items() if k not in PER_RUN_FIELDS and k not in self.vary}
        return dict(kind="lstm-explorer sweep", train=base, cells=list(self.cells),
                    seq_lens=[int(t) for t in self.seq_lens], seeds=int(self.seeds),
                    vary={k: list(v) for k, v in self.vary.items()},
                    n_runs=len(self.cells) * len(self.seq_lens) * self.seeds * len(self.variants()))


def variant_label(variant: dict) -> str:
    """``{"lr": 0.01, "hidden": 32}`` -> ``"lr=0.01 hidden=32"`` ("" for no variant)."""
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in variant.items())


def session_name(task: str, cell: str, seq_len: int, seed: int, variant: dict | None = None) -> str:
    """File name of one run's session: ``<task>-<cell>-T<T>-s<seed>[-<field><value>...].h5``."""
    extra = "".join(f"-{k}{v:g}" if isinstance(v, float) else f"-{k}{v}" for k, v in (variant or {}).items())
    extra = re.sub(r"[^A-Za-z0-9._+=-]", "_", extra)
    return f"{task}-{cell}-T{int(seq_len)}-s{int(seed)}{extra}.h5"


def parse_inits(text: str) -> tuple[str, ...]:
    """``--inits`` -> canonical initialisation strings (``kernels.inits.parse_init_list``)."""
    from kernels.errors import KernelInputError
    from kernels.inits import parse_init_list

    try:
        return tuple(spec.text() for spec in parse_init_list(text))
    except KernelInputError as exc:
        raise ConfigError(f"--inits: {exc}") from None


def parse_vary(items) -> dict[str, tuple]:
    """``["lr=1e-3,1e-2", "hidden=32,64"]`` -> ``{"lr": (0.001, 0.01), "hidden": (32, 64)}``: each value
    converted to the type of the TrainConfig field it names; a clear :class:`ConfigError` otherwise."""
    defaults = TrainConfig().to_dict()
    vary: dict[str, tuple] = {}
    for item in items or ():
        name, sep, text = str(item).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--vary {item!r}: write FIELD=v1,v2 (e.g. --vary lr=1e-3,1e-2)")
        if name not in defaults:
            raise ConfigError(f"--vary {name}: not a training setting; one of {', '.join(sorted(defaults))}")
        if name in vary:
            raise ConfigError(f"--vary {name} is given twice: list all its values once, comma separated")
        kind = type(defaults[name])
        values = []
        for v in (t.strip() for t in text.split(",")):
            if not v:
                continue
            try:
                values.append(float(v) if kind is float else int(v) if kind is int else v)
            except ValueError:
                raise ConfigError(f"--vary {name}: {v!r} is not a {kind.__name__}") from None
        if not values:
            raise ConfigError(f"--vary {name}: no values after '=' (e.g. {name}=a,b)")
        vary[name] = tuple(values)
    return vary


def parse_int_list(text: str, what: str = "seq-lens") -> tuple[int, ...]:
    """``"10,20,50"`` -> ``(10, 20, 50)``; a clear :class:`ConfigError` otherwise."""
    items = [s.strip() for s in (text or "").split(",") if s.strip()]
    if not items:
        raise ConfigError(f"no {what} given: pass a comma list, e.g. --{what} 10,20,50,100")
    out = []
    for s in items:
        try:
            out.append(int(s))
        except ValueError:
            raise ConfigError(f"{what}: {s!r} is not an integer (give a comma list such as 10,20,50)") from None
    return tuple(out)


def check_out_dir(path: str) -> str:
    """Create ``path`` if needed and check that files can be written in it; returns it absolute."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise SweepError(f"--out {path} is a file, not a folder; give a folder for the session files")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "wb") as fh:
            fh.write(b"ok")
        os.unlink(probe)
    except OSError as exc:
        raise SweepError(f"--out {path} is not writable ({exc.strerror or exc}); choose another folder") from None
    return path


# ---------------------------------------------------------------------------------- worker side
_WARM: set = set()


def _warm(trainer) -> None:
    """Compile or load the kernels once per worker process (from the on-disk cache where possible)."""
    cfg = trainer.config
    key = (cfg.backend, cfg.dtype, cfg.optimizer, tuple(cfg.cells))
    if key in _WARM:
        return
    warm = getattr(trainer.backend, "warm_up", None)
    if warm is not None:
        warm(cells=cfg.cells, dtype=cfg.dtype, optimizer=cfg.optimizer)
    _WARM.add(key)


def _final(values, times) -> tuple[float, float]:
    return final_mean(values), (float(times[-1]) if len(values) else 0.0)


def outcome_columns(solved_at: dict | None, test: dict | None, wall: float) -> dict:
    """The (sweep format 1.2) columns solved_step, solved_sequences, test_n, test_loss, test_metric,
    test_wrong and wall_s of one run."""
    test = test or {}
    return dict(solved_step=int(solved_at["step"]) if solved_at else 0,
                solved_sequences=int(solved_at["sequences"]) if solved_at else 0,
                test_n=int(test.get("n") or 0), test_loss=float(test.get("loss", math.nan)),
                test_metric=float(test.get("metric", math.nan)),
                test_wrong=-1 if test.get("wrong") is None else int(test["wrong"]), wall_s=float(wall))


def run_one(spec: dict) -> dict:
    """Train one (cell, T, seed) run and record it; returns its result row. Runs on a Dask worker.

    Never raises for a run that diverges (status ``diverged`` is a result); raises
    for real failures (a write error, a bug), which Dask may retry.
    """
    from explorer.commands.train import collect_outcome, summarize
    from explorer.training import ProbeRecord, StatusRecord, StepRecord, Trainer

    from kernels.config import limit_threads

    limit_threads(1)  # one thread per worker even on a cluster started without NUMBA_NUM_THREADS=1
    config = TrainConfig.from_dict(dict(spec["config"]))
    final_path = os.path.join(spec["out"], spec["session"])
    part = final_path + ".part"
    trainer = Trainer(config)
    _warm(trainer)
    recorder = SessionRecorder(part, config, trainer.runs, overwrite=True)
    cell = config.cells[0]
    history = {cell: {"loss": [], "metric": [], "time": []}}
    statuses: dict[str, tuple[str, str]] = {}
    outcomes: dict[str, dict] = {}
    last_probe = None
    t0 = time.perf_counter()
    try:
        for rec in trainer.run():
            recorder.record(rec)
            collect_outcome(outcomes, rec)
            if isinstance(rec, StepRecord):
                h = history[rec.cell]
                h["loss"].append(rec.loss), h["metric"].append(rec.metric), h["time"].append(rec.wall_time)
            elif isinstance(rec, ProbeRecord):
                last_probe = rec.grad_norm_t
            elif isinstance(rec, StatusRecord):
                statuses[rec.cell] = (rec.status, rec.message)
    finally:
        recorder.finish({c: trainer.state_dict(c) for c in config.cells})
    if recorder.saved_path is None:
        raise SweepError(f"{part} was deleted while the run recorded into it, and it could not be saved elsewhere")
    os.replace(recorder.saved_path, final_path)      # the .part, or its copy when the .part was deleted
    row = summarize(trainer, history, statuses, outcomes)[0]
    info = trainer.runs[0]
    wall = history[cell]["time"][-1] if history[cell]["time"] else time.perf_counter() - t0
    steps = row["steps"]
    sps = steps / wall if wall > 0 and steps else math.nan
    status = row["status"]
    return dict(cell=cell, seq_len=config.seq_len, seed=config.seed, status=status, message=row["message"],
                final_loss=row["loss"], final_metric=row["metric"],
                solved=bool(status == "completed" and row["solved"]), steps=steps, steps_per_s=sps,
                ms_per_step=1000.0 / sps if sps and math.isfinite(sps) else math.nan,
                param_count=info.param_count,
                decay_ratio=decay_ratio(last_probe) if last_probe is not None else math.nan,
                baseline_metric=info.baseline_metric, session=spec["session"], variant=spec.get("variant", ""),
                worker=f"{socket.gethostname()}:{os.getpid()}",
                **outcome_columns(row["solved_at"], row["test"], wall))


def result_from_session(spec: dict) -> dict | None:
    """The result of an already finished run, read from its session file; None if it must be (re)run.

    Raises :class:`SweepError` when the file holds the same run name with another config.
    """
    from explorer.tasks import make_task
    from sessions import SessionError, open_session

    path = os.path.join(spec["out"], spec["session"])
    if not os.path.isfile(path):
        return None
    try:
        with open_session(path) as s:
            names = s.run_names
            if not names:
                return None
            run = s.run(names[0])
            if run.status not in FINISHED:
                return None
            stored = {k: v for k, v in dict(run.config).items() if k not in PER_RUN_FIELDS}
            wanted = {k: v for k, v in dict(spec["config"]).items() if k not in PER_RUN_FIELDS}
            diff = [k for k in wanted if k in stored and stored[k] != wanted[k]]
            if diff:
                k = diff[0]
                raise SweepError(f"{path} was trained with {k}={stored[k]!r}, this sweep asks for "
                                 f"{k}={wanted[k]!r}; use another --out folder (or --force to retrain)")
            _, times, loss = run.scalar("loss")
            _, _, metric = run.scalar("metric")
            final_loss, wall = _final(loss, times)
            final_metric, _ = _final(metric, times)
            n = len(loss)
            sps = n / wall if wall > 0 and n else math.nan
            try:
                g = run.probe_series("grad_norm_t")
                ratio = decay_ratio(g[-1]) if len(g) else math.nan
            except (KeyError, IndexError):
                ratio = math.nan
            task = make_task(spec["config"]["task"], spec["seq_len"])
            status = run.status
            solved_at = run.solved_at
            if spec["config"].get("until_solved") or task.sequence_rule:
                solved = solved_at is not None
            else:
                solved = bool(n and task.solved(final_loss, final_metric))
            return dict(cell=spec["cell"], seq_len=spec["seq_len"], seed=spec["seed"], status=status,
                        message=run.message, final_loss=final_loss, final_metric=final_metric,
                        solved=bool(status == "completed" and solved),
                        steps=int(run.steps), steps_per_s=sps,
                        ms_per_step=1000.0 / sps if math.isfinite(sps) and sps > 0 else math.nan,
                        param_count=run.param_count, decay_ratio=ratio,
                        baseline_metric=run.baseline["metric"], session=spec["session"],
                        variant=spec.get("variant", ""), worker="",
                        **outcome_columns(solved_at, run.test, wall))
    except SessionError:
        return None  # unreadable / damaged: train it again


# ------------------------------------------------------------------------------------ cluster
def _worker_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def connect(scheduler: str | None = None, workers: int | None = None):
    """A :class:`distributed.Client` and the cluster it owns (None for an external scheduler)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("sweeps need Dask: pip install 'lstm-explorer[sweep]' (dask[distributed])") from None
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if scheduler:
        # a scheduler that goes away is reported in one line by run_sweep, not by the client's own log
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s "
                             f"({why}); start one with `dask scheduler` and `dask worker {scheduler}`, "
                             "or leave out --scheduler to use this machine") from None
        return client, None
    n = int(workers) if workers else _worker_count()
    if n < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.update(WORKER_ENV)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        # no dashboard; the scheduler's small HTTP server (health routes) on a free loopback port
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, env=dict(WORKER_ENV), silence_logs=40,
                               scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    client = Client(cluster, set_as_default=False)
    return client, cluster


# ------------------------------------------------------------------------------------ progress
class SweepProgress:
    """The sweep's progress bar: runs finished of all, running and failed; a line per finished run."""

    def __init__(self, total: int, skipped: int = 0, out=None, quiet: bool = False):
        self.skipped, self.quiet = skipped, quiet
        self.done, self.running, self.failed = skipped, 0, 0
        self._line = None if quiet else ProgressLine(total, self.describe, out=out, unit="runs")

    def describe(self) -> str:
        resumed = f" ({self.skipped} resumed)" if self.skipped else ""
        return f"done{resumed}, {self.running} running, {self.failed} failed"

    def draw(self, force: bool = False) -> None:
        if self._line is not None:
            self._line.advance_to(self.done + self.failed)

    def note(self, text: str) -> None:
        if self._line is not None:
            self._line.note(text)

    def close(self) -> None:
        if self._line is not None:
            self._line.advance_to(self.done + self.failed)
            self._line.close()


def describe_result(r: dict) -> str:
    metric = r.get("final_metric", math.nan)
    variant = f" {r['variant']}" if r.get("variant") else ""
    return (f"{r['cell']:<4} T={r['seq_len']:<5} seed {r['seed']}{variant}: {r['status']}, final metric {metric:.4g}, "
            f"{'solved' if r.get('solved') else 'not solved'}"
            + (f"  ({r['message']})" if r['status'] in ('failed', 'diverged') and r.get('message') else ""))


# ------------------------------------------------------------------------------------ the sweep
@dataclass
class SweepSummary:
    """What :func:`run_sweep` returns."""

    path: str                        # sweep.h5
    results: list[dict] = field(default_factory=list)   # one per finished run, plan order
    skipped: int = 0                 # runs resumed from their session files
    failed: int = 0                  # runs that raised (after retries) or lost their worker too often
    interrupted: bool = False        # Ctrl-C
    total: int = 0

    @property
    def complete(self) -> bool:
        return not self.interrupted and len(self.results) == self.total and not self.failed


def _warm_main(plan: SweepPlan, out=None, quiet=False) -> None:
    """Compile the kernels once in this process, so the workers load them from the on-disk cache."""
    import kernels

    out = sys.stderr if out is None else out
    backend = kernels.backend(plan.base.backend)
    warm = getattr(backend, "warm_up", None)
    if warm is None:
        return
    if not quiet:
        print("preparing kernels (compiling on first use, then cached)…", end="", file=out, flush=True)
    info = warm(cells=plan.cells, dtype=plan.base.dtype, optimizer=plan.base.optimizer)
    if not quiet:
        how = f"compiled {info['compiled']} kernels" if info.get("compiled") else "loaded from cache"
        print(f" {how} in {info.get('seconds', 0.0):.1f} s", file=out, flush=True)


def _scheduler_lost(client, futures) -> bool:
    """True when the client's scheduler is gone: the client closed (it gives up reconnecting after a few
    seconds) or runs came back cancelled/lost without an error of their own."""
    if client.status in ("closing", "closed"):
        return True
    return any(f.status in ("cancelled", "lost") for f in futures) and client.status != "running"


def run_sweep(plan: SweepPlan, *, scheduler: str | None = None, workers: int | None = None,
              retries: int = 2, force: bool = False, out=None, quiet: bool = False,
              callback: Callable[[dict], None] | None = None, poll_s: float = 0.25,
              stop: threading.Event | None = None) -> SweepSummary:
    """Run every run of ``plan`` not finished yet, on Dask; write ``sweep.h5`` after each run.

    ``callback(state)`` is called on each poll with ``{"client", "done", "running", "failed",
    "pending_keys"}`` (the window's progress; tests use it to kill a worker mid-run). ``stop`` set ends the
    sweep as Ctrl-C does: the runs not finished are cancelled, the finished ones kept (``interrupted``).
    Returns a :class:`SweepSummary`.
    """
    from sessions.sweep import write_sweep

    out = sys.stderr if out is None else out
    plan.validate()
    outdir = check_out_dir(plan.out)
    plan.out = outdir
    sweep_path = os.path.join(outdir, SWEEP_FILE)
    specs = plan.specs()
    order = {s["session"]: i for i, s in enumerate(specs)}
    results: dict[str, dict] = {}
    if not force:
        for s in specs:
            r = result_from_session(s)
            if r is not None:
                results[s["session"]] = r
    todo = [s for s in specs if s["session"] not in results]
    summary = SweepSummary(path=sweep_path, skipped=len(results), total=len(specs))
    config = plan.to_dict()

    def save():
        rows = sorted(results.values(), key=lambda r: order[r["session"]])
        write_sweep(sweep_path, config, rows)
        summary.results = [r for r in rows if r["status"] != "failed"]

    save()
    bar = SweepProgress(len(specs), skipped=len(results), out=out, quiet=quiet)
    if not todo:
        bar.close()
        return summary
    if not (scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")):
        _warm_main(plan, out=out, quiet=quiet)
    client = cluster = None
    futures: dict = {}
    try:
        client, cluster = connect(scheduler, workers)
        for s in todo:
            fut = client.submit(run_one, s, retries=retries, pure=False,
                                key=f"run-{os.path.splitext(s['session'])[0]}-{os.urandom(4).hex()}")
            futures[fut] = s
        pending = set(futures)
        bar.draw(force=True)
        while pending:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt   # the same ending as Ctrl-C
            done = {f for f in pending if f.done()}
            if not done:
                time.sleep(poll_s)
                done = {f for f in pending if f.done()}
            pending -= done
            if cluster is None and _scheduler_lost(client, done | pending):
                for s in todo:             # runs a worker finished after the last result came back
                    if s["session"] not in results and (r := result_from_session(s)) is not None:
                        results[s["session"]] = r
                save()
                n = sum(1 for r in results.values() if r["status"] != "failed")
                raise SweepError(f"lost the Dask scheduler at {scheduler or os.environ.get('DASK_SCHEDULER_ADDRESS')}: "
                                 f"the {n} of {len(specs)} runs that finished are kept (their session files, "
                                 f"and {sweep_path}); run the same command again to resume the rest")
            for fut in done:
                s = futures[fut]
                r, why = None, ""
                if fut.status == "finished":
                    try:
                        r = fut.result()
                    except Exception as exc:    # the result lived on a worker that is gone: its session file has it
                        r = result_from_session(s)
                        why = f"its result was lost with its worker ({type(exc).__name__}); a rerun trains it again"
                if r is not None:
                    bar.done += 1
                else:
                    try:
                        exc = fut.exception()
                        why = why or f"{type(exc).__name__}: {exc}".splitlines()[0]
                    except Exception as e:  # cancelled
                        why = why or f"{type(e).__name__}"
                    r = dict(cell=s["cell"], seq_len=s["seq_len"], seed=s["seed"], status="failed",
                             message=why[:500], solved=False, steps=0, session=s["session"], variant=s["variant"])
                    bar.failed += 1
                    summary.failed += 1
                results[s["session"]] = r
                save()
                bar.note(describe_result(r))
            try:
                keys = {f.key for f in pending}
                proc = client.processing()
                bar.running = sum(1 for ks in proc.values() for k in ks if k in keys)
            except Exception:
                bar.running = 0
            bar.draw()
            if callback is not None:
                callback(dict(client=client, done=bar.done, running=bar.running, failed=bar.failed,
                              pending_keys={f.key for f in pending}))
    except KeyboardInterrupt:
        summary.interrupted = True
        if futures and client is not None:
            try:
                client.cancel([f for f in futures if not f.done()], force=True)
            except Exception:
                pass
        bar.note("interrupted: cancelling the runs not finished; finished runs are kept")
    finally:
        bar.running = 0
        bar.close()
        _close(client, cluster)
        if summary.interrupted:
            for s in todo:   # a run a worker finished while the others were being cancelled is kept too
                if s["session"] not in results and (r := result_from_session(s)) is not None:
                    results[s["session"]] = r
        if summary.interrupted and cluster is not None:
            for s in todo:
                if s["session"] not in results:
                    try:
                        os.unlink(os.path.join(outdir, s["session"]) + ".part")
                    except OSError:
                        pass
        save()
    return summary


def _close(client, cluster) -> None:
    for obj in (client, cluster):
        if obj is None:
            continue
        try:
            obj.close(timeout=10) if obj is client else obj.close()
        except KeyboardInterrupt:
            pass
        except Exception:
            pass
