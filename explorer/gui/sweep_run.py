"""Training > Sweep…: a sweep run from the window, its frontier and claims table filling in as runs finish.

:class:`SweepDialog` asks for what ``lstm-explorer sweep`` takes (cells, lags, seeds, the step budget, until
solved, a Dask scheduler or the embedded cluster, the output folder) on top of the settings panel's training
configuration; :class:`SweepRunner` runs :func:`explorer.sweep.run_sweep` on a thread of its own and reports
progress, and the window's sweep tab reloads ``sweep.h5`` after each finished run. Stop keeps every finished
run (as Ctrl-C does on the command line); the same sweep started again resumes.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time

from PySide6 import QtCore, QtWidgets

from explorer.errors import ConfigError, ExplorerError


class SweepDialog(QtWidgets.QDialog):
    """The sweep's axes and budget; :meth:`plan` builds and checks the :class:`explorer.sweep.SweepPlan`.
    ``base`` is the settings panel's configuration (task, hidden size, optimizer, ... are taken from it)."""

    def __init__(self, base, folder: str, parent=None):
        from kernels import cells

        super().__init__(parent)
        self.setWindowTitle("Sweep")
        self.setMinimumWidth(600)
        self.base = base
        form = QtWidgets.QFormLayout(self)
        intro = QtWidgets.QLabel(f"Every (cell, lag T, seed) is one run of the settings panel's configuration "
                                 f"({base.task}, hidden {base.hidden}, {base.optimizer} lr {base.lr:g}, "
                                 f"init {base.init}), one session file each; sweep.h5 collects them.")
        intro.setWordWrap(True)
        form.addRow(intro)
        row = QtWidgets.QHBoxLayout()
        self.cells = {}
        for spec in cells.specs():
            box = QtWidgets.QCheckBox(spec.label)
            box.setChecked(spec.name in base.cells)
            self.cells[spec.name] = box
            row.addWidget(box)
        form.addRow("cells", row)
        self.seq_lens = QtWidgets.QLineEdit(",".join(str(t) for t in (10, 20, 50, 100) if t <= max(base.seq_len, 10))
                                            or str(base.seq_len))
        self.seq_lens.setToolTip("lags T, comma separated, e.g. 10,20,50,100")
        form.addRow("lags T", self.seq_lens)
        self.seeds = QtWidgets.QSpinBox()
        self.seeds.setRange(1, 1000)
        self.seeds.setValue(3)
        form.addRow("seeds", self.seeds)
        self.steps = QtWidgets.QSpinBox()
        self.steps.setRange(1, 100_000_000)
        self.steps.setValue(base.steps)
        self.until_solved = QtWidgets.QCheckBox("until solved (steps is then the cap)")
        self.until_solved.setChecked(bool(base.until_solved))
        form.addRow("steps", self.steps)
        form.addRow("", self.until_solved)
        self.scheduler = QtWidgets.QLineEdit(os.environ.get("DASK_SCHEDULER_ADDRESS", ""))
        self.scheduler.setPlaceholderText("embedded Dask cluster on this machine")
        self.scheduler.setToolTip("a Dask scheduler, e.g. tcp://host:8786 (its workers must see the folder)")
        form.addRow("scheduler", self.scheduler)
        self.out = QtWidgets.QLineEdit(os.path.join(folder, "sweeps", f"{base.task}-{time.strftime('%Y%m%d-%H%M%S')}"))
        browse = QtWidgets.QPushButton("…")
        browse.clicked.connect(self._browse)
        out_row = QtWidgets.QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)
        form.addRow("folder", out_row)
        self.error = QtWidgets.QLabel("")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Run sweep")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Sweep folder", os.path.dirname(self.out.text()))
        if path:
            self.out.setText(path)

    def plan(self):
        """The sweep as the dialog stands; :class:`ConfigError` (or another of the app's errors) saying what
        is wrong otherwise."""
        from explorer.sweep import SweepPlan, parse_int_list

        cells = tuple(name for name, box in self.cells.items() if box.isChecked())
        if not cells:
            raise ConfigError("choose at least one cell")
        seq_lens = parse_int_list(self.seq_lens.text(), "lags T")
        if not self.out.text().strip():
            raise ConfigError("choose a folder for the sweep's files")
        base = dataclasses.replace(self.base, cells=cells[:1], seq_len=min(seq_lens), seed=0,
                                   steps=self.steps.value(), until_solved=self.until_solved.isChecked()).validate()
        return SweepPlan(base=base, cells=cells, seq_lens=seq_lens, seeds=self.seeds.value(),
                         out=self.out.text().strip()).validate()

    def scheduler_address(self) -> str | None:
        return self.scheduler.text().strip() or None

    def accept(self) -> None:
        try:
            self.plan()
        except ExplorerError as exc:
            self.error.setText(str(exc))
            return
        super().accept()


class SweepRunner(QtCore.QThread):
    """Runs one sweep off the GUI thread.

    Signals
    -------
    progress(done, failed, total) : on each change (and once when the sweep file exists)
    ended(summary) : the sweep returned (``summary.interrupted`` after :meth:`stop`)
    failed(message) : it ended with an error (a lost scheduler, a bad folder)
    """

    progress = QtCore.Signal(int, int, int)
    ended = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, plan, scheduler: str | None = None, parent=None):
        super().__init__(parent)
        self.plan = plan
        self.scheduler = scheduler
        self.total = len(plan.specs())
        self._stop = threading.Event()
        self._last: tuple[int, int] | None = None

    @property
    def sweep_path(self) -> str:
        from explorer.sweep import SWEEP_FILE

        return os.path.join(self.plan.out, SWEEP_FILE)

    def stop(self) -> None:
        """End the sweep after the current poll: unfinished runs cancelled, finished ones kept."""
        self._stop.set()

    def _on_poll(self, state: dict) -> None:
        now = (int(state["done"]), int(state["failed"]))
        if now != self._last:
            self._last = now
            self.progress.emit(now[0], now[1], self.total)

    def run(self) -> None:
        from explorer.sweep import run_sweep

        try:
            summary = run_sweep(self.plan, scheduler=self.scheduler, quiet=True, callback=self._on_poll,
                                stop=self._stop, poll_s=0.1)
        except ExplorerError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:             # shown in a dialog; the window keeps running
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.ended.emit(summary)


class SweepController(QtCore.QObject):
    """The window's sweep: Training > Sweep… opens the dialog, a run's progress reloads the sweep's tab (opened
    as soon as ``sweep.h5`` exists), Training > Stop sweep ends it keeping the finished runs. One at a time."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.runner: SweepRunner | None = None
        self.view = None

    @property
    def running(self) -> bool:
        return self.runner is not None and self.runner.isRunning()

    def dialog(self) -> SweepDialog | None:
        """Ask for a sweep and start it; the dialog (accepted or not), None when the settings are invalid."""
        try:
            base = self.window.settings.config()
        except ExplorerError as exc:
            self.window.show_error("Invalid settings", f"fix the settings panel first: {exc}")
            return None
        dlg = SweepDialog(base, self.window.settings.folder(), self.window)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.start(dlg.plan(), dlg.scheduler_address())
        return dlg

    def start(self, plan, scheduler: str | None = None) -> SweepRunner | None:
        if self.running:
            self.window.show_error("A sweep is running", "stop it first (Training > Stop sweep), or wait for it")
            return None
        self.view = None
        self.runner = SweepRunner(plan, scheduler, self)
        self.runner.progress.connect(self._on_progress)
        self.runner.ended.connect(self._on_ended)
        self.runner.failed.connect(self._on_failed)
        self.runner.start()
        self.window.statusBar().showMessage(f"sweep: {self.runner.total} runs starting in {plan.out}")
        return self.runner

    def stop(self) -> None:
        if self.running:
            self.runner.stop()
            self.window.statusBar().showMessage("sweep: stopping (finished runs are kept)…")

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the sweep thread ends (the window closing)."""
        return self.runner.wait(timeout_ms) if self.runner is not None else True

    def _show(self) -> None:
        """Open the sweep's tab, or reload it: the frontier and claims table as ``sweep.h5`` has them now."""
        path = self.runner.sweep_path
        if self.view is None and os.path.exists(path):
            self.view = self.window.open_sweep(path)
        elif self.view is not None:
            try:
                self.view.reload()
            except Exception:      # the file is replaced atomically; a failed read shows next time
                pass

    def _on_progress(self, done: int, failed: int, total: int) -> None:
        self._show()
        n = len(self.view.sweep.runs) if self.view is not None else done
        self.window.statusBar().showMessage(f"sweep: {n} of {total} runs finished"
                                            + (f", {failed} failed" if failed else ""))

    def _on_ended(self, summary) -> None:
        self._show()
        n = len(summary.results)
        if summary.interrupted:
            text = (f"sweep stopped: {n} of {summary.total} runs finished and kept; a sweep into the same folder "
                    f"resumes the rest")
        else:
            text = f"sweep finished: {n} of {summary.total} runs" + (f", {summary.failed} failed" if summary.failed
                                                                        else "")
        self.window.statusBar().showMessage(text)

    def _on_failed(self, message: str) -> None:
        self._show()
        self.window.show_error("Sweep ended", message)
