"""Helpers for the session tests: tiny hand-built runs, and a writer script for subprocesses.

As a script (``python tests/sessions_support.py MODE PATH``) it writes a tiny
session in another process:

* ``live PATH STEPS``: writes STEPS steps (0 = forever) slowly, flushing every
  ~20 ms, then marks the run completed and closes.
* ``diskfull PATH``: limits the file size (RLIMIT_FSIZE) and writes until the
  writer fails; prints a JSON line {"error": ..., "flushed": last step known flushed}.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sessions import SessionWriter, SessionWriteError  # noqa: E402

PARAM_GRAD_NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "readout.weight", "readout.bias"]
L, H, I, O = 6, 3, 2, 1


def older_copy(src, dest, version: str, deleted: list[str]):
    """A copy of session file ``src`` at ``dest`` as an older writer left it: ``format_version`` set to
    ``version`` and, in every run, the members named in ``deleted`` (e.g. ``probes/saliency``) removed."""
    import shutil

    import h5py

    shutil.copy(src, dest)
    with h5py.File(dest, "r+") as f:
        f.attrs["format_version"] = version
        for g in f["runs"].values():
            for name in deleted:
                del g[name]
    return dest


def param_shapes(n_gates: int) -> dict[str, tuple[int, ...]]:
    g = n_gates or 1
    return {"weight_ih_l0": (g * H, I), "weight_hh_l0": (g * H, H), "bias_ih_l0": (g * H,),
            "bias_hh_l0": (g * H,), "readout.weight": (O, H), "readout.bias": (O,)}


def add_run(w: SessionWriter, cell: str, **over) -> None:
    n_gates = 4 if cell == "lstm" else 0
    kw = dict(cell=cell, config={"task": "adding", "seq_len": L, "cells": ["rnn", "lstm"], "hidden": H,
                                 "lr": 0.01, "steps": 40},
              param_count=sum(int(np.prod(s)) for s in param_shapes(n_gates).values()),
              param_shapes=param_shapes(n_gates), length=L, hidden=H, n_gates=n_gates,
              metric_name="mse", higher_is_better=False, baseline_loss=0.1667, baseline_metric=0.1667,
              param_grad_names=PARAM_GRAD_NAMES)
    kw.update(over)
    w.add_run(cell, **kw)


def step_values(cell: str, step: int) -> dict:
    k = 1.0 if cell == "rnn" else 2.0
    return dict(wall_time=0.01 * step + k * 1e-4, loss=k / step, metric=k / (step + 1),
                grad_norm=k * step, param_grad_norms={p: k * step + j for j, p in enumerate(PARAM_GRAD_NAMES)})


def probe_values(cell: str, step: int, rng: np.random.Generator) -> dict:
    lstm = cell == "lstm"
    return dict(grad_norm_t=(10.0 ** -rng.uniform(0, 30, L)).astype(np.float32),
                h=rng.uniform(-1, 1, (L, H)).astype(np.float32),
                gates=rng.uniform(0, 1, (4, L, H)).astype(np.float32) if lstm else None,
                c=rng.normal(0, 3, (L, H)).astype(np.float32) if lstm else None,
                saturation=rng.uniform(0, 1, 4).astype(np.float32) if lstm else None)


def write_session(path, steps: int = 40, probe_every: int = 10, cells=("rnn", "lstm"),
                  finish: bool = True, **writer_kw) -> dict:
    """Write a complete tiny session; returns what was written (for round-trip checks)."""
    rng = np.random.default_rng(0)
    written = {c: {"steps": [], "probes": [], "params": None} for c in cells}
    with SessionWriter(path, software_version="9.8.7", **writer_kw) as w:
        for c in cells:
            add_run(w, c)
        w.start()
        for s in range(1, steps + 1):
            for c in cells:
                v = step_values(c, s)
                w.append_step(c, s, v["wall_time"], v["loss"], v["metric"], v["grad_norm"], v["param_grad_norms"])
                written[c]["steps"].append(v)
                if s % probe_every == 0:
                    p = probe_values(c, s, rng)
                    w.append_probe(c, s, v["wall_time"], **p)
                    written[c]["probes"].append(dict(p, step=s, time=v["wall_time"]))
        if finish:
            for c in cells:
                w.set_status(c, "completed", f"{c} done ✓")
                params = {k: rng.normal(size=shape).astype(np.float32)
                          for k, shape in param_shapes(4 if c == "lstm" else 0).items()}
                w.write_params(c, params)
                written[c]["params"] = params
    return written


def _live(path: str, steps: int) -> None:
    rng = np.random.default_rng(1)
    w = SessionWriter(path, software_version="9.8.7", flush_interval_s=0.02)
    add_run(w, "lstm")
    w.start()
    print("started", flush=True)
    s = 0
    while steps == 0 or s < steps:
        s += 1
        v = step_values("lstm", s)
        w.append_step("lstm", s, v["wall_time"], v["loss"], v["metric"], v["grad_norm"], v["param_grad_norms"])
        if s % 10 == 0:
            w.append_probe("lstm", s, v["wall_time"], **probe_values("lstm", s, rng))
        time.sleep(0.002)
    w.set_status("lstm", "completed", "done")
    w.close()
    print("closed", flush=True)


def _diskfull(path: str) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of being killed
    rng = np.random.default_rng(2)
    w = SessionWriter(path, software_version="9.8.7", flush_interval_s=3600, flush_every_steps=10)
    add_run(w, "lstm", length=200, hidden=64)
    w.start()
    limit = os.path.getsize(path) + 8_000_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    flushed, error = 0, None
    try:
        for s in range(1, 10**6):
            v = step_values("lstm", s)
            w.append_step("lstm", s, v["wall_time"], v["loss"], v["metric"], v["grad_norm"], v["param_grad_norms"])
            if s % 10 == 0:  # flush_every_steps=10: this append flushed everything so far
                flushed = s
            if s % 5 == 0:
                w.append_probe("lstm", s, v["wall_time"],
                               grad_norm_t=np.ones(200), h=rng.normal(size=(200, 64)),
                               gates=rng.uniform(size=(4, 200, 64)), c=np.zeros((200, 64)), saturation=np.ones(4))
    except SessionWriteError as exc:
        error = str(exc)
    w.close()          # must not raise, hang or crash after the failure
    w.close()
    print(json.dumps({"error": error, "flushed": flushed}), flush=True)


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "live":
        _live(target, int(sys.argv[3]))
    elif mode == "diskfull":
        _diskfull(target)
    else:
        raise SystemExit(f"unknown mode {mode}")
