"""A session file as TensorBoard event files, so our runs overlay with a user's other experiments.

``lstm-explorer export FILE --tensorboard DIR`` writes one TensorBoard run per cell, ``DIR/<run>``:

- every scalar series of the run (``loss``, ``metric``, ``grad_norm``, ``grad_norm/<param>``, ...)
  at its training step and wall time;
- at each probe, the heatmaps recorded so far as images: ``grad-heatmap`` (log10 ‖∂L/∂h_t‖ over
  training step × t; one row per probe, colour levels fixed over the whole run);
- the configuration as hparams, with the final loss and metric as the hparams metrics.

The writer is tensorboardX (the ``tensorboard`` extra); TensorBoard reads the result with
``tensorboard --logdir DIR``.
"""
from __future__ import annotations

import datetime as _dt
import glob
import math
import os

import numpy as np

from explorer.errors import ExplorerError

#: probe arrays exported as heatmap images: name in the session -> image tag
HEATMAPS = {"grad_norm_t": "grad-heatmap"}
#: images are scaled up by whole pixels to about this size (and never beyond MAX_SIDE)
MIN_SIDE, MAX_SIDE = 240, 1024


class TensorBoardExportError(ExplorerError):
    """The export cannot be written (writer missing, folder not writable or already holding events)."""


def _writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise TensorBoardExportError("TensorBoard export needs tensorboardX: pip install 'lstm-explorer[tensorboard]'"
                                     ) from None
    return SummaryWriter


def _colour_table() -> np.ndarray:
    """(256, 3) uint8 inferno, the colour map of the window's gradient heatmaps."""
    from pyqtgraph import colormap

    return np.asarray(colormap.get("inferno").getLookupTable(nPts=256, alpha=False), dtype=np.uint8)[:, :3]


def heatmap_image(rows: np.ndarray, levels: tuple[float, float], lut: np.ndarray) -> np.ndarray:
    """``rows : (P, L)`` float -> an ``(h, w, 3)`` uint8 image, probes down, t across; NaN black."""
    lo, hi = levels
    scaled = (rows - lo) / (hi - lo) if hi > lo else np.zeros_like(rows)
    index = np.clip(np.nan_to_num(scaled, nan=0.0) * 255, 0, 255).astype(np.uint8)
    image = lut[index]
    image[~np.isfinite(rows)] = 0
    P, L = rows.shape
    ry = max(1, min(MIN_SIDE // max(P, 1), MAX_SIDE // max(P, 1)))
    rx = max(1, min(MIN_SIDE // max(L, 1), MAX_SIDE // max(L, 1)))
    return np.repeat(np.repeat(image, ry, axis=0), rx, axis=1)


def _log10(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.asarray(values, dtype=np.float64))
    out[~np.isfinite(out)] = np.nan
    return out


def _hparams(config: dict) -> dict:
    """The config as TensorBoard hparams: numbers, booleans and strings only."""
    out = {}
    for key, value in config.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif value is not None:
            out[key] = str(value)
    return out


def _created(session) -> float:
    """The session's creation time as a Unix time (now when unknown)."""
    try:
        text = str(session.file.attrs.get("created", ""))
        return _dt.datetime.fromisoformat(text).timestamp()
    except (ValueError, TypeError, OSError):
        return _dt.datetime.now().timestamp()


def export_tensorboard(path, logdir, runs_filter=None) -> list[str]:
    """Write the runs of session file ``path`` as TensorBoard runs under ``logdir``; returns the run folders."""
    from sessions import open_session

    SummaryWriter = _writer_class()
    written = []
    with open_session(path) as session:
        start = _created(session)
        runs = [r for r in session.runs if not runs_filter or r.name in runs_filter]
        if runs_filter and not runs:
            raise TensorBoardExportError(f"{path} has no run named {', '.join(runs_filter)} "
                                         f"(it has {', '.join(session.run_names)})")
        lut = _colour_table()
        for run in runs:
            folder = os.path.join(os.fspath(logdir), run.name)
            if glob.glob(os.path.join(folder, "events.out.tfevents.*")):
                raise TensorBoardExportError(f"{folder} already holds TensorBoard events; export to another "
                                             "folder (TensorBoard would show both as one run)")
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise TensorBoardExportError(f"cannot create {folder} ({exc.strerror or exc})") from None
            # its own file name: add_hparams opens a second writer in the same folder, which in the same
            # second would otherwise get the same name and overwrite the scalars
            with SummaryWriter(logdir=folder, filename_suffix=".scalars") as writer:
                _write_run(writer, run, start, lut)
            written.append(folder)
    return written


def _write_run(writer, run, start: float, lut: np.ndarray) -> None:
    for name in run.scalar_names:
        step, time, value = run.scalar(name)
        for s, t, v in zip(step.tolist(), time.tolist(), value.tolist()):
            writer.add_scalar(name, v, global_step=s, walltime=start + t)
    probe_steps = run.probe_steps
    for array, tag in HEATMAPS.items():
        try:
            rows = _log10(run.probe_series(array)[: len(probe_steps)])
        except KeyError:
            continue
        if rows.ndim != 2 or not rows.size:
            continue
        finite = rows[np.isfinite(rows)]
        levels = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        for k, s in enumerate(probe_steps.tolist()):
            writer.add_image(tag, heatmap_image(rows[: k + 1], levels, lut), global_step=s, dataformats="HWC")
    final = run.final
    metrics = {f"hparam/final_{k}": (v if math.isfinite(v) else float("nan")) for k, v in final.items()}
    writer.add_hparams(_hparams({**run.config, "cell": run.cell}), metrics, name=".")
