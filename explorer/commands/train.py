"""Train RNN, LSTM and/or GRU cells side by side, headless, on a long-dependency task.

Shows a progress bar (steps/s, latest loss per cell), then a summary per cell:
final loss and metric (mean of the last 50 steps), the chance baseline, solved
or not, steps/s. With --out the run is recorded to an HDF5 session file, which keeps a
checkpoint every minute: a run killed or stopped goes on with `train --resume FILE`, and one
that reached its cap trains on with `train --resume FILE --steps N`.

examples:
  lstm-explorer train --task adding --seq-len 100 --cell rnn,lstm --hidden 64 \\
      --batch 32 --steps 3000 --lr 1e-2 --optimizer adam --clip 1.0 --seed 0 --out run.h5
  lstm-explorer train --resume run.h5 --steps 6000              # train on past the cap, in the same file
  lstm-explorer train --resume run.h5 --steps 8000 --lr-schedule 6001:1e-3   # ... at a lower learning rate
  lstm-explorer train --task copy --seq-len 50 --until-solved --steps 4000 --out copy.h5   # stops when solved
  lstm-explorer train --resume copy.h5 --steps 6000 --no-until-solved       # ... or train on past the rule
  lstm-explorer train --from run.h5 --seed 1 --out seed1.h5     # the same run with another seed
  lstm-explorer train --from run.h5 --seed 2 --out seed2.h5     # (replay run.h5 seed1.h5 seed2.h5 --bands)
"""
from __future__ import annotations

import argparse
import math
import signal
import sys

from explorer.card import final_mean
from explorer.config import TrainConfig, cell_names


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The training options shared by ``train`` and ``sweep``. Their parsed value is None when not
    given, so a base configuration (TrainConfig's defaults, or ``--from FILE``'s) fills them in."""
    d = TrainConfig()
    p.add_argument("--task", help=f"adding | copy | temporal | adding-hs97 | temporal-hs97 (default: {d.task})")
    p.add_argument("--hidden", type=int, help=f"hidden units H (default: {d.hidden})")
    p.add_argument("--batch", type=int, help=f"sequences per step B (default: {d.batch})")
    p.add_argument("--steps", type=int, help=f"training steps (default: {d.steps})")
    p.add_argument("--optimizer", help=f"adam | sgd | rmsprop[:alpha] (RMSprop's smoothing constant alpha, "
                                       f"default 0.99 as PyTorch's) (default: {d.optimizer})")
    p.add_argument("--lr", type=float, help=f"learning rate (default: {d.lr:g})")
    p.add_argument("--lr-schedule", metavar="STEP:LR[,...]",
                   help="later learning rates, each from its step on: 160000:1e-4 trains at --lr up to step 159,999 "
                        "and at 1e-4 from step 160,000 (default: --lr throughout)")
    p.add_argument("--momentum", type=float, help=f"SGD momentum (default: {d.momentum})")
    p.add_argument("--clip", type=float, help=f"clip gradients to this global norm, 0 = off (default: {d.clip})")
    p.add_argument("--backend", help=f"cpu | cuda (default: {d.backend})")
    p.add_argument("--probe-every", type=int,
                   help="probe snapshot interval in steps; 0 = auto, about 60 probes a run (default: 0)")
    p.add_argument("--dtype", help=f"float32 | float64 (default: {d.dtype})")
    p.add_argument("--init", help="initialisation: default | orthogonal[:gain] | identity[:s], optionally "
                                  "+forget-bias[:b] or +chrono[:T_max]; per cell: lstm=chrono,rnn=identity "
                                  f"(default: {d.init})")
    p.add_argument("--rnn-activation", help=f"the RNN's nonlinearity: tanh | relu (default: {d.rnn_activation})")
    p.add_argument("--until-solved", action=argparse.BooleanOptionalAction, default=None,
                   help="stop each cell when its task's stop rule holds (the paper's rule for the -hs97 tasks, "
                        "else the solved threshold on the mean metric of the last 2,000 sequences); "
                        "--steps is then the cap. With --resume, --no-until-solved trains on past the rule "
                        "to the cap (the step it held is still recorded)")
    p.add_argument("--test-size", type=int, help=f"held-out test sequences evaluated at the end of each run, "
                                                 f"0 = none (default: {d.test_size})")
    p.add_argument("--test-every", type=int, help="also evaluate the test set every N steps (default: 0, only at the end)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--seq-len", type=int, help=f"lag T (default: {d.seq_len})")
    p.add_argument("--cell", help=f"cells side by side, any of {', '.join(cell_names())} "
                                  f"(default: {','.join(d.cells)})")
    p.add_argument("--seed", type=int, help=f"random seed (default: {d.seed})")
    add_config_arguments(p)
    p.add_argument("--from", dest="from_file", metavar="FILE.h5",
                   help="repeat the configuration of this session file exactly; other options change single fields")
    p.add_argument("--out", metavar="FILE.h5", help="record the run to this HDF5 session file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    p.add_argument("--resume", metavar="FILE.h5",
                   help="go on with the runs recorded in this session file from its last checkpoint (kept every "
                        "minute while training, at the cap, and when stopped), appending to them; the "
                        "configuration is the file's (no other option but --quiet, --steps N to raise its "
                        "cap: runs that reached it train on to N, --lr-schedule for the steps still to train, "
                        "and --no-until-solved to train on past the stop rule)")


#: TrainConfig fields whose option has another name (every other field's option is its own name)
OPTION_NAMES = {"cells": "cell"}


def config_from_session(path: str) -> TrainConfig:
    """The configuration a session file was trained with (every run of it: their cells together)."""
    from explorer.errors import ConfigError
    from sessions import open_session

    with open_session(path) as s:
        runs = [s.run(name) for name in s.run_names]
        if not runs:
            raise ConfigError(f"{path} holds no runs: there is no configuration to repeat")
        config = dict(runs[0].config)
        cells = [str(r.cell) for r in runs]
    if not config:
        raise ConfigError(f"{path} does not record its configuration (config JSON missing); give the options")
    config["cells"] = cells
    try:
        return TrainConfig.from_dict(config)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{path}: its configuration cannot be used here ({exc})") from None


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """A validated :class:`TrainConfig`: TrainConfig's defaults (or ``--from``'s file), then every
    option given on the command line, then ``overrides``."""
    from_file = getattr(args, "from_file", None)
    base = config_from_session(from_file) if from_file else TrainConfig()
    fields = base.to_dict()
    for name in list(fields):
        value = getattr(args, OPTION_NAMES.get(name, name), None)
        if value is not None:
            fields[name] = value
    fields.update(overrides)
    return TrainConfig(**fields).validate()


def warm_up_kernels(trainer, out=None) -> None:
    """Compile or load the kernels before training, saying so (first runs compile for a few seconds).
    ``out`` defaults to the current ``sys.stderr`` (read at the call, not at import: tests swap it)."""
    out = sys.stderr if out is None else out
    warm = getattr(trainer.backend, "warm_up", None)
    if warm is None:
        return
    print("preparing kernels (compiling on first use, then cached)…", end="", file=out, flush=True)
    info = warm(cells=trainer.config.cells, dtype=trainer.config.dtype, optimizer=trainer.config.optimizer)
    how = f"compiled {info['compiled']} kernels" if info["compiled"] else "loaded from cache"
    print(f" {how} in {info['seconds']:.1f} s", file=out, flush=True)


def summarize(trainer, history: dict, statuses: dict, outcomes: dict | None = None) -> list[dict]:
    """Per cell: status, steps, final loss/metric (mean of the last steps), baseline, solved, steps/s,
    and from ``outcomes`` (:func:`collect_outcome`) where the stop rule held (``solved_at``) and the
    final test evaluation (``test``). With ``until_solved``, or a task with the paper's per-sequence
    rule, "solved" means the stop rule held; otherwise the solved threshold on the final metric."""
    rows = []
    outcomes = outcomes or {}
    by_rule = trainer.config.until_solved or bool(trainer.task.sequence_rule)
    for info in trainer.runs:
        out = outcomes.get(info.cell, {})
        h = history.get(info.cell, {"loss": [], "metric": [], "time": []})
        n = len(h["loss"])
        loss, metric = final_mean(h["loss"]), final_mean(h["metric"])
        seconds = h["time"][-1] if n else 0.0
        rows.append(dict(cell=info.cell, status=statuses.get(info.cell, ("running", ""))[0],
                         message=statuses.get(info.cell, ("", ""))[1], steps=n, loss=loss, metric=metric,
                         metric_name=info.metric_name, baseline_loss=info.baseline_loss,
                         baseline_metric=info.baseline_metric,
                         solved=(out.get("solved_at") is not None) if by_rule
                         else bool(n) and trainer.task.solved(loss, metric),
                         steps_per_s=n / seconds if seconds > 0 else math.nan,
                         seconds=seconds, solved_at=out.get("solved_at"), test=out.get("test")))
    return rows


def collect_outcome(outcomes: dict, rec) -> None:
    """Keep a :class:`SolvedRecord` / final :class:`TestRecord` in ``outcomes[cell]`` (for :func:`summarize`)."""
    from explorer.training import SolvedRecord, TestRecord

    if isinstance(rec, SolvedRecord):
        outcomes.setdefault(rec.cell, {})["solved_at"] = {"step": rec.step, "sequences": rec.sequences}
    elif isinstance(rec, TestRecord):
        outcomes.setdefault(rec.cell, {})["test"] = {"n": rec.n, "loss": rec.loss, "metric": rec.metric,
                                                     "wrong": rec.wrong, "step": rec.step}


def solved_text(r: dict) -> str:
    """The summary's "solved" cell: "step N (M seq)" where the stop rule held, else yes/no."""
    at = r.get("solved_at")
    if at:
        return f"step {at['step']:,} ({at['sequences']:,} seq)"
    return "yes" if r["solved"] else "no"


def test_text(r: dict) -> str:
    """The summary's "test" cell: test metric, and wrong of n where the task has a per-sequence rule."""
    t = r.get("test")
    if not t:
        return "-"
    wrong = f", {t['wrong']}/{t['n']} wrong" if t.get("wrong") is not None else f" (n={t['n']})"
    return f"{t['metric']:.4g}{wrong}"


def print_summary(rows: list[dict], task_line: str, out=None) -> None:
    """The summary table, one row per cell, under the task's description; notes for diverged cells."""
    from explorer.console import print_table

    out = sys.stdout if out is None else out
    print(task_line, file=out)
    columns = [("cell", "left"), ("status", "left"), ("steps", "right"), ("loss", "right"), ("metric", "right"),
               ("baseline", "right"), ("solved", "right"), ("steps/s", "right")]
    tested = any(r.get("test") for r in rows)
    if tested:
        columns.append(("test", "right"))
    print_table(columns, [(r["cell"], r["status"], r["steps"], f"{r['loss']:.4g}", f"{r['metric_name']} {r['metric']:.4g}",
                           f"{r['baseline_metric']:.4g}", solved_text(r), f"{r['steps_per_s']:.1f}")
                          + ((test_text(r),) if tested else ()) for r in rows], out=out)
    for r in rows:
        if r["message"] and r["status"] == "diverged":
            print(f"note: {r['message']}", file=out)


def run(args: argparse.Namespace) -> int:
    from explorer.training import Trainer

    if args.resume:
        return resume(args)
    config = config_from_args(args)
    trainer = Trainer(config)
    recorder = None
    if args.out:
        from explorer.recording import SessionRecorder

        recorder = SessionRecorder(args.out, config, trainer.runs, overwrite=args.force)
    history = {c: {"loss": [], "metric": [], "time": []} for c in config.cells}
    return train_and_report(trainer, recorder, args, history, {}, {})


def resume(args: argparse.Namespace) -> int:
    """``train --resume FILE [--steps N]``: the file's configuration, its newest checkpoint, its rows up to it;
    ``--steps`` raises the file's step cap, so that runs which reached it train on."""
    import dataclasses

    from explorer.errors import ConfigError
    from explorer.recording import SessionRecorder
    from explorer.training import CheckpointRecord, Trainer
    from sessions import open_session

    given = [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
             if k not in ("resume", "quiet", "steps", "lr_schedule", "command", "_module")
             and v not in (None, False)]      # --no-until-solved (False) is taken; --until-solved is not
    if given:
        raise ConfigError(f"--resume takes the file's configuration (only --steps, to raise its cap, "
                          f"--lr-schedule, for the steps still to train, and --no-until-solved, to train on past "
                          f"the stop rule): drop {', '.join(given)}")
    path = args.resume
    config = config_from_session(path)
    cap = config.steps
    changes = {}
    if args.steps is not None:
        if args.steps <= cap:
            raise ConfigError(f"--steps with --resume raises the cap: give more than the file's {cap:,} steps")
        changes["steps"] = args.steps
    if args.lr_schedule is not None:
        changes["lr_schedule"] = args.lr_schedule
    if args.until_solved is False and config.until_solved:
        changes["until_solved"] = False
    resumed = dataclasses.replace(config, **changes).validate()
    with open_session(path) as s:
        ended = [f"{r.name} {r.status}" for r in s.runs if r.status in ("completed", "diverged")]
        if not changes and len(ended) == len(s.runs):
            raise ConfigError(f"{path}: nothing to resume, every run ended ({', '.join(ended)}); "
                              f"to train on past the cap of {cap:,} steps, add --steps N"
                              + (", past the stop rule, --no-until-solved" if config.until_solved else ""))
        ck = s.checkpoint
        if ck is None:
            raise ConfigError(f"{path} holds no checkpoint to resume from (a run keeps one a minute in, and when "
                              f"stopped; files before session format 1.5 keep none)")
        if ck["step"] >= resumed.steps:
            raise ConfigError(f"{path}: every step up to the cap of {cap:,} was trained; "
                              f"to train on, add --steps N")
        _check_trained_rates(config, resumed, ck["step"])
        if not any(int(state["active"]) for state in ck["runs"].values()):
            raise ConfigError(f"{path}: nothing to resume, no run was still training at its last checkpoint "
                              f"(step {ck['step']:,}; a run that met its stop rule before it stays stopped)")
        history, statuses, outcomes = {}, {}, {}
        for r in s.runs:     # what the file holds up to the checkpoint: the summary covers the whole run
            step, time, loss = r.scalar("loss")
            keep = step <= ck["step"]
            history[r.name] = {"loss": list(loss[keep]), "metric": list(r.scalar("metric")[2][keep]),
                               "time": list(time[keep])}
            if not int(ck["runs"][r.name]["active"]):
                statuses[r.name] = (r.status, r.message)
                outcomes[r.name] = {"solved_at": r.solved_at, "test": r.test}
    trainer = Trainer(resumed)
    point = CheckpointRecord(ck["step"], ck["time"], ck["rng"], ck["runs"])
    recorder = SessionRecorder.reopen(path, point, changes=changes)
    raised = f" (the cap raised from {cap:,})" if args.steps is not None else ""
    print(f"resuming {path} after step {point.step:,} of {resumed.steps:,}{raised}", file=sys.stderr)
    if "until_solved" in changes:
        print(f"the stop rule no longer stops a run from step {point.step + 1:,}: training on to step "
              f"{resumed.steps:,}", file=sys.stderr)
    if resumed.lr_schedule != config.lr_schedule:
        print(f"learning rate from step {point.step + 1:,}: {resumed.lr_at(point.step + 1):g}"
              f" (schedule {resumed.lr_schedule or 'none'})", file=sys.stderr)
    return train_and_report(trainer, recorder, args, history, statuses, outcomes, resume=point)


def _check_trained_rates(before: TrainConfig, after: TrainConfig, step: int) -> None:
    """A :class:`ConfigError` unless ``after``'s learning rates are ``before``'s for every step up to
    ``step`` (those are trained: a resumed schedule changes only what is still to come)."""
    from explorer.errors import ConfigError

    def trained(config: TrainConfig) -> list:
        return [change for change in config.lr_changes() if change[0] <= step]

    if trained(before) != trained(after):
        raise ConfigError(f"--lr-schedule with --resume changes only steps still to train: the file trained "
                          f"steps 1-{step:,} with the schedule {before.lr_schedule or 'none'!r}; keep its changes "
                          f"up to step {step:,} and add yours after it (e.g. {step + 1}:1e-4)")


def train_and_report(trainer, recorder, args, history: dict, statuses: dict, outcomes: dict, resume=None) -> int:
    """Train (from the checkpoint ``resume`` when given), record, show progress, print the summary; the exit
    status (130 interrupted, 1 a cell diverged)."""
    from explorer.console import ProgressLine
    from explorer.training import StatusRecord, StepRecord

    config = trainer.config
    print(trainer.task.describe(), file=sys.stderr)
    warm_up_kernels(trainer)
    bar = None if args.quiet else ProgressLine(config.steps, lambda: "  ".join(
        f"{c} loss {h['loss'][-1]:.4g}" for c, h in history.items() if h["loss"]))
    interrupted = False

    def on_ctrl_c(signum, frame):
        # the first Ctrl-C ends the run after the current step, through the trainer's own stop (checkpoint, then
        # "stopped"): a KeyboardInterrupt raised mid-record would leave a half-written row in the file; a second
        # Ctrl-C interrupts at once
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        trainer.stop()

    try:
        previous = signal.signal(signal.SIGINT, on_ctrl_c)
    except ValueError:          # not the main thread: Ctrl-C is not ours to handle
        previous = None
    try:
        for rec in trainer.run(resume):
            if recorder is not None:
                recorder.record(rec)
            collect_outcome(outcomes, rec)
            if isinstance(rec, StepRecord):
                h = history[rec.cell]
                h["loss"].append(rec.loss), h["metric"].append(rec.metric), h["time"].append(rec.wall_time)
                if bar:
                    bar.advance_to(rec.step)
            elif isinstance(rec, StatusRecord):
                statuses[rec.cell] = (rec.status, rec.message)
                if rec.status == "diverged":
                    bar.note(rec.message) if bar else print(rec.message, file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        trainer.stop()
        for cell in config.cells:
            if statuses.get(cell, ("running",))[0] == "running":
                statuses[cell] = ("stopped", "interrupted with Ctrl-C")
                if recorder is not None:
                    recorder.record(StatusRecord(cell, "stopped", len(history[cell]["loss"]),
                                                 "interrupted with Ctrl-C"))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if bar:
            bar.close()
        if recorder is not None:
            recorder.finish({c: trainer.state_dict(c) for c in config.cells})
    print_summary(summarize(trainer, history, statuses, outcomes), trainer.task.describe())
    if recorder is not None and recorder.saved_path == recorder.path:
        print(f"session saved to {recorder.path}")
    elif recorder is not None:
        print(f"lstm-explorer train: warning: {recorder.path} was deleted or replaced while the run recorded "
              f"into it; " + (f"the session was saved to {recorder.saved_path}" if recorder.saved_path
                              else "nothing could be saved elsewhere"), file=sys.stderr)
    if interrupted:
        return 130
    return 1 if any(s == "diverged" for s, _ in statuses.values()) else 0
