"""Reproduce a classic long-lag result: the paper's grid as a resumable sweep, then the paper's figure beside ours.

Presets (each setting printed before the runs start; the flags override them):
  hs97-adding    Hochreiter & Schmidhuber 1997, exp. 4 (Table 7): adding-hs97 at T = 100, 500, 1000
  hs97-temporal  H&S 1997, exp. 6a (Table 9): temporal-hs97 at T = 100
  arjovsky-copy  Arjovsky et al. 2016 (Fig. 1): copy at T = 100, 200, 500, standard vs chrono LSTM

Every run trains until its task's stop rule holds (--cap steps at most) and is then
tested on 2,560 held-out sequences. One row per (cell, T): training sequences until
solved (median and range over the seeds that solved; sequences = steps x batch, the
paper's unit), wrong of the test set, wall time per run, and the optimizer, learning
rate, hidden size, batch and initialisation used. Written to DIR: the session files,
sweep.h5, reproduce.csv and the figure reproduce.png / reproduce.svg. Running the same
command again skips finished runs.

example (the preset's settings written out):
  lstm-explorer reproduce hs97-adding --seq-lens 100,500,1000 --seeds 3 --hidden 64 --batch 32 \\
      --cap 40000 --test-size 2560 --out reproduce/hs97-adding
"""
from __future__ import annotations

import argparse
import os
import sys

from explorer.reproduce import PRESETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", choices=list(PRESETS), help=" | ".join(PRESETS))
    p.add_argument("--seq-lens", metavar="T,T,...", help="lags T (default: the paper's)")
    p.add_argument("--seeds", type=int, help="seeds per (cell, T) (default: the preset's)")
    p.add_argument("--cells", help="cells, comma separated (default: the preset's)")
    p.add_argument("--hidden", type=int, help="hidden units H (default: the preset's)")
    p.add_argument("--batch", type=int, help="sequences per step B (default: the preset's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
    p.add_argument("--optimizer", help="adam | sgd | rmsprop[:alpha] (default: the preset's)")
    p.add_argument("--clip", type=float, help="clip gradients to this global norm, 0 = off (default: the preset's)")
    p.add_argument("--init", help="initialisation; several separated by ';' run side by side, e.g. 'default;chrono' "
                                  "(default: the preset's)")
    p.add_argument("--cap", type=int, help="at most this many training steps per run (default: the preset's)")
    p.add_argument("--test-size", type=int, help="held-out test sequences (default: 2560, the paper's)")
    p.add_argument("--backend", help="cpu | cuda (default: cpu)")
    p.add_argument("--out", metavar="DIR", help="folder for the runs, sweep.h5, the CSV and the figure "
                                                "(default: reproduce/<preset>)")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786", help="Dask scheduler (default: an embedded cluster)")
    p.add_argument("--workers", type=int, help="worker processes of the embedded cluster (default: one per core)")
    p.add_argument("--force", action="store_true", help="retrain every run, even those already finished in DIR")
    p.add_argument("--no-figure", action="store_true", help="write the table and CSV only (no PNG/SVG)")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the table")


def print_preset(preset, plan, out=None) -> None:
    out = sys.stderr if out is None else out
    b = plan.base
    inits = plan.vary.get("init", (b.init,))
    print(f"reproduce {preset.name}: {preset.title}", file=out)
    print(f"  paper:    {preset.source}", file=out)
    print(f"  task:     {b.task}, T in {','.join(map(str, plan.seq_lens))}, cells {','.join(plan.cells)}, "
          f"{plan.seeds} seed(s)", file=out)
    print(f"  training: {b.optimizer} lr {b.lr:g}, clip {b.clip:g}, H={b.hidden}, batch {b.batch}, "
          f"init {' | '.join(inits)}", file=out)
    print(f"  budget:   until solved, at most {b.steps:,} steps ({b.steps * b.batch:,} sequences) per run; "
          f"test set {b.test_size:,} sequences", file=out)
    changed = preset.overridden(plan)
    note = f" (the preset's; overridden here: {', '.join('--' + name for name in changed)})" if changed else ""
    print(f"  why:      {preset.why}{note}", file=out)


def run(args: argparse.Namespace) -> int:
    from explorer.console import print_table
    from explorer.errors import ConfigError
    from explorer.reproduce import build_plan, default_out, display_rows, preset, table, write_csv
    from explorer.sweep import check_out_dir, parse_int_list, run_sweep

    p = preset(args.preset)
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds must be a positive integer, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    seq_lens = parse_int_list(args.seq_lens, "seq-lens") if args.seq_lens else None
    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip()) if args.cells else None
    if args.cells is not None and not cells:
        raise ConfigError("--cells is empty: give one or more of rnn, lstm, gru")
    out = check_out_dir(args.out or default_out(p.name))
    plan = build_plan(p, out, cells=cells, seq_lens=seq_lens, seeds=args.seeds, hidden=args.hidden,
                      batch=args.batch, lr=args.lr, optimizer=args.optimizer, clip=args.clip, init=args.init,
                      cap=args.cap, test_size=args.test_size, backend=args.backend)
    print_preset(p, plan)
    summary = run_sweep(plan, scheduler=args.scheduler, workers=args.workers, force=args.force, quiet=args.quiet)
    rows = table(p, plan, summary.results)
    columns, cells_, settings = display_rows(rows)
    print(f"{p.title}: training sequences until solved (steps x batch; the paper updated after every sequence, "
          "so its count is the same unit); wrong of the held-out test set")
    print_table(columns, cells_)
    for line in settings:
        print(f"  {line}")
    csv_path = write_csv(rows, os.path.join(out, "reproduce.csv"))
    written = [csv_path]
    if not args.no_figure and rows:
        written += write_figure(p, rows, os.path.join(out, "reproduce"))
    print("wrote " + ", ".join(written))
    if summary.interrupted:
        print("interrupted: run the same command again to finish", file=sys.stderr)
        return 130
    return 0 if summary.complete else 1


def write_figure(p, rows: list[dict], stem: str, size=(900, 560)) -> list[str]:
    """``stem.png`` and ``stem.svg``: training sequences until solved against T (log-log), the paper's
    LSTM as black crosses, ours as the median per series with the range over seeds (the export style of
    ``lstm-explorer export``: pyqtgraph, offscreen when there is no display)."""
    import numpy as np
    import pyqtgraph as pg
    from PySide6 import QtCore, QtWidgets

    from explorer.gui.export import ensure_app, write_png, write_svg
    from kernels import cells as registry

    ensure_app()
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground("w")
    widget.setAttribute(QtCore.Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    widget.resize(*size)
    plot = widget.addPlot(title=f"{p.title}: training sequences until solved")
    plot.setLogMode(x=True, y=True)
    plot.setLabel("bottom", "lag T")
    plot.setLabel("left", "training sequences until solved")
    plot.showGrid(x=True, y=True, alpha=0.3)
    legend = plot.addLegend(offset=(10, 10))
    paper = sorted((T, r.sequences) for T, r in p.paper.items() if r.sequences)
    if paper:
        T, s = np.array(paper, dtype=float).T
        plot.plot(T, s, pen=pg.mkPen("k", width=1, style=QtCore.Qt.PenStyle.DashLine), symbol="x", symbolSize=12,
                  symbolPen="k", symbolBrush="k", name="paper (H&S 1997, LSTM)")
    series = {}
    for r in rows:
        series.setdefault(f"{r['cell']} {r['variant']}".strip(), []).append(r)
    styles = [QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenStyle.DotLine, QtCore.Qt.PenStyle.DashDotLine]
    for k, (name, rs) in enumerate(series.items()):
        solved = [r for r in rs if r["n_solved"]]
        if not solved:
            legend.addItem(pg.PlotDataItem(pen=None), f"{name}: not solved at any T")
            continue
        color = registry.get(rs[0]["cell"]).color if rs[0]["cell"] in registry.names() else "#444444"
        T = np.array([r["seq_len"] for r in solved], dtype=float)
        med = np.array([r["median_sequences"] for r in solved], dtype=float)
        lo = np.array([r["min_sequences"] for r in solved], dtype=float)
        hi = np.array([r["max_sequences"] for r in solved], dtype=float)
        plot.plot(T, med, pen=pg.mkPen(color, width=2, style=styles[k % len(styles)]), symbol="o", symbolSize=8,
                  symbolBrush=color, symbolPen=color,
                  name=f"{name} (ours: median, range over seeds)")
        bars = pg.ErrorBarItem(x=np.log10(T), y=np.log10(med), top=np.log10(hi) - np.log10(med),
                               bottom=np.log10(med) - np.log10(lo), beam=0.03, pen=pg.mkPen(color, width=1))
        plot.addItem(bars)
    lags = np.log10([r["seq_len"] for r in rows] or [1])
    plot.setXRange(lags.min() - 0.25, lags.max() + 0.25, padding=0)   # room around one lag too
    widget.show()
    QtWidgets.QApplication.processEvents()
    widget.resize(*size)
    QtWidgets.QApplication.processEvents()
    try:
        return [write_png(widget, stem + ".png"), write_svg(widget, stem + ".svg")]
    finally:
        widget.close()
        widget.deleteLater()
