"""Training speed in the window vs headless: does drawing the live plots slow the training down?

Trains the same config (the adding problem, T=100, H=64, B=32, 2000 steps, RNN and
LSTM side by side, seed 0, the window's other defaults) twice per repeat:

* headless, through the Trainer and SessionRecorder that ``lstm-explorer train --out``
  uses, and
* in the real window (MainWindow, offscreen unless a display is set), driven as a
  user would: settings set, Run clicked, the event loop running until training ends.

Both are timed on the trainer's own clock (the ``wall_time`` of the last step, from the
first step on; kernel warm-up excluded), so the figures are steps/s of training.
Headless and windowed runs alternate, so a load change on a shared machine hits both.
Prints steps/s for each run, the median of each side, the ratio windowed/headless
(target >= 0.90), and what the window did meanwhile: frames, redraws, GUI-thread CPU
share, longest event-loop gap.

usage:
  .venv/bin/python bench/gui_speed.py [--steps 2000] [--repeats 3] [--json out.json]
  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/gui_speed.py   # a real X11 window

Measured on the 2-core development machine (load average 0.8-1.1 before each run):
offscreen 316 vs 302 steps/s (ratio 0.96), under Xvfb 321 vs 300 (0.94); the window's GUI
thread used 6.2% of a core and its longest frame gap was 36-58 ms. Before the redraw budget
(every plot redrawn ~30 times a second) the same run gave 297 vs 166 steps/s (0.56), with
the GUI thread at 35% of a core and 180-200 ms frame gaps.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def config(steps: int):
    from explorer.gui.settings import GUI_DEFAULTS

    return GUI_DEFAULTS.__class__(**{**GUI_DEFAULTS.to_dict(), "cells": ("rnn", "lstm"), "task": "adding",
                                     "seq_len": 100, "hidden": 64, "batch": 32, "steps": steps, "seed": 0})


def headless(cfg, folder: str) -> dict:
    """What `lstm-explorer train --out FILE` does (explorer.commands.train.run), minus printing."""
    from explorer.commands.train import warm_up_kernels
    from explorer.recording import SessionRecorder
    from explorer.training import StepRecord, Trainer

    trainer = Trainer(cfg)
    recorder = SessionRecorder(os.path.join(folder, f"headless-{time.time_ns()}.h5"), cfg, trainer.runs)
    warm_up_kernels(trainer, out=open(os.devnull, "w"))
    last = {}
    for rec in trainer.run():
        recorder.record(rec)
        if isinstance(rec, StepRecord):
            last[rec.cell] = (rec.step, rec.wall_time)
    recorder.finish({c: trainer.state_dict(c) for c in cfg.cells})
    step, seconds = max(last.values(), key=lambda v: v[1])
    return {"steps_per_s": step / seconds, "seconds": seconds}


def windowed(cfg, app) -> dict:
    """Set the window's settings, click Run, run the event loop until the training thread ends."""
    from PySide6 import QtCore

    from explorer.gui.app import dispose
    from explorer.gui.window import MainWindow

    w = MainWindow()
    w.resize(1600, 1000)
    w.show()
    app.processEvents()
    w.settings.set_config(cfg)
    assert w.settings.validate() is None, w.settings.validate()
    loop = QtCore.QEventLoop()
    w.run_button.click()
    if w.thread is None:
        raise SystemExit(f"the window did not start training: {w.errors}")
    w.thread.finished.connect(loop.quit)
    cpu0, t0 = time.thread_time(), time.perf_counter()
    loop.exec()
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - t0
    app.processEvents()
    if w.errors:
        raise SystemExit(f"training in the window failed: {w.errors}")
    step, seconds = max(w._cell_progress.values(), key=lambda v: v[1])
    out = {"steps_per_s": step / seconds, "seconds": seconds, "frames": w.frames, "redraws": w.draws,
           "gui_cpu_share": cpu / wall, "max_frame_gap_ms": w.max_frame_gap_ms}
    w.close()
    dispose(w, app)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3, help="headless/windowed pairs (default: %(default)s)")
    p.add_argument("--draw-share", type=float, metavar="S",
                   help="override the window's TRAINING_DRAW_SHARE (GUI-thread CPU share for redraws while "
                        "training) to see what drawing more or less often costs")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = p.parse_args(argv)

    from explorer.gui.app import display_available

    if not display_available():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    folder = tempfile.mkdtemp(prefix="gui-speed-")
    os.environ["LSTM_EXPLORER_DATA_DIR"] = folder      # sessions and the window's settings file go here
    from explorer.gui.app import make_app

    app = make_app()
    import explorer.gui.window as window_module

    if args.draw_share is not None:
        window_module.TRAINING_DRAW_SHARE = args.draw_share
    print(f"window: redraws while training use at most {window_module.TRAINING_DRAW_SHARE:.0%} of a core "
          f"(at least one every {window_module.MAX_DRAW_INTERVAL_S:g} s)")
    cfg = config(args.steps).validate()
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} cores)")
    print(f"config: {cfg.task} T={cfg.seq_len} H={cfg.hidden} B={cfg.batch} steps={cfg.steps} "
          f"cells={','.join(cfg.cells)} seed={cfg.seed} lr={cfg.lr:g} probe_every={cfg.probe_every}")
    rows = {"headless": [], "windowed": []}
    for k in range(args.repeats):
        h = headless(cfg, folder)
        rows["headless"].append(h)
        print(f"[{k + 1}] headless  {h['steps_per_s']:7.1f} steps/s", flush=True)
        w = windowed(cfg, app)
        rows["windowed"].append(w)
        print(f"[{k + 1}] windowed  {w['steps_per_s']:7.1f} steps/s   frames {w['frames']}, redraws {w['redraws']}, "
              f"GUI thread {100 * w['gui_cpu_share']:.1f}% of a core, longest frame gap "
              f"{w['max_frame_gap_ms']:.0f} ms", flush=True)
    load1 = os.getloadavg()
    hs = statistics.median(r["steps_per_s"] for r in rows["headless"])
    ws = statistics.median(r["steps_per_s"] for r in rows["windowed"])
    ratios = [w["steps_per_s"] / h["steps_per_s"] for h, w in zip(rows["headless"], rows["windowed"])]
    print(f"median headless {hs:.1f} steps/s, windowed {ws:.1f} steps/s, ratio windowed/headless "
          f"{ws / hs:.2f} (per pair: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.90)")
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": cfg.to_dict(), "load_before": load0, "load_after": load1, "runs": rows,
                       "headless_steps_per_s": hs, "windowed_steps_per_s": ws, "ratio": ws / hs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
