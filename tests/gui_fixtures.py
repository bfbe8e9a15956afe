"""Shared helpers for the GUI tests: tiny configs and a recorded session file."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from explorer.config import TrainConfig  # noqa: E402

TINY = dict(task="adding", seq_len=10, cells=("rnn", "lstm"), hidden=8, batch=8, steps=40, probe_every=10,
            lr=1e-2)


def tiny_config(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def record_session(path, **kw) -> str:
    """Train a tiny config headless and record it to ``path`` (what `lstm-explorer train --out` does)."""
    from explorer.recording import SessionRecorder
    from explorer.training import Trainer

    cfg = tiny_config(**kw)
    trainer = Trainer(cfg)
    rec = SessionRecorder(os.fspath(path), cfg, trainer.runs)
    for r in trainer.run():
        rec.record(r)
    rec.finish({c: trainer.state_dict(c) for c in cfg.cells})
    return rec.path


def replay_screenshot(args, shot, size: str = "1280x800"):
    """`lstm-explorer replay ARGS --screenshot SHOT` in its own process, offscreen (the command quits its
    QApplication when done: in the test process that would end the event loops of the tests after it)."""
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "explorer", "replay", *map(str, args), "--screenshot", str(shot),
                           "--size", size], capture_output=True, text=True, timeout=300, env=env)
