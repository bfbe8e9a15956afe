"""Train RNN and/or LSTM cells headless on a long-dependency task.

Shows a progress bar (steps/s, latest loss per cell), then a summary per cell:
final loss and metric (mean of the last 50 steps), the chance baseline, solved
or not, steps/s. With --out the run is recorded to an HDF5 session file.

example:
  lstm-explorer train --task adding --seq-len 100 --cell rnn,lstm --hidden 64 \\
      --batch 32 --steps 3000 --lr 1e-2 --optimizer adam --clip 1.0 --seed 0 --out run.h5
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from explorer.training import TrainConfig

#: the summary's "final" figures average this many last steps (one batch alone is noisy)
FINAL_WINDOW = 50


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The training options shared by ``train`` and ``sweep``."""
    d = TrainConfig()
    p.add_argument("--task", default=d.task, help="adding | copy | temporal (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=d.hidden, help="hidden units H (default: %(default)s)")
    p.add_argument("--batch", type=int, default=d.batch, help="sequences per step B (default: %(default)s)")
    p.add_argument("--steps", type=int, default=d.steps, help="training steps (default: %(default)s)")
    p.add_argument("--optimizer", default=d.optimizer, help="adam | sgd (default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (default: %(default)s)")
    p.add_argument("--clip", type=float, default=d.clip,
                   help="clip gradients to this global norm, 0 = off (default: %(default)s)")
    p.add_argument("--backend", default=d.backend, help="cpu | cuda (default: %(default)s)")
    p.add_argument("--probe-every", type=int, default=d.probe_every,
                   help="probe snapshot interval in steps (default: %(default)s)")
    p.add_argument("--dtype", default=d.dtype, help="float32 | float64 (default: %(default)s)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="lag T (default: %(default)s)")
    p.add_argument("--cell", default=",".join(d.cells), help="rnn, lstm or rnn,lstm (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    add_config_arguments(p)
    p.add_argument("--out", metavar="FILE.h5", help="record the run to this HDF5 session file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """A validated :class:`TrainConfig` from parsed options (``overrides`` win)."""
    fields = dict(task=args.task, hidden=args.hidden, batch=args.batch, steps=args.steps,
                  optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, clip=args.clip,
                  backend=args.backend, probe_every=args.probe_every, dtype=args.dtype)
    for name in ("seq_len", "seed"):
        if hasattr(args, name):
            fields[name] = getattr(args, name)
    if hasattr(args, "cell"):
        fields["cells"] = args.cell
    fields.update(overrides)
    return TrainConfig(**fields).validate()


def warm_up_kernels(trainer, out=sys.stderr) -> None:
    """Compile or load the kernels before training, saying so (first runs compile for a few seconds)."""
    warm = getattr(trainer.backend, "warm_up", None)
    if warm is None:
        return
    print("preparing kernels (compiling on first use, then cached)…", end="", file=out, flush=True)
    info = warm(cells=trainer.config.cells, dtype=trainer.config.dtype, optimizer=trainer.config.optimizer)
    how = f"compiled {info['compiled']} kernels" if info["compiled"] else "loaded from cache"
    print(f" {how} in {info['seconds']:.1f} s", file=out, flush=True)


class ProgressBar:
    """One status line: a bar, steps done, steps/s and the latest loss per cell.

    On a terminal it redraws in place at most 10 times a second; otherwise it
    prints a line every 10% so logs stay short.
    """

    def __init__(self, total: int, cells, out=sys.stderr):
        self.total, self.cells, self.out = total, list(cells), out
        self.tty = out.isatty()
        self.loss = {c: math.nan for c in self.cells}
        self.step = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, cell: str, step: int, loss: float) -> None:
        self.loss[cell] = loss
        self.step = max(self.step, step)
        now = time.perf_counter()
        decile = 10 * self.step // self.total
        if (self.tty and now - self._last_draw > 0.1) or (not self.tty and decile > self._last_decile):
            self._last_draw, self._last_decile = now, decile
            self.draw()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.step / elapsed if elapsed > 0 else 0.0
        filled = int(24 * self.step / self.total)
        losses = "  ".join(f"{c} loss {self.loss[c]:.4g}" for c in self.cells if not math.isnan(self.loss[c]))
        return f"[{'#' * filled}{'.' * (24 - filled)}] {self.step}/{self.total}  {rate:.1f} steps/s  {losses}"

    def draw(self) -> None:
        end = "\r" if self.tty else "\n"
        print(self.line().ljust(100 if self.tty else 0), end=end, file=self.out, flush=True)

    def close(self) -> None:
        if self.tty:
            self.draw()
            print(file=self.out)
        elif self._last_decile < 10 * self.step // self.total or self.step < self.total:
            self.draw()


def summarize(trainer, history: dict, statuses: dict) -> list[dict]:
    """Per cell: status, steps, final loss/metric (mean of the last steps), baseline, solved, steps/s."""
    rows = []
    for info in trainer.runs:
        h = history.get(info.cell, {"loss": [], "metric": [], "time": []})
        n = len(h["loss"])
        loss = sum(h["loss"][-FINAL_WINDOW:]) / min(n, FINAL_WINDOW) if n else math.nan
        metric = sum(h["metric"][-FINAL_WINDOW:]) / min(n, FINAL_WINDOW) if n else math.nan
        seconds = h["time"][-1] if n else 0.0
        rows.append(dict(cell=info.cell, status=statuses.get(info.cell, ("running", ""))[0],
                         message=statuses.get(info.cell, ("", ""))[1], steps=n, loss=loss, metric=metric,
                         metric_name=info.metric_name, baseline_loss=info.baseline_loss,
                         baseline_metric=info.baseline_metric,
                         solved=bool(n) and trainer.task.solved(loss, metric),
                         steps_per_s=n / seconds if seconds > 0 else math.nan))
    return rows


def print_summary(rows: list[dict], task_line: str, out=sys.stdout) -> None:
    print(task_line, file=out)
    header = f"{'cell':<5} {'status':<10} {'steps':>7} {'loss':>10} {'metric':>22} {'baseline':>10} {'solved':>7} {'steps/s':>8}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in rows:
        metric = f"{r['metric_name']} {r['metric']:.4g}"
        print(f"{r['cell']:<5} {r['status']:<10} {r['steps']:>7} {r['loss']:>10.4g} {metric:>22} "
              f"{r['baseline_metric']:>10.4g} {'yes' if r['solved'] else 'no':>7} {r['steps_per_s']:>8.1f}", file=out)
    for r in rows:
        if r["message"] and r["status"] == "diverged":
            print(f"note: {r['message']}", file=out)


def run(args: argparse.Namespace) -> int:
    from explorer.training import StatusRecord, StepRecord, Trainer

    config = config_from_args(args)
    trainer = Trainer(config)
    recorder = None
    if args.out:
        from explorer.recording import SessionRecorder

        recorder = SessionRecorder(args.out, config, trainer.runs, overwrite=args.force)
    print(trainer.task.describe(), file=sys.stderr)
    warm_up_kernels(trainer)
    bar = None if args.quiet else ProgressBar(config.steps, config.cells)
    history = {c: {"loss": [], "metric": [], "time": []} for c in config.cells}
    statuses: dict[str, tuple[str, str]] = {}
    interrupted = False
    try:
        for rec in trainer.run():
            if recorder is not None:
                recorder.record(rec)
            if isinstance(rec, StepRecord):
                h = history[rec.cell]
                h["loss"].append(rec.loss), h["metric"].append(rec.metric), h["time"].append(rec.wall_time)
                if bar:
                    bar.update(rec.cell, rec.step, rec.loss)
            elif isinstance(rec, StatusRecord):
                statuses[rec.cell] = (rec.status, rec.message)
                if rec.status == "diverged":
                    print(f"\n{rec.message}", file=sys.stderr)
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
        if bar:
            bar.close()
        if recorder is not None:
            recorder.finish({c: trainer.state_dict(c) for c in config.cells})
    print_summary(summarize(trainer, history, statuses), trainer.task.describe())
    if recorder is not None:
        print(f"session saved to {recorder.path}")
    if interrupted:
        return 130
    return 1 if any(s == "diverged" for s, _ in statuses.values()) else 0
