"""Training off the GUI thread: a QObject living in a QThread that iterates ``Trainer.run()``.

The worker warms the kernels (reporting progress), records every record to the
session file, and forwards the records to the GUI thread in batches — one signal
every ~100 ms at most (the window redraws a few times a second while training),
never one per step. Pause, resume and stop call the
Trainer's thread-safe methods directly from the GUI thread. The worker never
touches a widget.
"""
from __future__ import annotations

import time
import traceback

from PySide6 import QtCore

from explorer.training import CheckpointRecord, StatusRecord, StepRecord

#: forward records to the GUI at most this often (seconds)
BATCH_INTERVAL_S = 0.1


class TrainingWorker(QtCore.QObject):
    """Runs one training; lives in its own QThread (see :func:`start_worker`).

    Signals
    -------
    compiling(done, total, what) : kernel warm-up progress
    compiled(info) : warm-up finished (dict from ``backend.warm_up``)
    records(list) : a batch of StepRecord/ProbeRecord/StatusRecord, in order
    finished(dict) : training ended; cell -> (status, message)
    failed(str) : an exception ended the training (message, traceback in the log)
    """

    compiling = QtCore.Signal(int, int, str)
    compiled = QtCore.Signal(object)
    records = QtCore.Signal(object)
    finished = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, trainer, recorder=None):
        super().__init__()
        self.trainer = trainer
        self.recorder = recorder
        self.statuses: dict[str, tuple[str, str]] = {}
        self._steps: dict[str, int] = {}     # the last step of each cell

    # thread-safe controls (they only set the trainer's events)
    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume()

    def stop(self) -> None:
        self.trainer.stop()

    @QtCore.Slot()
    def run(self) -> None:
        trainer, cfg = self.trainer, self.trainer.config
        batch: list = []
        try:
            warm = getattr(trainer.backend, "warm_up", None)
            if warm is not None:
                info = warm(cells=cfg.cells, dtype=cfg.dtype, optimizer=cfg.optimizer,
                            progress=lambda d, t, w: self.compiling.emit(int(d), int(t), str(w)))
                self.compiled.emit(info)
            last = time.perf_counter()
            for rec in trainer.run():
                if self.recorder is not None:
                    self.recorder.record(rec)
                if isinstance(rec, CheckpointRecord):     # for the session file only
                    continue
                if isinstance(rec, StatusRecord):
                    self.statuses[rec.cell] = (rec.status, rec.message)
                elif isinstance(rec, StepRecord):
                    self._steps[rec.cell] = rec.step
                batch.append(rec)
                now = time.perf_counter()
                if now - last >= BATCH_INTERVAL_S or isinstance(rec, StatusRecord):
                    self.records.emit(batch)
                    batch, last = [], now
            if batch:
                self.records.emit(batch)
                batch = []
            self._finish()
            self.finished.emit(dict(self.statuses))
        except Exception as exc:  # reported in a dialog; the window keeps running
            from explorer.errors import ExplorerError
            from sessions import SessionError

            ours = isinstance(exc, (ExplorerError, SessionError))   # a disk that filled up, say: no traceback
            if not ours:
                traceback.print_exc()
            message = str(exc) if ours else f"{type(exc).__name__}: {exc}"
            # every cell still running ends "stopped" with the reason, in the window as in the file
            stops = [StatusRecord(cell, "stopped", self._steps.get(cell, 0), message)
                     for cell in self.trainer.config.cells if self.statuses.get(cell, ("running",))[0] == "running"]
            for stop in stops:
                self.statuses[stop.cell] = (stop.status, stop.message)
            self.records.emit(batch + stops)
            try:
                self._finish(stops)
            except Exception:
                traceback.print_exc()
            self.failed.emit(message)

    def _finish(self, stops=()) -> None:
        rec, self.recorder = self.recorder, None
        if rec is None:
            return
        for stop in stops:
            try:
                rec.record(stop)
            except Exception:
                pass
        rec.finish({c: self.trainer.state_dict(c) for c in self.trainer.config.cells})


def start_worker(trainer, recorder, parent=None) -> tuple[QtCore.QThread, TrainingWorker]:
    """Create the worker in a new QThread and start it; the caller connects the signals first
    by passing them in via the returned objects before events are processed."""
    thread = QtCore.QThread(parent)
    worker = TrainingWorker(trainer, recorder)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # direct: QThread.quit is thread-safe, and queued to the GUI thread it would wait for that thread's event
    # loop, which wait_for_training blocks (closing the window while training hung for its whole timeout)
    direct = QtCore.Qt.ConnectionType.DirectConnection
    worker.finished.connect(thread.quit, direct)
    worker.failed.connect(thread.quit, direct)
    return thread, worker
