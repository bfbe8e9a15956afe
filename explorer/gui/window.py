"""The main window: settings panel, Run/Pause/Resume/Stop/Reset, session tabs, menus, status bar.

Each tab is a :class:`~explorer.gui.plots.SessionView`: the live training run, or
a session file opened for replay (several can be open at once). A ~30 Hz timer
redraws the visible tab from the newest records; the training itself runs in a
:class:`~explorer.gui.worker.TrainingWorker` on its own thread.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import threading
import time

from PySide6 import QtCore, QtGui, QtWidgets

from explorer.gui.plots import PLOT_NAMES, SessionView, cell_title
from explorer.gui.settings import GUI_DEFAULTS, SettingsPanel, cuda_unavailable_reason

FRAME_MS = 33          # frame timer period (~30 frames per second)
#: while training, redrawing (painting included) may use at most this share of one core of GUI-thread
#: CPU time: the training needs the cores, and the GUI thread's Python competes with the worker's
#: for the GIL between kernel calls (see bench/gui_speed.py)
TRAINING_DRAW_SHARE = 0.05
#: ... but the plots of a live run are redrawn at least this often (seconds)
MAX_DRAW_INTERVAL_S = 1.0
#: status bar (step, steps/s, elapsed) refresh period while training (seconds)
STATUS_INTERVAL_S = 0.25
MAX_RECENT = 8
PREWARM_TEXT = "preparing the kernels in the background… (the first start compiles them)"
SESSION_SUFFIXES = (".h5", ".hdf5")


def _user_error_types() -> tuple[type[BaseException], ...]:
    from explorer.errors import ExplorerError
    from kernels.errors import KernelError
    from sessions import SessionError

    from explorer.gui.export import ExportError

    return (ExplorerError, KernelError, SessionError, ExportError)


class MainWindow(QtWidgets.QMainWindow):
    """LSTM Explorer's window (see the module docstring)."""

    def __init__(self, check_cuda: bool = True, prewarm: bool = True):
        super().__init__()
        self.setWindowTitle("LSTM Explorer — why LSTMs learn long lags where RNNs fail")
        self.resize(1400, 860)
        self.setAcceptDrops(True)
        self.qsettings = _app_settings()
        self.thread: QtCore.QThread | None = None
        self.worker = None
        self.trainer = None
        self.recorder = None          # the live run's SessionRecorder
        self._recording_id = None     # (inode, device) of its file when it started
        self.live_session = None
        self.live_view: SessionView | None = None
        self.last_error_box: QtWidgets.QMessageBox | None = None
        self.errors: list[str] = []          # every error shown, newest last (tests read it)
        self._reset_pending = False
        self._started_at = 0.0
        self._cell_progress: dict[str, tuple[int, float]] = {}
        self.max_frame_gap_ms = 0.0
        self.frame_gaps: collections.deque = collections.deque(maxlen=200_000)  # ms between frames while training
        self._last_frame = None
        self.frames = 0
        self.draws = 0                        # frames that redrew something
        self._compiled = False
        self._next_draw = 0.0
        self._draw_mark: tuple[float, float] | None = None   # (wall, GUI-thread CPU) when the last draw began
        self._last_status = 0.0

        # -- left: settings + controls ----------------------------------------------------------
        self.settings = SettingsPanel(cuda_reason=cuda_unavailable_reason() if check_cuda else "not checked")
        controls = QtWidgets.QGridLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.reset_button = QtWidgets.QPushButton("Reset")
        self.run_button.setToolTip("train the ticked cells side by side on the same batches")
        self.reset_button.setToolTip("stop training, close the live plots and restore the default settings")
        self.run_button.setDefault(True)
        for k, b in enumerate((self.run_button, self.pause_button, self.resume_button, self.stop_button,
                               self.reset_button)):
            controls.addWidget(b, k // 3, k % 3)
        self.run_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.pause_training)
        self.resume_button.clicked.connect(self.resume_training)
        self.stop_button.clicked.connect(self.stop_training)
        self.reset_button.clicked.connect(self.reset)
        self.compile_label = QtWidgets.QLabel("")
        self.compile_label.setWordWrap(True)
        self.compile_bar = QtWidgets.QProgressBar()
        self.compile_bar.setVisible(False)
        self.settings.changed.connect(lambda ok: self._update_buttons())

        left = QtWidgets.QWidget()
        lv = QtWidgets.QVBoxLayout(left)
        title = QtWidgets.QLabel("<b>Training settings</b>")
        lv.addWidget(title)
        lv.addWidget(self.settings)
        lv.addLayout(controls)
        lv.addWidget(self.compile_label)
        lv.addWidget(self.compile_bar)
        lv.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        scroll.setMaximumWidth(340)
        dock = QtWidgets.QDockWidget("Settings", self)
        dock.setObjectName("settings-dock")
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(scroll)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        # -- centre: one tab per session ------------------------------------------------------
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(lambda _: self._refresh_visible())   # the shown groups catch up
        self.welcome = QtWidgets.QLabel(
            "<h2>LSTM Explorer</h2><p>Press <b>Run</b> to train a vanilla RNN and an LSTM side by side on the "
            "adding problem with lag T = 100.<br>Watch the RNN's loss stay at the chance line while its "
            "gradient ‖∂L/∂h_t‖ vanishes towards early t,<br>and the LSTM's forget gate hold the marked "
            "numbers until the end.</p><p>File &gt; Open (or drop .h5 files here) replays a saved session.</p>")
        self.welcome.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.welcome.setWordWrap(True)
        self.tabs.addTab(self.welcome, "Welcome")
        self.setCentralWidget(self.tabs)

        # -- status bar ----------------------------------------------------------------------------
        sb = self.statusBar()
        self.status_step = QtWidgets.QLabel("idle")
        self.status_rate = QtWidgets.QLabel("")
        self.status_elapsed = QtWidgets.QLabel("")
        self.status_backend = QtWidgets.QLabel("backend: cpu")
        self.status_file = QtWidgets.QLabel(f"sessions: {self.settings.folder()}")
        self.status_file.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        for w in (self.status_step, self.status_rate, self.status_elapsed, self.status_backend):
            w.setAutoFillBackground(True)   # updated while training: repaint only themselves
            sb.addWidget(w)
        sb.addPermanentWidget(self.status_file)

        self.sweeps = None          # the sweep controller (Training > Sweep…), when Dask is installed
        self._build_menus()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._on_frame)
        self.timer.start()
        self._update_buttons()
        self._prewarm_thread = prewarm_kernels() if prewarm else None
        if self._prewarm_thread is not None and self._prewarm_thread.is_alive():
            self.compile_label.setText(PREWARM_TEXT)

    # ------------------------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        a = m.addAction("&Open session or sweep…")
        a.setShortcut(QtGui.QKeySequence.StandardKey.Open)
        a.triggered.connect(self.open_dialog)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)   # another window may have added files
        self._fill_recent()
        m.addAction("Open seeds as &bands…").triggered.connect(self.open_bands_dialog)
        if importlib.util.find_spec("explorer.gui.sweep_view") is not None:
            a = m.addAction("Open s&weep…")
            a.triggered.connect(self.open_sweep_dialog)
        m.addSeparator()
        a = m.addAction("&Export all plots…")
        a.setShortcut("Ctrl+E")
        a.triggered.connect(self.export_all_dialog)
        m.addSeparator()
        a = m.addAction("&Close tab")
        a.setShortcut(QtGui.QKeySequence.StandardKey.Close)
        a.triggered.connect(lambda: self.close_tab(self.tabs.currentIndex()))
        a = m.addAction("&Quit")
        a.setShortcut(QtGui.QKeySequence.StandardKey.Quit)
        a.triggered.connect(self.close)
        t = self.menuBar().addMenu("&Training")
        for text, slot in (("Run", self.start_training), ("Pause", self.pause_training),
                           ("Resume", self.resume_training), ("Stop", self.stop_training), ("Reset", self.reset)):
            t.addAction(text).triggered.connect(slot)
        if importlib.util.find_spec("distributed") is not None:
            from explorer.gui.sweep_run import SweepController

            self.sweeps = SweepController(self)
            t.addSeparator()
            t.addAction("S&weep…").triggered.connect(self.sweeps.dialog)
            t.addAction("Stop s&weep").triggered.connect(self.sweeps.stop)
        h = self.menuBar().addMenu("&Help")
        h.addAction("About").triggered.connect(self._about)

    def _about(self) -> None:
        from explorer import __version__

        QtWidgets.QMessageBox.about(
            self, "LSTM Explorer",
            f"LSTM Explorer {__version__}\nTrains a vanilla RNN and an LSTM side by side on long-lag tasks.\n"
            f"Plots: {', '.join(PLOT_NAMES)} (right-click a plot to export it).")

    def recent_files(self) -> list[str]:
        v = self.qsettings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [p for p in (v or []) if isinstance(p, str)]

    def _add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        files = [path] + [p for p in self.recent_files() if p != path]
        self.qsettings.setValue("recent", files[:MAX_RECENT])
        self.qsettings.sync()        # another window (or the next start) reads the file
        self._fill_recent()

    def open_recent(self, path: str) -> list[SessionView]:
        """Open a file of the recent list; one that no longer exists is reported and dropped from it."""
        if not os.path.exists(path):
            self.qsettings.setValue("recent", [p for p in self.recent_files() if p != path])
            self.qsettings.sync()
            self._fill_recent()
            self.show_error("Cannot open the session file",
                            f"{path}: no such file (moved or deleted?); removed from File > Open recent")
            return []
        return self.open_files([path])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for p in files:
            self.recent_menu.addAction(p).triggered.connect(lambda _=False, p=p: self.open_recent(p))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    # ------------------------------------------------------------------------------------ errors
    def show_error(self, title: str, message: str) -> QtWidgets.QMessageBox:
        """A non-blocking error dialog; the window keeps running."""
        self.errors.append(message)
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()
        self.last_error_box = box
        self.statusBar().showMessage(message, 10000)
        return box

    # ------------------------------------------------------------------------------------ training
    @property
    def training(self) -> bool:
        return self.thread is not None

    def _update_buttons(self) -> None:
        running = self.training
        paused = running and self.trainer is not None and self.trainer.paused
        self.run_button.setEnabled(not running and self.settings.validate() is None)
        self.pause_button.setEnabled(running and not paused)
        self.resume_button.setEnabled(running and paused)
        self.stop_button.setEnabled(running)
        self.settings.setEnabled(not running)

    def session_path(self, cfg) -> str:
        folder = self.settings.folder()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = os.path.join(folder, f"{stamp}_{cfg.task}_T{cfg.seq_len}_{'-'.join(cfg.cells)}")
        path, k = base + ".h5", 1
        while os.path.exists(path):
            k += 1
            path = f"{base}_{k}.h5"
        return path

    def start_training(self) -> bool:
        """Start a training with the panel's settings; returns False (with a dialog) on a user error."""
        if self.training:
            return False
        from explorer.gui.data import LiveSession
        from explorer.gui.worker import start_worker
        from explorer.recording import SessionRecorder
        from explorer.training import Trainer

        recorder = None
        try:
            cfg = self.settings.config()
            trainer = Trainer(cfg)
            folder = self.settings.folder()
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise _SettingsFolderError(f"session folder {folder}: cannot create it ({exc.strerror or exc}); "
                                           "choose another in the settings") from None
            path = self.session_path(cfg)
            recorder = SessionRecorder(path, cfg, trainer.runs)
        except _user_error_types() + (_SettingsFolderError,) as exc:
            self.show_error("Cannot start training", str(exc))
            return False
        self.trainer = trainer
        self.recorder, self._recording_id = recorder, _file_id(recorder.path)
        self.live_session = LiveSession(trainer.runs, cfg.to_dict(), recorder.path)
        self._close_live_tab()
        self.live_view = SessionView(self.live_session)
        self.live_view.settings["x_max"] = cfg.steps
        self.live_view.settings["live"] = True
        self.live_view.export_handler = self.export_dialog
        idx = self.tabs.insertTab(0, self.live_view, f"● {cfg.task} T={cfg.seq_len} (live)")
        self.tabs.setCurrentIndex(idx)
        self._remove_welcome()
        self._cell_progress = {c: (0, 0.0) for c in cfg.cells}
        self._started_at = time.perf_counter()
        self.status_backend.setText(f"backend: {cfg.backend}")
        self.status_file.setText(f"recording to {recorder.path}")
        self.status_step.setText("compiling kernels…")
        self.compile_label.setText("compiling kernels… (first launch compiles, later runs load the cache)")
        self.compile_bar.setRange(0, len(cfg.cells))
        self.compile_bar.setValue(0)
        self.compile_bar.setVisible(True)

        self._compiled = False
        self.thread, self.worker = start_worker(trainer, recorder, self)
        self.worker.compiling.connect(self._on_compiling)
        self.worker.compiled.connect(self._on_compiled)
        self.worker.records.connect(self._on_records)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.thread.finished.connect(self._on_thread_done)
        self.thread.start()
        self._update_buttons()
        return True

    def pause_training(self) -> None:
        if self.worker is not None:
            self.worker.pause()
            self.status_step.setText(self.status_step.text().split(" (paused)")[0] + " (paused)")
        self._update_buttons()

    def resume_training(self) -> None:
        if self.worker is not None:
            self.worker.resume()
        self._update_buttons()

    def stop_training(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._update_buttons()

    def reset(self) -> None:
        """Stop any training, close the live plots and restore the default settings."""
        if self.training:
            self._reset_pending = True
            self.stop_training()
            return
        self._close_live_tab()
        self.settings.set_config(GUI_DEFAULTS)
        self.status_step.setText("idle")
        self.status_rate.setText("")
        self.status_elapsed.setText("")
        self.compile_label.setText("")
        self.compile_bar.setVisible(False)

    def wait_for_training(self, timeout_ms: int = 10000) -> bool:
        """Stop and join the worker thread (used on close)."""
        if self.thread is None:
            return True
        self.worker.stop()
        ok = self.thread.wait(timeout_ms)
        QtWidgets.QApplication.processEvents()
        return ok

    # -- worker signals (GUI thread) -------------------------------------------------------------
    def _on_compiling(self, done: int, total: int, what: str) -> None:
        self.compile_bar.setRange(0, max(total, 1))
        self.compile_bar.setValue(done)
        self.compile_label.setText(f"compiling kernels… {done}/{total} ({what})")

    def _on_compiled(self, info) -> None:
        how = f"compiled {info.get('compiled', 0)} kernels" if info.get("compiled") else "kernels loaded from cache"
        self.compile_label.setText(f"{how} in {info.get('seconds', 0.0):.1f} s — training")
        self.compile_bar.setVisible(False)
        self._compiled = True
        self._last_frame = None

    def _on_records(self, batch) -> None:
        from explorer.training import StepRecord

        if self.live_session is None:
            return
        self.live_session.feed(batch)
        for rec in batch:
            if isinstance(rec, StepRecord):
                self._cell_progress[rec.cell] = (rec.step, rec.wall_time)

    def _on_finished(self, statuses) -> None:
        text = ", ".join(f"{cell_title(c)} {s}" for c, (s, _m) in statuses.items())
        self.compile_label.setText(f"training ended: {text}")
        notes = [m for s, m in statuses.values() if s == "diverged" and m]
        if notes:
            self.show_error("Training diverged", "\n".join(notes))

    def _on_failed(self, message: str) -> None:
        self.show_error("Training failed", message)

    def _on_thread_done(self) -> None:
        path = self.live_session.path if self.live_session else None
        if self.thread is not None:
            self.thread.deleteLater()
        self.thread = self.worker = None
        recorder, self.recorder = self.recorder, None
        if path and recorder is not None and recorder.writer.path_was_lost:
            self._offer_recovered(path, recorder.writer.saved_as)
            path = recorder.writer.saved_as
        if self.live_view is not None:
            self.live_view.settings["live"] = False     # final look: the wide smoothed curves
        if path:
            self.status_file.setText(f"saved {path}")
            self._add_recent(path)
            if self.live_view is not None:
                i = self.tabs.indexOf(self.live_view)
                if i >= 0:
                    self.tabs.setTabText(i, self.tabs.tabText(i).replace("● ", "").replace("(live)", "(done)"))
        self._update_buttons()
        self._refresh_visible(force=True)
        self._update_status()
        if self._reset_pending:
            self._reset_pending = False
            self.reset()

    # ------------------------------------------------------------------------------------ frames
    def _on_frame(self) -> None:
        now = time.perf_counter()
        if self._last_frame is not None and self.training and self._compiled:
            gap = 1000 * (now - self._last_frame)
            self.max_frame_gap_ms = max(self.max_frame_gap_ms, gap)
            self.frame_gaps.append(gap)
        self._last_frame = now
        self.frames += 1
        if self.training and now - self._last_status >= STATUS_INTERVAL_S:
            self._last_status = now
            self._update_status()
        if now < self._next_draw:
            return
        if self.training:
            # adaptive frame rate: the GUI thread's CPU time since the last draw began (that draw, its
            # painting, the worker's signals...) spaces the next draw so drawing stays within
            # TRAINING_DRAW_SHARE of a core; each draw redraws one changed plot (round-robin), so a
            # frame never holds the event loop for long
            cpu = time.thread_time()
            if self._draw_mark is not None:
                t0, cpu0 = self._draw_mark
                wait = min((cpu - cpu0) / TRAINING_DRAW_SHARE, MAX_DRAW_INTERVAL_S) - (now - t0)
                if wait > 0:
                    self._next_draw = now + wait
                    return
            self._draw_mark = (now, cpu)
            if self._refresh_visible(max_groups=1):
                self.draws += 1
            return
        self._draw_mark = None
        if self._prewarm_thread is not None and not self._prewarm_thread.is_alive():
            self._prewarm_thread = None
            if self.compile_label.text() == PREWARM_TEXT:
                self.compile_label.setText("")
        t = time.perf_counter()
        if self._refresh_visible():
            self.draws += 1
        # idle or replaying: drawing (and the repaint it causes, about as long) takes at most ~1/4
        # of the GUI thread
        cost = time.perf_counter() - t
        self._next_draw = now + min(4 * 2 * cost, 0.5)
        if self.frames % 8 == 0:
            self._update_status()

    def _refresh_visible(self, force: bool = False, max_groups: int | None = None) -> bool:
        """Redraw the shown tab (what changed); poll followed files in the other tabs. True if it drew."""
        view = self.tabs.currentWidget()
        drew = False
        if isinstance(view, SessionView):
            try:
                drew = view.refresh(force=force, max_groups=max_groups)
            except _user_error_types() as exc:
                view.follow_file = False
                path = getattr(view.session, "path", None)
                msg = str(exc) if not path or path in str(exc) else f"{path}: {exc}"
                self.show_error("Cannot read the session", msg)
        for i in range(self.tabs.count()):  # follow files being written even when not shown
            w = self.tabs.widget(i)
            if isinstance(w, SessionView) and w is not view and w.follow_file:
                try:
                    if w.session is not None and time.monotonic() - w._last_file_refresh > 2.0:
                        w._last_file_refresh = time.monotonic()
                        w.session.refresh()
                        if not getattr(w.session, "live", False):
                            w.follow_file = False
                            w.following_ended.emit()
                except _user_error_types():
                    w.follow_file = False
        return drew

    def _check_recording_path(self) -> None:
        """Say once when the file a live run records into was deleted or replaced: the run goes on (into
        the unlinked file) and is saved under a new name when it ends (:meth:`_on_thread_done`)."""
        if self.recorder is None or self._recording_id is None or _file_id(self.recorder.path) == self._recording_id:
            return
        self._recording_id = None
        self.status_file.setText(f"⚠ {os.path.basename(self.recorder.path)} was deleted")
        self.show_error("The session file was deleted",
                        f"{self.recorder.path} was deleted (or replaced) while this run records into it. Training "
                        "goes on; when it ends, the run is saved under a new name beside it, and you can choose "
                        "another.")

    def save_recovered_as(self, dest: str) -> str | None:
        """Move the run saved under a new name (its file was deleted while recording) to ``dest``."""
        src = self.live_session.path if self.live_session else None
        try:
            os.replace(src, dest)
        except (OSError, TypeError) as exc:
            self.show_error("Cannot save the run", f"{dest}: {getattr(exc, 'strerror', None) or exc}")
            return None
        self.live_session.path = dest
        self.status_file.setText(f"saved {dest}")
        self._add_recent(dest)
        return dest

    def _offer_recovered(self, lost: str, saved: str | None) -> None:
        """The run's file was deleted while it recorded: say where the run was saved, offer another name."""
        if saved is None:
            self.show_error("The run could not be saved",
                            f"{lost} was deleted while the run recorded into it, and the run could not be written "
                            "anywhere else (is the folder gone, or the disk full?)")
            return
        self.live_session.path = saved
        box = self.show_error("The run was saved under a new name",
                              f"{lost} was deleted while the run recorded into it; the run is saved as {saved}.")
        button = box.addButton("Save as…", QtWidgets.QMessageBox.ButtonRole.ActionRole)

        def choose():
            dest, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the run as", saved, "Session files (*.h5)")
            if dest:
                self.save_recovered_as(dest)
        button.clicked.connect(choose)

    def _update_status(self) -> None:
        if self.training:
            self._check_recording_path()
        if not self._cell_progress:
            return
        step = max(s for s, _ in self._cell_progress.values())
        total = self.trainer.config.steps if self.trainer else step
        paused = " (paused)" if self.training and self.trainer is not None and self.trainer.paused else ""
        if self.training and step == 0:
            return
        self.status_step.setText(f"step {step}/{total}{paused}")
        rates = [f"{cell_title(c)} {s / t:.1f}" for c, (s, t) in self._cell_progress.items() if t > 0]
        self.status_rate.setText(("steps/s: " + ", ".join(rates)) if rates else "")
        elapsed = max((t for _s, t in self._cell_progress.values()), default=0.0)
        self.status_elapsed.setText(f"elapsed {elapsed:.1f} s")

    # ------------------------------------------------------------------------------------ tabs
    def _remove_welcome(self) -> None:
        if self.welcome is None:   # its tab was closed (and the label deleted)
            return
        i = self.tabs.indexOf(self.welcome)
        if i >= 0:
            self.tabs.removeTab(i)

    def _close_live_tab(self) -> None:
        if self.live_view is not None:
            i = self.tabs.indexOf(self.live_view)
            if i >= 0:
                self.tabs.removeTab(i)
            self.live_view.deleteLater()
            self.live_view = None

    def close_tab(self, index: int) -> None:
        w = self.tabs.widget(index)
        if w is None:
            return
        if w is self.live_view and self.training:
            self.show_error("Training is running", "Stop the training before closing its tab.")
            return
        self.tabs.removeTab(index)
        if w is self.welcome:
            self.welcome = None
        if isinstance(w, SessionView):
            if w is self.live_view:
                self.live_view = None
            else:
                w.session.close()
        for session in getattr(w, "sessions", ()):      # a seeds-as-bands tab
            session.close()
        w.deleteLater()

    def views(self) -> list[SessionView]:
        return [self.tabs.widget(i) for i in range(self.tabs.count())
                if isinstance(self.tabs.widget(i), SessionView)]

    # ------------------------------------------------------------------------------------ files
    def open_dialog(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Open session or sweep files", self.settings.folder(),
                                                          "Session and sweep files (*.h5 *.hdf5);;All files (*)")
        if files:
            self.open_files(files)

    def open_files(self, paths) -> list:
        """Open each file in its own tab: a session in a :class:`SessionView`, a sweep file (``sweep.h5``) in
        the sweep view; a bad file shows a dialog naming it and the problem. Returns the views opened."""
        from sessions import SessionError, open_session
        from sessions.sweep import is_sweep_file

        opened = []
        for path in paths:
            if is_sweep_file(path):
                view = self.open_sweep(os.fspath(path))
                if view is not None:
                    self._add_recent(os.fspath(path))
                    opened.append(view)
                continue
            try:
                session = open_session(path)
                if not session.runs:
                    session.close()
                    raise _EmptySession(f"{path}: the session holds no runs")
            except (SessionError, _EmptySession, OSError) as exc:
                msg = str(exc) if os.fspath(path) in str(exc) else f"{path}: {exc}"
                self.show_error("Cannot open the session file", msg)
                continue
            view = None
            try:
                view = SessionView(session, follow_file=bool(getattr(session, "live", False)))
                view.export_handler = self.export_dialog
                view.following_ended.connect(lambda v=view: self._on_following_ended(v))
                view.refresh(force=True)   # every plot drawn once now: a file whose data cannot be drawn says so
            except _user_error_types() as exc:
                if view is not None:
                    view.deleteLater()
                session.close()
                msg = str(exc) if os.fspath(path) in str(exc) else f"{path}: {exc}"
                self.show_error("Cannot open the session file", msg)
                continue
            label = os.path.basename(os.fspath(path)) + (" (live)" if view.follow_file else "")
            i = self.tabs.addTab(view, label)
            self.tabs.setTabToolTip(i, os.path.abspath(os.fspath(path)))
            self.tabs.setCurrentIndex(i)
            self._remove_welcome()
            self._add_recent(os.fspath(path))
            opened.append(view)
        return opened

    def open_bands_dialog(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Open the seeds of one configuration",
                                                          self.settings.folder(), "Session files (*.h5 *.hdf5)")
        if files:
            self.open_seed_bands(files)

    def open_seed_bands(self, paths):
        """Sessions of one configuration, different seeds, in one tab: per cell the median loss and metric
        and the min–max band over the seeds. A file that cannot be read, or a configuration that differs
        in more than the seed, is a dialog."""
        from explorer.bands import check_same_configuration
        from explorer.errors import ConfigError
        from explorer.gui.plots.bands import BandsView
        from sessions import SessionError, open_session

        sessions = []
        try:
            for path in paths:
                sessions.append(open_session(path))
            if len(sessions) < 2:
                raise ConfigError("seed bands need two or more session files of one configuration")
            cfg = check_same_configuration(sessions)
            view = BandsView(sessions)
        except _user_error_types() + (SessionError, OSError) as exc:
            for s in sessions:
                s.close()
            self.show_error("Cannot open the seeds as bands", str(exc))
            return None
        view.export_handler = self.export_dialog
        i = self.tabs.addTab(view, f"seeds: {cfg.get('task', '?')} T={cfg.get('seq_len', '?')} ({len(sessions)})")
        self.tabs.setTabToolTip(i, "\n".join(os.path.abspath(os.fspath(p)) for p in paths))
        self.tabs.setCurrentIndex(i)
        self._remove_welcome()
        return view

    def _on_following_ended(self, view: SessionView) -> None:
        """The writer of a followed file finished (or died): the tab stops saying "(live)"."""
        i = self.tabs.indexOf(view)
        if i >= 0:
            self.tabs.setTabText(i, self.tabs.tabText(i).replace(" (live)", ""))
        self.statusBar().showMessage(f"{view.session.path}: the writer finished; no longer following it", 5000)

    def open_sweep_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open sweep summary", self.settings.folder(),
                                                        "Sweep files (*.h5 *.hdf5 *.json);;All files (*)")
        if path:
            self.open_sweep(path)

    def open_sweep(self, path: str):
        try:
            from explorer.gui.sweep_view import SweepView

            view = SweepView(path)
        except ImportError as exc:
            self.show_error("Sweeps unavailable", f"the sweep view is not installed ({exc})")
            return None
        except Exception as exc:
            self.show_error("Cannot open the sweep", f"{path}: {exc}")
            return None
        view.run_selected.connect(lambda session: self.open_files([session]))   # a clicked point's run
        view.seeds_selected.connect(lambda paths: self.open_seed_bands(paths) if len(paths) > 1
                                    else self.open_files(paths))             # a (cell, T) point's seeds
        i = self.tabs.addTab(view, f"sweep: {os.path.basename(path)}")
        self.tabs.setCurrentIndex(i)
        self._remove_welcome()
        return view

    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.toLocalFile().lower().endswith(SESSION_SUFFIXES) for u in urls):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls()
                 if u.toLocalFile().lower().endswith(SESSION_SUFFIXES)]
        if files:
            event.acceptProposedAction()
            self.open_files(files)

    # ------------------------------------------------------------------------------------ export
    def current_view(self) -> SessionView | None:
        w = self.tabs.currentWidget()
        return w if isinstance(w, SessionView) else None

    def export_dialog(self, view: SessionView, name: str, fmt: str) -> None:
        last = self.qsettings.value("export_dir", os.path.expanduser("~"))
        filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "csv": "CSV table (*.csv)"}
        out, _ = QtWidgets.QFileDialog.getSaveFileName(self, f"Export {name} as {fmt.upper()}",
                                                       os.path.join(str(last), f"{name}.{fmt}"), filters[fmt])
        if out:
            self.qsettings.setValue("export_dir", os.path.dirname(out))
            self.export_plot(view, name, fmt, out)

    def export_plot(self, view: SessionView, name: str, fmt: str, out: str) -> str | None:
        from explorer.gui.export import export_group

        try:
            view.draw_group(name)   # a plot on a hidden tab may be behind the data
            path = export_group(view.groups[name], fmt, out, view.runs, view.selected_probes())
        except _user_error_types() as exc:
            self.show_error("Export failed", str(exc))
            return None
        self.statusBar().showMessage(f"exported {name} to {path}", 5000)
        return path

    def export_all_dialog(self) -> None:
        view = self.current_view()
        if view is None:
            self.show_error("Nothing to export", "Open a session or run a training first.")
            return
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Export every plot to folder", str(self.qsettings.value("export_dir", os.path.expanduser("~"))))
        if folder:
            self.qsettings.setValue("export_dir", folder)
            self.export_all(folder, view)

    def export_all(self, folder: str, view: SessionView | None = None) -> list[str]:
        from explorer.gui.export import export_all

        view = view or self.current_view()
        if view is None:
            return []
        try:
            written = export_all(view.runs, view.selected_probes(), folder, settings=view.settings)
        except _user_error_types() as exc:
            self.show_error("Export failed", str(exc))
            return []
        self.statusBar().showMessage(f"exported {len(written)} files to {folder}", 8000)
        return written

    # ------------------------------------------------------------------------------------ close
    def closeEvent(self, event) -> None:
        if self.training:
            self.wait_for_training()
        if self.sweeps is not None and self.sweeps.running:
            self.sweeps.stop()
            self.sweeps.wait()
        self.timer.stop()
        for v in self.views():
            if v is not self.live_view:
                v.session.close()
        super().closeEvent(event)


_prewarm: threading.Thread | None = None


def _file_id(path) -> tuple[int, int] | None:
    """(inode, device) of the file at ``path``, None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_dev


def prewarm_kernels() -> threading.Thread:
    """Import the training stack and load (or, the first time, compile) the CPU kernels on a
    background thread, once per process, so that pressing Run does not freeze the window for
    the imports and the first training starts at once. The worker's own warm-up then finds the
    kernels ready (a Run pressed before this ends waits for Numba's compiler lock, off the GUI thread)."""
    global _prewarm
    if _prewarm is None:
        def work():
            try:
                import explorer.recording  # noqa: F401  (h5py, sessions)
                import explorer.training  # noqa: F401
                import kernels

                backend = kernels.backend("cpu")
                warm = getattr(backend, "warm_up", None)
                if warm is not None:
                    d = GUI_DEFAULTS
                    warm(cells=d.cells, dtype=d.dtype, optimizer=d.optimizer)
            except Exception:  # a real problem is reported when a training starts
                pass

        _prewarm = threading.Thread(target=work, name="lstm-explorer-prewarm", daemon=True)
        _prewarm.start()
    return _prewarm


def _app_settings() -> QtCore.QSettings:
    """Recent files etc.: beside the sessions when LSTM_EXPLORER_DATA_DIR is set (tests), else Qt's place."""
    env = os.environ.get("LSTM_EXPLORER_DATA_DIR")
    if env:
        return QtCore.QSettings(os.path.join(os.path.abspath(env), "lstm-explorer.ini"),
                                QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings("lstm-explorer", "lstm-explorer")


class _SettingsFolderError(Exception):
    pass


class _EmptySession(Exception):
    pass
