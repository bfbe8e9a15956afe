"""Shared helpers for the GUI tests: tiny configs and a recorded session file."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from explorer.training import TrainConfig  # noqa: E402

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
