"""Record a Trainer's records to an HDF5 session file (the glue between ``explorer`` and ``sessions``).

::

    trainer = Trainer(config)
    recorder = SessionRecorder("run.h5", config, trainer.runs, overwrite=False)
    try:
        for rec in trainer.run():
            recorder.record(rec)
    finally:
        recorder.finish({cell: trainer.state_dict(cell) for cell in config.cells})

One run per :class:`~explorer.training.RunInfo`, named after its cell ("rnn",
"lstm"). A write failure (disk full, ...) raises
:class:`sessions.SessionWriteError` from :meth:`SessionRecorder.record`; what was
flushed before stays readable and :meth:`finish` then only closes the file.
"""
from __future__ import annotations

import os

import numpy as np

from explorer import __version__
from explorer.config import TrainConfig
from explorer.training import (PARAM_GRAD_NAMES, CheckpointRecord, ProbeRecord, RunInfo, SolvedRecord, StatusRecord,
                               StepRecord, TestRecord)
from sessions import SessionWriter


class SessionRecorder:
    """Writes a Trainer's records to a session file as they arrive.

    Parameters
    ----------
    path : str or os.PathLike
        The session file to create.
    config : TrainConfig
        Stored as ``config.to_dict()`` in every run.
    runs : list of RunInfo
        One run per cell (``trainer.runs``).
    overwrite : bool
        Replace an existing file (``--force``); otherwise an existing file raises
        :class:`sessions.SessionExistsError`.
    flush_interval_s : float
        Flush at least this often while records arrive (a ``kill -9`` loses at most this much).
    """

    def __init__(self, path, config: TrainConfig, runs: list[RunInfo], *, overwrite: bool = False,
                 flush_interval_s: float = 1.0):
        self._writer = SessionWriter(path, overwrite=overwrite, software_version=__version__,
                                     flush_interval_s=flush_interval_s)
        self._time: dict[str, float] = {}
        try:
            cfg = config.to_dict()
            for info in runs:
                self._writer.add_run(
                    info.cell, cell=info.cell, config=cfg, param_count=info.param_count,
                    param_shapes=info.param_shapes, length=info.length, hidden=info.hidden,
                    n_gates=info.n_gates, metric_name=info.metric_name,
                    higher_is_better=info.higher_is_better, baseline_loss=info.baseline_loss,
                    baseline_metric=info.baseline_metric, param_grad_names=list(PARAM_GRAD_NAMES),
                    param_dtype=getattr(config, "dtype", "float32"), gate_names=info.gate_names,
                    cell_state=info.cell_state, init=info.init, cell_options=info.options,
                    stop_rule=info.stop_rule, test_size=info.test_size, sequence_rule=info.sequence_rule,
                    probe_input=info.probe_input, weight_sigma_bounds=info.weight_sigma_bounds,
                    checkpoint_layout=info.checkpoint_layout)
                self._time[info.cell] = 0.0
            self._writer.start()
        except BaseException:
            self._writer.close_quietly()
            raise

    @classmethod
    def reopen(cls, path, checkpoint: CheckpointRecord, *, changes: dict | None = None,
               flush_interval_s: float = 1.0) -> "SessionRecorder":
        """Go on recording into the session file ``path`` from ``checkpoint`` (``train --resume``): what it
        holds after the checkpoint's step is cut away; ``changes``, configuration fields the resume sets
        (``{"steps": N, "lr_schedule": "..."}``; see :meth:`sessions.SessionWriter.reopen`)."""
        self = cls.__new__(cls)
        running = [cell for cell, state in checkpoint.cells.items() if int(state["active"])]
        self._writer = SessionWriter.reopen(path, checkpoint.step, running, config_changes=changes,
                                            flush_interval_s=flush_interval_s)
        self._time = dict.fromkeys(checkpoint.cells, float(checkpoint.wall_time))
        return self

    @property
    def path(self) -> str:
        return self._writer.path

    @property
    def writer(self) -> SessionWriter:
        return self._writer

    @property
    def saved_path(self) -> str | None:
        """Where the session is once closed: :attr:`path`, or the new name the writer saved it under when
        the path was deleted or replaced while recording (None when that could not be written)."""
        return self._writer.saved_as if self._writer.path_was_lost else self._writer.path

    def record(self, rec) -> None:
        """Turn one StepRecord / ProbeRecord / StatusRecord into writer calls."""
        w = self._writer
        if isinstance(rec, StepRecord):
            self._time[rec.cell] = rec.wall_time
            w.append_step(rec.cell, rec.step, rec.wall_time, rec.loss, rec.metric, rec.grad_norm,
                          rec.param_grad_norms)
        elif isinstance(rec, ProbeRecord):
            # a probe has no clock of its own: it belongs to its step, whose wall time came just before
            w.append_probe(rec.cell, rec.step, self._time.get(rec.cell, 0.0), rec.grad_norm_t, rec.h,
                           rec.gates, rec.c, rec.saturation, rec.saliency, rec.spectrum, rec.weight_sigma)
        elif isinstance(rec, StatusRecord):
            w.set_status(rec.cell, rec.status, rec.message, rec.step)
        elif isinstance(rec, SolvedRecord):
            w.set_solved(rec.cell, rec.step, rec.sequences)
        elif isinstance(rec, TestRecord):
            w.append_test(rec.cell, rec.step, rec.wall_time, rec.loss, rec.metric, rec.wrong, rec.final)
        elif isinstance(rec, CheckpointRecord):
            w.write_checkpoint(rec.step, rec.wall_time, rec.rng, rec.cells)
        else:
            raise TypeError(f"cannot record {type(rec).__name__}: expected StepRecord, ProbeRecord, StatusRecord, "
                            "SolvedRecord, TestRecord or CheckpointRecord")

    def finish(self, params: dict[str, dict[str, np.ndarray]]) -> None:
        """Write each cell's final parameters (``{cell: state_dict}``), flush and close.

        After an earlier write failure this only closes the file (the failure was
        already raised by :meth:`record`).
        """
        if self._writer.failed:
            self._writer.close_quietly()
            return
        try:
            for cell, state in params.items():
                self._writer.write_params(cell, state)
        finally:
            if self._writer.failed:
                self._writer.close_quietly()
            else:
                self._writer.close()

    def close(self) -> None:
        """Flush and close without writing parameters (safe to call twice)."""
        if self._writer.failed:
            self._writer.close_quietly()
        else:
            self._writer.close()

    def __enter__(self) -> "SessionRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SessionRecorder {os.fspath(self.path)!r}>"
