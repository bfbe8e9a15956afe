"""The hostile-file fuzzer: mutated copies of real session and sweep files through every entry point.

The driver (:mod:`tests.fuzz_driver`) hands seeded mutations (:mod:`tests.fuzz_mutations`) to a pool
of worker processes (``python -m tests.fuzz_files worker``), one case at a time, and waits for each
with a timeout: a worker that crashes (segfault, abort) or hangs is reported with the mutation it was
running, killed and replaced. A worker (:class:`Checker`) applies the mutation to a copy and runs it
through

* ``lstm-explorer info --check`` (text or ``--json``: opens, prints and validates), and
  ``sessions.validate`` again on its own when the open refuses the file;
* the drawing, the costly part, in turn: ``lstm-explorer export`` of one plot in one format (the plot
  aimed at what was damaged, the format rotating through png, svg and csv), or every plot group drawn
  from the opened file with its CSV table; ``export --all`` every ``all_every``-th case, and the
  window's open (``MainWindow.open_files``, as ``lstm-explorer replay`` does: every plot drawn, the
  probe slider moved) every ``window_every``-th case;
* sweep files: ``info --check``, the sweep view, and ``export`` of ``frontier`` / ``claims``.

A case passes when each step ends in success or one of the project's errors whose message names the
file. Anything else — a traceback, an error that does not name the file, an exception a Qt slot let
through, a crash, a hang — is a failure, reported with the mutation so it can be replayed::

    python -m tests.fuzz_files case BASE_FILE SEED [sweep]     # one case, in this process
    python -m tests.fuzz_files run FOLDER N [SEED]             # N cases (bases made in FOLDER)
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":
    sys.path.insert(0, ROOT)

from tests.fuzz_driver import TAG, entry_kind, run_fuzz  # noqa: E402,F401 (run_fuzz: for callers)
from tests.fuzz_mutations import mutate  # noqa: E402

PROBE_PLOTS = ("grad-flow", "grad-heatmap", "gates", "saturation")
SCALAR_PLOTS = ("loss", "metric", "param-grads")


# ---------------------------------------------------------------------------------- base files
def make_bases(folder) -> dict[str, str]:
    """A finished session, an interrupted one (copied while its writer was still writing) and a
    sweep file, all made through the public paths. Returns {kind: path}."""
    from explorer.recording import SessionRecorder
    from explorer.training import StepRecord, Trainer
    from sessions.sweep import write_sweep
    from tests.gui_fixtures import tiny_config

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    cfg = tiny_config(seq_len=6, hidden=4, batch=4, steps=30, probe_every=10)
    trainer = Trainer(cfg)
    session = os.path.join(folder, "session.h5")
    interrupted = os.path.join(folder, "interrupted.h5")
    rec = SessionRecorder(session, cfg, trainer.runs)
    for r in trainer.run():
        rec.record(r)
        if isinstance(r, StepRecord) and r.step == 20 and r.cell == cfg.cells[-1]:
            rec.writer.flush()
            shutil.copyfile(session, interrupted)   # what a kill -9 at step 20 leaves behind
    rec.finish({c: trainer.state_dict(c) for c in cfg.cells})

    rows = []
    for T in (5, 10, 20):
        for seed in (0, 1):
            for cell in ("rnn", "lstm"):
                solved = cell == "lstm" and T < 20
                rows.append(dict(cell=cell, seq_len=T, seed=seed, status="diverged" if (T, seed, cell) == (20, 1, "rnn")
                                 else "completed", message="", final_loss=0.01 if solved else 0.16,
                                 final_metric=0.01 if solved else 0.16, solved=int(solved), steps=30,
                                 steps_per_s=900.0, ms_per_step=1.1, param_count=133 if cell == "lstm" else 37,
                                 decay_ratio=1e-3 if cell == "rnn" else 0.5, baseline_metric=0.1667,
                                 session="session.h5"))
    sweep = os.path.join(folder, "sweep.h5")
    config = dict(kind="lstm-explorer sweep", train={k: v for k, v in cfg.to_dict().items()
                                                     if k not in ("seq_len", "seed", "cells")},
                  cells=["rnn", "lstm"], seq_lens=[5, 10, 20], seeds=2, n_runs=12)
    write_sweep(sweep, config, rows)
    return {"session": session, "interrupted": interrupted, "sweep": sweep}


# ---------------------------------------------------------------------------------- one case
class Checker:
    """Runs one mutated file through the entry points (one per worker process; Qt lives here)."""

    def __init__(self, workdir: str, window_every: int = 16, all_every: int = 60):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        os.environ["LSTM_EXPLORER_DATA_DIR"] = os.path.join(workdir, "data")
        from explorer.gui.export import ensure_app

        self.app = ensure_app()
        self.workdir = workdir
        self.out = os.path.join(workdir, "out")
        os.makedirs(self.out, exist_ok=True)
        self.window_every, self.all_every = window_every, all_every
        self._window = None
        self._groups = None
        self.uncaught: list[str] = []   # exceptions Qt slots let through (PySide prints them, the app goes on)
        sys.excepthook = lambda t, e, tb: self.uncaught.append("".join(traceback.format_exception(t, e, tb))[-1500:])

    # -- helpers -------------------------------------------------------------------------------------
    def cli(self, args: list[str], path: str, ok_codes=(0,)) -> tuple[str, str]:
        """(outcome, detail) of ``lstm-explorer ARGS``: ok | error (named the file) | FAIL."""
        from explorer.cli import main

        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(args)
        except BaseException:
            return "FAIL", "traceback:\n" + _short_tb()
        text = err.getvalue()
        if "Traceback" in text or "Traceback" in out.getvalue():
            return "FAIL", "printed a traceback:\n" + text[-1500:]
        if rc == 2:
            return ("error", text.strip()[:300]) if path in text else ("FAIL", f"error without the file name: {text!r}")
        if rc not in ok_codes:
            return "FAIL", f"exit status {rc}: {text[-500:]!r}"
        return "ok", ""

    def _flush_qt(self) -> None:
        from PySide6 import QtCore

        self.app.processEvents()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)

    def window(self):
        if self._window is None:
            from explorer.gui.window import MainWindow

            self._window = MainWindow(check_cuda=False, prewarm=False)
            self._window.timer.stop()
        return self._window

    def open_in_window(self, path: str) -> tuple[str, str]:
        """The window's open (File > Open, drop, replay): a session with every plot drawn and the probe slider
        moved to the first probe and back; a sweep file in the sweep view."""
        w = self.window()
        n_errors = len(w.errors)
        try:
            views = w.open_files([path])
            for v in views:
                if hasattr(v, "slider"):          # a session (a sweep view has no probes)
                    v.slider.setValue(0)
                    v.slider.setValue(v.slider.maximum())
                w._refresh_visible(force=True)
        except BaseException:
            return "FAIL", "traceback in the window:\n" + _short_tb()
        finally:
            while w.tabs.count():
                try:
                    w.close_tab(0)
                except BaseException:
                    return "FAIL", "traceback closing the tab:\n" + _short_tb()
            self._flush_qt()
        new = w.errors[n_errors:]
        bad = [m for m in new if path not in m]
        if bad:
            return "FAIL", f"window error without the file name: {bad[0]!r}"
        return ("error", new[0][:300]) if new else ("ok", "")

    def draw_all(self, path: str) -> tuple[str, str]:
        """Every plot group drawn from the file, at the first and at the newest probe, and its CSV table."""
        from explorer.gui.export import probes_at
        from explorer.gui.plots import GROUP_CLASSES
        from sessions import SessionError, open_session

        from explorer.errors import ExplorerError

        if self._groups is None:
            self._groups = [cls() for cls in GROUP_CLASSES]
        try:
            with open_session(path) as s:
                runs = s.runs
                probes = probes_at(runs, None)
                for g in self._groups:
                    g.draw(runs, probes, {"smoothing": 0.6, "log": False})
                    g.csv_table(runs, probes)
        except SessionError as exc:
            return ("error", str(exc)[:300]) if path in str(exc) else ("FAIL", f"error without the file name: {exc}")
        except ExplorerError as exc:   # PlotDataError: the entry points add the file's name
            return "error", str(exc)[:300]
        except BaseException:
            return "FAIL", "traceback drawing:\n" + _short_tb()
        return "ok", ""

    def validate(self, path: str) -> tuple[str, str]:
        """``sessions.validate``: a list of problems, or a SessionError naming the file when it cannot open it."""
        from sessions import SessionError, validate

        try:
            validate(path)
        except SessionError as exc:
            return ("error", str(exc)[:300]) if path in str(exc) else ("FAIL", f"error without the file name: {exc}")
        except BaseException:
            return "FAIL", "traceback in validate:\n" + _short_tb()
        return "ok", ""

    def sweep_view(self, path: str) -> tuple[str, str]:
        from explorer.gui.sweep_view import SweepView
        from sessions import SessionError

        try:
            view = SweepView(path)
            view.deleteLater()
        except SessionError as exc:
            return ("error", str(exc)[:300]) if path in str(exc) else ("FAIL", f"error without the file name: {exc}")
        except BaseException:
            return "FAIL", "traceback in the sweep view:\n" + _short_tb()
        finally:
            self._flush_qt()
        return "ok", ""

    # -- the case ------------------------------------------------------------------------------------
    def run(self, index: int, path: str, what: str, sweep: bool) -> dict[str, tuple[str, str]]:
        from explorer.gui.names import FORMATS, PLOT_NAMES

        out = self.out
        fmt = FORMATS[(index // 7) % 3]
        res = _Timed()
        # info --check opens the file, prints it and validates it; when the file is refused at the open,
        # validate() is still asked for its list of problems (it must not raise more than the open does)
        res["info --check"] = lambda: self.cli(["info", "--check", path] + (["--json"] if index % 2 else []), path,
                                               ok_codes=(0, 1))
        refused = res.data["info --check"][0] == "error"
        if refused:
            res["validate"] = lambda: self.validate(path)
        small = ["--width", "320", "--height", "200"] if fmt != "csv" else []
        if sweep:   # not a session: info refuses it; the sweep view reads it
            res["sweep view"] = lambda: self.sweep_view(path)
            refused = res.data["sweep view"][0] == "error"
            pool = ("frontier", "claims")
        else:
            pool = PROBE_PLOTS if "/probes/" in what else SCALAR_PLOTS if "/scalars/" in what else tuple(PLOT_NAMES)
        # drawing is the costly part: a file that opens is exported (one plot, aimed at the damage) or has
        # every plot group drawn, in turn; of the refused ones every 5th is exported (the refusal names it)
        if (index % 2 == 0) if not refused else (index % 5 == 0):
            plot = pool[(index // 2) % len(pool)]
            res[f"export {plot} {fmt}"] = lambda: self.cli(["export", path, "--plot", plot, "--format", fmt, "-o",
                                                            os.path.join(out, f"x.{fmt}")] + small, path)
        elif not sweep and not refused and index % self.window_every:   # the window draws every plot itself
            res["draw every plot"] = lambda: self.draw_all(path)
        if index % self.all_every == 0:
            shutil.rmtree(os.path.join(out, "all"), ignore_errors=True)
            res[f"export --all {fmt}"] = lambda: self.cli(["export", path, "--all", "--format", fmt, "-o",
                                                           os.path.join(out, "all")], path)
        if index % self.window_every == 0:
            res["window open"] = lambda: self.open_in_window(path)
        self._flush_qt()
        if self.uncaught:
            res.data["uncaught in a Qt slot"] = ("FAIL", self.uncaught[0], 0.0)
            self.uncaught.clear()
        return res.data


class _Timed:
    """entry -> (outcome, detail, seconds): assigning a callable runs and times it."""

    def __init__(self):
        self.data: dict[str, tuple[str, str, float]] = {}

    def __setitem__(self, entry: str, check) -> None:
        t = time.perf_counter()
        outcome, detail = check()
        self.data[entry] = (outcome, detail, time.perf_counter() - t)


def _short_tb(limit: int = 12) -> str:
    lines = traceback.format_exc().rstrip().splitlines()
    return "\n".join(lines[-limit:])


# ---------------------------------------------------------------------------------- worker process
def worker_main(workdir: str, window_every: int, all_every: int) -> None:
    """Read cases (JSON lines) on stdin; answer on the original stdout, tagged (Qt may print on fd 1)."""
    import faulthandler

    faulthandler.enable(file=sys.stderr, all_threads=True)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    checker = Checker(workdir, window_every, all_every)
    proto.write(TAG + json.dumps({"ready": os.getpid()}) + "\n")
    for line in sys.stdin:
        case = json.loads(line)
        target = os.path.join(workdir, "case" + (".h5"))
        what = None
        for attempt in range(5):   # a mutation that does not apply (nothing of that kind to damage): the next seed
            try:
                what = mutate(case["base"], target, case["seed"] + attempt, sweep=case["sweep"])
                break
            except Exception:
                pass
        if what is None:
            proto.write(TAG + json.dumps({"end": case["index"], "skipped": _short_tb(4)}) + "\n")
            continue
        proto.write(TAG + json.dumps({"begin": case["index"], "what": what}) + "\n")
        print(f"case {case['index']}: {what}", file=sys.stderr, flush=True)
        if case.get("inject") == "crash":   # the harness's own test: a worker that dies...
            os.abort()
        if case.get("inject") == "hang":    # ... or never answers
            time.sleep(3600)
        res = checker.run(case["index"], target, what, case["sweep"])
        proto.write(TAG + json.dumps({"end": case["index"], "what": what, "results": res}) + "\n")


def _one_case(base: str, seed: int, sweep: bool) -> int:
    """Replay one case in this process and print each entry point's outcome (tracebacks in full)."""
    import tempfile

    work = tempfile.mkdtemp(prefix="fuzz-case-")
    target = os.path.join(work, "case.h5")
    what = mutate(base, target, seed, sweep=sweep)
    print(f"mutation: {what}\nfile: {target}")
    res = Checker(work, window_every=1, all_every=1).run(0, target, what, sweep)
    for entry, (outcome, detail, secs) in res.items():
        print(f"{entry}: {outcome} ({secs:.2f} s) {detail}")
    return int(any(o == "FAIL" for o, _, _ in res.values()))


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "case":
        sys.exit(_one_case(sys.argv[2], int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "sweep"))
    elif sys.argv[1] == "run":   # python -m tests.fuzz_files run FOLDER N [SEED]
        names = {k: os.path.join(sys.argv[2], k + ".h5") for k in ("session", "interrupted", "sweep")}
        b = names if all(map(os.path.isfile, names.values())) else make_bases(sys.argv[2])
        rep = run_fuzz(b, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 16,
                       os.path.join(sys.argv[2], "work"))
        print(rep.summary())
        print(rep.describe_failures(200))
