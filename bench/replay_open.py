"""Opening and scrubbing a large saved session in the window: seconds to open and draw, resident memory.

Writes a session as `lstm-explorer train --out` would after 1,000,000 steps with 500 probes (RNN + LSTM,
T = 1000, H = 64: every step's scalars, every probe's h, c, gates, gradient flow and saliency; the probe
values are random, the layout and sizes are real), then opens it in an offscreen window and scrubs the
probe slider across all 500 probes, e.g.:

    python bench/replay_open.py --steps 1000000 --probes 500

Prints the file size, the seconds from File > Open to the first tab drawn, and the resident memory after
opening and after scrubbing every probe on the gradient-flow and gates tabs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resident_mb() -> float:
    from explorer.benchmark import resident_bytes

    return resident_bytes() / 2 ** 20


def write_session(path: str, steps: int, probes: int, seq_len: int, hidden: int) -> None:
    """A session of ``steps`` steps and ``probes`` probes per cell through the real recorder."""
    from explorer.recording import SessionRecorder
    from explorer.config import TrainConfig
    from explorer.training import PARAM_GRAD_NAMES, ProbeRecord, StatusRecord, StepRecord, Trainer

    every = max(1, steps // probes)
    cfg = TrainConfig(seq_len=seq_len, hidden=hidden, steps=steps, probe_every=every, test_size=0)
    trainer = Trainer(cfg)
    rng = np.random.default_rng(0)
    recorder = SessionRecorder(path, cfg, trainer.runs, flush_interval_s=5.0)
    norms = dict.fromkeys(PARAM_GRAD_NAMES, 1.0)
    L, H = seq_len, hidden
    for step in range(1, steps + 1):
        for info in trainer.runs:
            loss = 0.17 / (1 + step / 1e4) * (1 + 0.1 * rng.standard_normal())
            recorder.record(StepRecord(info.cell, step, loss, loss, 1.0, norms, step * 1e-3))
            if step % every == 0:
                g = info.n_gates
                recorder.record(ProbeRecord(
                    info.cell, step, (10.0 ** -rng.uniform(0, 20, L)).astype(np.float32),
                    rng.uniform(-1, 1, (L, H)).astype(np.float32),
                    rng.uniform(0, 1, (g, L, H)).astype(np.float32) if g else None,
                    rng.normal(0, 2, (L, H)).astype(np.float32) if info.cell_state else None,
                    rng.uniform(0, 1, g).astype(np.float32) if g else None,
                    saliency=rng.uniform(0, 1, L).astype(np.float32)))
    for info in trainer.runs:
        recorder.record(StatusRecord(info.cell, "completed", steps))
    recorder.finish({c: trainer.state_dict(c) for c in cfg.cells})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--probes", type=int, default=500)
    ap.add_argument("--seq-len", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=64)
    args = ap.parse_args()

    folder = tempfile.mkdtemp(prefix="replay-open-")
    os.environ["LSTM_EXPLORER_DATA_DIR"] = folder
    path = os.path.join(folder, "big.h5")
    t = time.perf_counter()
    write_session(path, args.steps, args.probes, args.seq_len, args.hidden)
    print(f"wrote {path}: {os.path.getsize(path) / 1e6:.0f} MB in {time.perf_counter() - t:.0f} s "
          f"({args.steps:,} steps, {args.probes} probes a cell, T={args.seq_len}, H={args.hidden})", flush=True)

    os.sync()         # the file on disk, as one written long ago: its flush is not the window's cost
    from explorer.gui.app import dispose, make_app

    app = make_app()
    from explorer.gui.window import MainWindow

    w = MainWindow(check_cuda=False, prewarm=False)
    w.resize(1400, 860)
    w.show()
    app.processEvents()
    before = resident_mb()
    t = time.perf_counter()
    (view,) = w.open_files([path])
    app.processEvents()
    opened = time.perf_counter() - t
    after_open = resident_mb()
    print(f"open and draw the first tab: {opened:.2f} s; resident {after_open:.0f} MB "
          f"(+{after_open - before:.0f} MB)", flush=True)
    for tab in (0, 1):                       # gradient flow, then the gate heatmaps
        view.tabs.setCurrentIndex(tab)
        t = time.perf_counter()
        for i in range(view.slider.maximum() + 1):
            view.slider.setValue(i)
            view.refresh_probes()
            app.processEvents()
        n = view.slider.maximum() + 1
        print(f"scrubbed {n} probes on tab '{view.tabs.tabText(tab)}': {1000 * (time.perf_counter() - t) / n:.0f} ms "
              f"a probe; resident {resident_mb():.0f} MB", flush=True)
    w.close()
    dispose(w, app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
