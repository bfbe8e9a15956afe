"""The settings panel: widgets -> a validated :class:`~explorer.config.TrainConfig`.

Validation is :meth:`TrainConfig.validate`; its message (which names the field)
is shown in the panel, and Run is disabled until the values are valid.
"""
from __future__ import annotations

import dataclasses
import math
import os

from PySide6 import QtCore, QtWidgets

from explorer.errors import ConfigError
from explorer.config import TrainConfig

#: first-click defaults: TrainConfig's own (the adding problem at T = 100, where the RNN stays at chance and
#: the LSTM learns), the same as ``lstm-explorer train`` with no options
GUI_DEFAULTS = TrainConfig()


#: the optimizers offered in the panel's list (any other smoothing constant can be typed: "rmsprop:0.95")
OPTIMIZER_CHOICES = ("adam", "sgd", "rmsprop", "rmsprop:0.9")

#: the initialisations offered in the panel's list (any other string can be typed)
INIT_CHOICES = ("default", "orthogonal", "identity", "forget-bias:1", "chrono", "orthogonal+forget-bias:1",
                "rnn=identity")


def cuda_unavailable_reason() -> str | None:
    """None when the CUDA backend is usable, else why not (shown as the disabled option's tooltip)."""
    import kernels

    try:
        kernels.backend("cuda")
    except kernels.BackendUnavailable as exc:
        return str(exc)
    except Exception as exc:  # a broken driver must not stop the window from opening
        return f"{type(exc).__name__}: {exc}"
    return None


def default_data_dir() -> str:
    """Per-user folder for session files: $LSTM_EXPLORER_DATA_DIR, else Qt's AppDataLocation."""
    env = os.environ.get("LSTM_EXPLORER_DATA_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    if not base:
        base = os.path.join(os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")), "lstm-explorer")
    return os.path.join(base, "sessions") if base.rstrip("/").endswith("lstm-explorer") else base


class SettingsPanel(QtWidgets.QWidget):
    """Form with every training setting; emits ``changed(valid)`` on every edit."""

    changed = QtCore.Signal(bool)

    def __init__(self, parent=None, cuda_reason: str | None = "not checked"):
        super().__init__(parent)
        self.cuda_reason = cuda_reason
        form = QtWidgets.QFormLayout(self)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        from explorer.tasks import TASKS

        self.task = QtWidgets.QComboBox()
        for name in TASKS:
            self.task.addItem(name)
        self.task.setToolTip("adding: sum the two marked numbers; copy: recall a sequence after a delay; "
                             "temporal: classify the order of two symbols")
        form.addRow("task", self.task)
        self.seq_len = self._spin(1, 100_000, "lag T: the distance the information must be carried")
        form.addRow("lag T", self.seq_len)
        from kernels import cells as registry

        cells = QtWidgets.QHBoxLayout()
        #: one box per registered cell, in registry order (RNN, LSTM, GRU, ...)
        self.cell_boxes: dict[str, QtWidgets.QCheckBox] = {}
        for spec in registry.specs():
            box = QtWidgets.QCheckBox(spec.label)
            box.setToolTip(spec.equation)
            box.setStyleSheet(f"QCheckBox {{ color: {spec.color}; font-weight: bold }}")
            self.cell_boxes[spec.name] = box
            cells.addWidget(box)
        cells.addStretch(1)
        form.addRow("cells", cells)
        self.hidden = self._spin(1, 4096, "hidden units H")
        form.addRow("hidden size", self.hidden)
        self.batch = self._spin(1, 65536, "sequences per training step")
        form.addRow("batch", self.batch)
        self.optimizer = QtWidgets.QComboBox()
        self.optimizer.setEditable(True)
        self.optimizer.addItems(OPTIMIZER_CHOICES)
        self.optimizer.setToolTip("adam, sgd (momentum 0.9) or rmsprop[:alpha] (alpha: the smoothing "
                                  "constant, 0.99 unless given; 0.9 in Arjovsky et al. and Tallec & Ollivier)")
        form.addRow("optimizer", self.optimizer)
        self.lr = QtWidgets.QLineEdit()
        self.lr.setToolTip("learning rate, e.g. 1e-2")
        form.addRow("learning rate", self.lr)
        self.lr_schedule = QtWidgets.QLineEdit()
        self.lr_schedule.setPlaceholderText("none, e.g. 2000:1e-3")
        self.lr_schedule.setToolTip("later learning rates, STEP:LR[,STEP:LR...], each from its step on; "
                                    "empty: the learning rate throughout")
        form.addRow("later rates", self.lr_schedule)
        self.clip = QtWidgets.QLineEdit()
        self.clip.setToolTip("clip gradients to this global L2 norm; 0 disables")
        form.addRow("clip norm", self.clip)
        self.steps = self._spin(1, 100_000_000, "training steps per cell (with 'until solved': at most)")
        self.until_solved = QtWidgets.QCheckBox("until solved")
        self.until_solved.setToolTip("stop each cell when its task's stop rule holds (the loss plot marks the step); "
                                     "the steps are then the cap")
        steps = QtWidgets.QHBoxLayout()
        steps.addWidget(self.steps, 1)
        steps.addWidget(self.until_solved)
        form.addRow("steps", steps)
        self.seed = self._spin(0, 2**31 - 1, "seeds the weights, the batches and the probe sequence")
        form.addRow("seed", self.seed)
        self.init = QtWidgets.QComboBox()
        self.init.setEditable(True)
        self.init.addItems(INIT_CHOICES)
        self.init.setToolTip("initialisation of the recurrent weights and biases; editable: "
                             "default | orthogonal[:gain] | identity[:s], +forget-bias[:b] or +chrono[:T_max]; "
                             "per cell: lstm=chrono,rnn=identity")
        form.addRow("initialisation", self.init)
        self.rnn_activation = QtWidgets.QComboBox()
        self.rnn_activation.addItems(["tanh", "relu"])
        self.rnn_activation.setToolTip("the RNN's nonlinearity; relu with identity init is the IRNN (Le et al. 2015)")
        form.addRow("RNN activation", self.rnn_activation)
        self.probe_every = self._spin(0, 1_000_000, "take a probe snapshot (gates, gradient flow) every N steps; "
                                                    "auto: about 60 per run")
        self.probe_every.setSpecialValueText("auto")
        form.addRow("probe every", self.probe_every)
        self.backend = QtWidgets.QComboBox()
        self.backend.addItem("CPU", "cpu")
        self.backend.addItem("CUDA", "cuda")
        if cuda_reason:
            item = self.backend.model().item(1)
            item.setEnabled(False)
            item.setToolTip(f"CUDA unavailable: {cuda_reason}")
            self.backend.setItemText(1, "CUDA (unavailable)")
            self.backend.setToolTip(f"CUDA unavailable: {cuda_reason}")
        form.addRow("backend", self.backend)
        short = (cuda_reason or "").split(":")[0][:70]
        self.cuda_note = QtWidgets.QLabel(f"CUDA unavailable: {short} (hover for details)" if cuda_reason else "")
        self.cuda_note.setToolTip(cuda_reason or "")
        self.cuda_note.setWordWrap(True)
        self.cuda_note.setStyleSheet("color: #777; font-size: 9pt")
        if cuda_reason:
            form.addRow(self.cuda_note)
        folder = QtWidgets.QHBoxLayout()
        self.data_dir = QtWidgets.QLineEdit(default_data_dir())
        self.data_dir.setToolTip("every run is recorded to a session file in this folder")
        browse = QtWidgets.QToolButton()
        browse.setText("…")
        browse.setToolTip("choose the folder session files are written to")
        browse.clicked.connect(self._browse)
        folder.addWidget(self.data_dir, 1)
        folder.addWidget(browse)
        form.addRow("session folder", folder)
        self.error = QtWidgets.QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020")
        form.addRow(self.error)

        self.set_config(GUI_DEFAULTS)
        for w in (self.task, self.backend, self.rnn_activation):
            w.currentIndexChanged.connect(self._emit)
        for w in (self.init, self.optimizer):
            w.currentTextChanged.connect(self._emit)
        for w in (self.seq_len, self.hidden, self.batch, self.steps, self.seed, self.probe_every):
            w.valueChanged.connect(self._emit)
        for w in (self.lr, self.lr_schedule, self.clip, self.data_dir):
            w.textChanged.connect(self._emit)
        for w in (*self.cell_boxes.values(), self.until_solved):
            w.toggled.connect(self._emit)
        self._emit()

    @staticmethod
    def _spin(lo: int, hi: int, tip: str) -> QtWidgets.QSpinBox:
        s = QtWidgets.QSpinBox()
        s.setRange(lo, hi)
        s.setToolTip(tip)
        s.setKeyboardTracking(True)
        return s

    def _browse(self) -> None:
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Session folder", self.data_dir.text())
        if d:
            self.data_dir.setText(d)

    # -- config <-> widgets ----------------------------------------------------------------------
    def set_config(self, cfg: TrainConfig) -> None:
        """Show ``cfg``; the fields the panel has no widget for (test set, dtype, ...) are kept as they are."""
        self._base = cfg
        self.task.setCurrentText(cfg.task)
        self.seq_len.setValue(cfg.seq_len)
        for name, box in self.cell_boxes.items():
            box.setChecked(name in cfg.cells)
        self.init.setCurrentText(cfg.init)
        self.rnn_activation.setCurrentText(cfg.rnn_activation)
        self.hidden.setValue(cfg.hidden)
        self.batch.setValue(cfg.batch)
        self.optimizer.setCurrentText(cfg.optimizer)
        self.lr.setText(f"{cfg.lr:g}")
        self.lr_schedule.setText(cfg.lr_schedule)
        self.clip.setText(f"{cfg.clip:g}")
        self.steps.setValue(cfg.steps)
        self.until_solved.setChecked(cfg.until_solved)
        self.seed.setValue(cfg.seed)
        self.probe_every.setValue(cfg.probe_every)
        self.backend.setCurrentIndex(max(0, self.backend.findData(cfg.backend)))

    @staticmethod
    def _number(text: str, field: str) -> float:
        try:
            v = float(text.strip())
        except ValueError:
            raise ConfigError(f"{field} must be a number, got {text.strip()!r}") from None
        if not math.isfinite(v):
            raise ConfigError(f"{field} must be a finite number, got {text.strip()!r}")
        return v

    def config(self) -> TrainConfig:
        """The validated config; raises :class:`ConfigError` naming the bad field."""
        cells = tuple(c for c, box in self.cell_boxes.items() if box.isChecked())
        if not cells:
            raise ConfigError(f"cells: tick one or more of {', '.join(b.text() for b in self.cell_boxes.values())}")
        if self.backend.currentData() == "cuda" and self.cuda_reason:
            raise ConfigError(f"backend: CUDA is unavailable: {self.cuda_reason}")
        cfg = dataclasses.replace(
            self._base, task=self.task.currentText(), seq_len=self.seq_len.value(), cells=cells,
            hidden=self.hidden.value(), batch=self.batch.value(), steps=self.steps.value(),
            until_solved=self.until_solved.isChecked(), optimizer=self.optimizer.currentText().strip(),
            lr=self._number(self.lr.text(), "learning rate"), lr_schedule=self.lr_schedule.text().strip(),
            clip=self._number(self.clip.text(), "clip norm"),
            seed=self.seed.value(), backend=self.backend.currentData(), probe_every=self.probe_every.value(),
            init=self.init.currentText().strip(), rnn_activation=self.rnn_activation.currentText())
        return cfg.validate()

    def folder(self) -> str:
        return os.path.abspath(os.path.expanduser(self.data_dir.text().strip() or default_data_dir()))

    def validate(self) -> str | None:
        """None when valid, else the reason (also shown in the panel)."""
        try:
            self.config()
        except ConfigError as exc:
            self.error.setText(f"⚠ {exc}")
            return str(exc)
        self.error.setText("")
        return None

    def _emit(self, *_):
        self.changed.emit(self.validate() is None)
