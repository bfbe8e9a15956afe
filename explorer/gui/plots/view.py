"""The plots of one session (live or replayed) in tabs, with the probe slider, log box and smoothing."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.gui.plots.base import PlotGroup, cell_label, default_settings
from explorer.gui.plots.registry import GROUP_CLASSES


class SessionView(QtWidgets.QWidget):
    """All plot groups for one session (live or replayed), a probe slider and a play button.

    ``session`` is a ``sessions.Session`` or an :class:`explorer.gui.data.LiveSession`.
    Call :meth:`refresh` from a timer: it redraws only what changed.
    """

    probe_changed = QtCore.Signal(int)
    #: a followed session file's writer finished (or died): the view stopped following it
    following_ended = QtCore.Signal()

    def __init__(self, session, parent=None, follow_file: bool = False):
        super().__init__(parent)
        self.session = session
        self.follow_file = follow_file
        self.groups: dict[str, PlotGroup] = {c.name: c() for c in GROUP_CLASSES}
        runs = session.runs
        for grp in self.groups.values():
            grp.prepare(runs)
        self.settings = default_settings(runs)
        self._drawn_key = None
        self._stale = True         # some group may be behind the data (drawn lazily, or hidden)
        self._next_group = 0       # round-robin start when a frame draws only some groups
        self._follow_latest = True
        self._last_file_refresh = 0.0
        self.export_handler = None

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        bar = QtWidgets.QHBoxLayout()
        self.log_box = QtWidgets.QCheckBox("log scale")
        self.log_box.setToolTip("logarithmic y axis for loss and metric")
        self.log_box.setChecked(self.settings["log"])
        self.log_box.toggled.connect(self._on_log)
        bar.addWidget(self.log_box)
        bar.addWidget(QtWidgets.QLabel("smoothing"))
        self.smooth_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(60)
        self.smooth_slider.setMaximumWidth(160)
        self.smooth_slider.setToolTip("EMA smoothing of loss and metric, as in TensorBoard (0 = raw)")
        self.smooth_slider.valueChanged.connect(self._on_smoothing)
        bar.addWidget(self.smooth_slider)
        self.smooth_label = QtWidgets.QLabel("0.60")
        bar.addWidget(self.smooth_label)
        self.info_label = QtWidgets.QLabel("")
        self.info_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.info_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(self.info_label, 1)
        layout.addLayout(bar)

        self.tabs = QtWidgets.QTabWidget()
        g = self.groups
        if len(session.runs) <= 2:
            first = [[g["loss"], g["metric"]], [g["grad-flow"], g["grad-heatmap"]]]
        else:   # a heatmap per run needs the whole width
            first = [[g["loss"], g["metric"], g["grad-flow"]], [(g["grad-heatmap"], 3)]]
        self.tabs.addTab(self._grid(first), "Loss && gradient flow")
        self.tabs.addTab(self._grid([[g["gates"]]]), "Inside the cells")
        self.tabs.addTab(self._grid([[g["saturation"]], [g["param-grads"]]]), "Saturation && parameter gradients")
        self.tabs.addTab(self._grid([[g["saliency"], g["saliency-heatmap"]]] if len(session.runs) <= 2 else
                                    [[g["saliency"]], [g["saliency-heatmap"]]]), "Input saliency")
        self.tabs.addTab(self._grid([[g["spectrum"], g["weight-sigma"]], [(g["spectrum-heatmap"], 2)]]),
                         "Jacobian spectrum")
        self.tabs.addTab(self._grid([[g["card"]]]), "Run card")
        self.tabs.currentChanged.connect(self._on_inner_tab)
        layout.addWidget(self.tabs, 1)

        probe_bar = QtWidgets.QHBoxLayout()
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setText("▶")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("play through the probe snapshots")
        self.play_button.toggled.connect(self._on_play)
        probe_bar.addWidget(self.play_button)
        probe_bar.addWidget(QtWidgets.QLabel("probe"))
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("scrub through the probe snapshots: gate heatmaps and gradient flow at that step")
        self.slider.valueChanged.connect(self._on_slider)
        probe_bar.addWidget(self.slider, 1)
        self.probe_label = QtWidgets.QLabel("no probe yet")
        self.probe_label.setMinimumWidth(150)
        probe_bar.addWidget(self.probe_label)
        layout.addLayout(probe_bar)

        # widgets updated while training paint their own background, so an update does not repaint
        # the tab widgets beneath them too
        for w in (self.info_label, self.probe_label, self.slider):
            w.setAutoFillBackground(True)

        self._play_timer = QtCore.QTimer(self)
        self._play_timer.setInterval(150)
        self._play_timer.timeout.connect(self._play_tick)
        for grp in self.groups.values():
            grp.export_handler = self._export

    # -- layout helpers --------------------------------------------------------------------------
    @staticmethod
    def _grid(rows) -> QtWidgets.QWidget:
        """A widget laying ``rows`` of plot groups out in a grid; an item ``(group, n)`` spans n columns."""
        w = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(w)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        for r, row in enumerate(rows):
            c = 0
            for item in row:
                item, span = item if isinstance(item, tuple) else (item, 1)
                grid.addWidget(item, r, c, 1, span)
                c += span
        return w

    def _export(self, name: str, fmt: str) -> None:
        if self.export_handler is not None:
            self.export_handler(self, name, fmt)

    # -- state -----------------------------------------------------------------------------------
    @property
    def runs(self) -> list:
        return self.session.runs

    def reference_steps(self) -> np.ndarray:
        """Probe steps of the run with the most probes (the slider's positions)."""
        best = np.empty(0, np.int64)
        for run in self.runs:
            s = np.asarray(run.probe_steps)
            if s.shape[0] > best.shape[0]:
                best = s
        return best

    def _selection(self) -> dict[str, tuple[int, int] | None]:
        """Per run: (index, step) of the probe at the slider's step (the newest at or before it), or None."""
        ref = self.reference_steps()
        if ref.shape[0] == 0:
            return {r.name: None for r in self.runs}
        target = int(ref[min(self.slider.value(), ref.shape[0] - 1)])
        out: dict[str, tuple[int, int] | None] = {}
        for run in self.runs:
            steps = np.asarray(run.probe_steps)
            if steps.shape[0] == 0:
                out[run.name] = None
                continue
            i = max(int(np.searchsorted(steps, target, side="right")) - 1, 0)
            out[run.name] = (i, int(steps[i]))
        return out

    def selected_probes(self) -> dict[str, dict | None]:
        """Per run: the probe at the slider's step (the newest at or before it), or None."""
        runs = {r.name: r for r in self.runs}
        return {name: None if sel is None else runs[name].probe(sel[0]) for name, sel in self._selection().items()}

    def _data_key(self):
        return tuple((r.name, len(r), int(np.asarray(r.probe_steps).shape[0]), r.status) for r in self.runs)

    # -- slots -----------------------------------------------------------------------------------
    def _on_log(self, on: bool) -> None:
        self.settings["log"] = bool(on)
        self.refresh(force=True)

    def _on_smoothing(self, v: int) -> None:
        self.settings["smoothing"] = v / 100.0
        self.smooth_label.setText(f"{v / 100:.2f}")
        self.refresh(force=True)

    def _on_slider(self, v: int) -> None:
        self._follow_latest = v >= self.slider.maximum()
        self.refresh_probes()
        self.probe_changed.emit(v)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_info()          # elide the status line anew to the width it now has

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._stale = True

    def _on_inner_tab(self, _index: int) -> None:
        self._stale = True          # the groups now shown may have skipped frames while hidden
        self.refresh()

    def _on_play(self, on: bool) -> None:
        self.play_button.setText("⏸" if on else "▶")
        if on:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self._play_timer.start()
        else:
            self._play_timer.stop()

    def _play_tick(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play_button.setChecked(False)
        else:
            self.slider.setValue(self.slider.value() + 1)

    # -- drawing ---------------------------------------------------------------------------------
    def refresh(self, force: bool = False, max_groups: int | None = None) -> bool:
        """Redraw what changed since the last call; returns True when something was drawn.

        A frame redraws only the groups on screen whose data changed (hidden ones catch up
        when their tab is shown); ``max_groups`` caps how many it draws (the others follow
        on the next frames, round-robin), so one frame never holds the event loop long.
        ``force`` redraws every group, shown or not.
        """
        if self.follow_file:
            import time

            now = time.monotonic()
            if now - self._last_file_refresh > 1.0:
                self._last_file_refresh = now
                self.session.refresh()
                if not getattr(self.session, "live", False):
                    self.follow_file = False
                    self.following_ended.emit()
        key = self._data_key()
        if key != self._drawn_key or force:
            self._drawn_key = key
            self._stale = True
            n = self.reference_steps().shape[0]
            if n and (self.slider.maximum() != n - 1 or (self._follow_latest and self.slider.value() != n - 1)):
                self.slider.blockSignals(True)
                self.slider.setRange(0, n - 1)
                if self._follow_latest:
                    self.slider.setValue(n - 1)
                self.slider.blockSignals(False)
            self._update_info()
        if not self._stale:
            return False
        drew, pending = self._draw_groups(list(self.groups.values()), force=force, all_groups=force,
                                          max_groups=max_groups)
        self._stale = pending
        self._update_probe_label()
        return drew > 0

    def refresh_probes(self) -> None:
        """Redraw the probe plots (gradient flow, gates) for the slider's step, shown or not."""
        self._update_probe_label()
        self._draw_groups([g for g in self.groups.values() if g.uses_probes], all_groups=True)

    def draw_group(self, name: str) -> None:
        """Bring one group up to date now (before exporting it, say)."""
        self._draw_groups([self.groups[name]], all_groups=True)

    def _draw_groups(self, groups: list, force: bool = False, all_groups: bool = False,
                     max_groups: int | None = None) -> tuple[int, bool]:
        runs = self.runs
        selection = self._selection()
        steps_only = {n: None if sel is None else {"step": sel[1]} for n, sel in selection.items()}
        loaded: list = []

        def probes() -> dict:
            """The selected probes' arrays, read once and only when a probe plot redraws."""
            if not loaded:
                by_name = {r.name: r for r in runs}
                loaded.append({n: None if sel is None else by_name[n].probe(sel[0]) for n, sel in selection.items()})
            return loaded[0]

        n = len(groups)
        start = self._next_group % n if (max_groups is not None and n) else 0
        drew, pending = 0, False
        for k in range(n):
            grp = groups[(start + k) % n]
            if not (all_groups or grp.isVisible()):
                continue           # caught up when its tab is shown (see _on_inner_tab, showEvent)
            key = grp.data_key(runs, steps_only if grp.uses_probes else {}, self.settings)
            if not force and key is not None and key == grp.drawn_key:
                continue
            if max_groups is not None and drew >= max_groups:
                pending = True
                continue
            grp.draw(runs, probes() if grp.uses_probes else {}, self.settings)
            grp.drawn_key = key
            drew += 1
            if max_groups is not None:
                self._next_group = (start + k + 1) % n
        return drew, pending

    def _update_probe_label(self) -> None:
        ref = self.reference_steps()
        if ref.shape[0]:
            v = min(self.slider.value(), ref.shape[0] - 1)
            text = f"step {int(ref[v])}  ({v + 1}/{ref.shape[0]})"
            if self.probe_label.text() != text:
                self.probe_label.setText(text)

    def _update_info(self) -> None:
        parts = []
        for run in self.runs:
            init = getattr(run, "init", "default")
            extra = "".join(f", {v}" for v in getattr(run, "cell_options", {}).values() if v != "tanh")
            extra += f", init {init}" if init != "default" else ""
            parts.append(f"{cell_label(run)}: {run.status}, step {run.steps}, {run.param_count} params{extra}")
        text = "   ".join(parts)
        self.info_label.setToolTip(text)
        # elided to the room it has: a long line (three cells, their inits) must not widen the window
        width = max(50, self.info_label.width())
        self.info_label.setText(self.info_label.fontMetrics().elidedText(text, QtCore.Qt.TextElideMode.ElideRight,
                                                                         width))
