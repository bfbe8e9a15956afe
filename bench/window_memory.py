"""The window's memory over a long live run: resident set size of the app against the probes taken.

Offscreen window, T = 1000, H = 256, B = 8, RNN + LSTM, a probe every step (the heaviest recording
there is: each LSTM probe carries h, c and four gates, 6 MB at float32), training until N probes.
Run once as shipped and once with the probe store unbounded (as before issue 16), e.g.:

    python bench/window_memory.py --probes 150
    python bench/window_memory.py --probes 150 --unbounded

Prints one line per 25 probes: probes taken, resident MB, growth since the first probe.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resident_mb() -> float:
    from explorer.benchmark import resident_bytes

    return resident_bytes() / 2 ** 20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=150)
    ap.add_argument("--seq-len", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--unbounded", action="store_true", help="keep every probe in memory (the old behaviour)")
    args = ap.parse_args()

    import explorer.gui.data as data
    from explorer.gui.app import dispose, make_app
    from explorer.config import TrainConfig

    if args.unbounded:
        data.PROBE_MEMORY_BYTES = 1 << 62
    os.environ["LSTM_EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="window-memory-")
    app = make_app()
    from explorer.gui.window import MainWindow

    w = MainWindow(check_cuda=False, prewarm=False)
    w.resize(1400, 860)
    w.show()
    w.settings.set_config(TrainConfig(seq_len=args.seq_len, hidden=args.hidden, batch=8, steps=10 ** 6, probe_every=1,
                                      test_size=0))
    assert w.start_training()
    base, next_report = None, 0
    print(f"{'probes':>7} {'resident MB':>12} {'growth MB':>10}   ({'unbounded' if args.unbounded else 'bounded'} "
          f"probe store, T={args.seq_len}, H={args.hidden})")
    while True:
        app.processEvents()
        time.sleep(0.01)
        session = w.live_session
        n = session.run("lstm").n_probes if session is not None else 0
        if n >= 1 and base is None:
            base = resident_mb()
        if base is not None and n >= next_report:
            rss = resident_mb()
            print(f"{n:>7} {rss:>12.0f} {rss - base:>10.0f}", flush=True)
            next_report += 25
        if n >= args.probes:
            break
    w.stop_training()
    w.wait_for_training(60_000)
    w.close()
    dispose(w, app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
