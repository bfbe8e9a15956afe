"""A training run's configuration: :class:`TrainConfig`, every field validated with a message naming it.

One config defines a run of every cell it lists (the same batches, seed and sizes); session files keep it
as JSON (:meth:`TrainConfig.to_dict`), so ``train --from FILE`` and ``--resume`` repeat it exactly.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from explorer.errors import ConfigError


def cell_names() -> tuple[str, ...]:
    """The registered cells (kernels.cells), in registry order: rnn, lstm, gru, then any added."""
    from kernels import cells

    return cells.names()


#: probes per run when ``probe_every`` is 0 (auto)
AUTO_PROBES = 60


@dataclass
class TrainConfig:
    """Everything that defines a training run (all cells share it)."""

    task: str = "adding"            # "adding" | "copy" | "temporal" | "adding-hs97" | "temporal-hs97" (explorer.tasks.TASKS)
    seq_len: int = 100              # the lag T the task is built around
    cells: tuple[str, ...] = ("rnn", "lstm")  # cells trained side by side on the same batches (kernels.cells)
    hidden: int = 64                # hidden units H
    batch: int = 32                 # sequences per training step B
    steps: int = 3000               # training steps per cell
    optimizer: str = "adam"         # "adam" | "sgd" (SGD with momentum) | "rmsprop[:alpha]" (kernels.optim)
    lr: float = 1e-2                # learning rate (Adam at 1e-2 solves the default adding run with the LSTM)
    lr_schedule: str = ""           # later rates, "STEP:LR[,STEP:LR...]": LR from step STEP on ("" = lr throughout)
    momentum: float = 0.9           # SGD momentum (ignored by Adam)
    clip: float = 1.0               # clip gradients to this global L2 norm; 0 disables
    seed: int = 0                   # seeds weights, batches and the probe sequence
    backend: str = "cpu"            # "cpu" | "cuda"
    probe_every: int = 0            # probe snapshot interval in steps; 0 = auto (see probe_interval)
    dtype: str = "float32"          # "float32" | "float64"
    init: str = "default"           # initialisation, e.g. "chrono", "orthogonal+forget-bias:1" (kernels.inits)
    rnn_activation: str = "tanh"    # the RNN's nonlinearity: "tanh" | "relu" (relu + identity init: the IRNN)
    until_solved: bool = False      # stop each cell when its task's stop rule holds; ``steps`` is then the cap
    test_size: int = 2560           # held-out test sequences evaluated at the end of each run (0: none)
    test_every: int = 0             # also evaluate the test set every this many steps (0: only at the end)

    def __post_init__(self):
        if isinstance(self.cells, str):
            self.cells = tuple(c.strip() for c in self.cells.split(",") if c.strip())
        else:
            self.cells = tuple(self.cells)

    def validate(self) -> "TrainConfig":
        """Raise :class:`ConfigError` naming the first invalid field and its allowed range."""
        from explorer.tasks import TASKS
        from kernels import BACKENDS

        def need(ok: bool, message: str):
            if not ok:
                raise ConfigError(message)

        def is_int(v) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_real(v) -> bool:
            return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)

        need(self.task in TASKS, f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        need(is_int(self.seq_len) and 1 <= self.seq_len <= 100_000,
             f"seq-len must be an integer from 1 to 100000, got {self.seq_len!r}")
        if self.task == "adding":
            need(self.seq_len >= 2, f"the adding problem needs seq-len >= 2 (one marker per half), got {self.seq_len}")
        if self.task == "temporal":
            need(self.seq_len >= 10, f"the temporal order task needs seq-len >= 10, got {self.seq_len}")
        from explorer.tasks import make_task

        make_task(self.task, self.seq_len)     # every task's own minimum (ConfigError naming it)
        names = cell_names()
        need(len(self.cells) > 0, f"cells is empty: give one or more of {', '.join(names)}, e.g. rnn,lstm")
        for cell in self.cells:
            need(cell in names, f"unknown cell {cell!r}: choose from {', '.join(names)}")
        need(len(set(self.cells)) == len(self.cells), f"cells repeat: {','.join(self.cells)}")
        need(is_int(self.hidden) and 1 <= self.hidden <= 4096,
             f"hidden must be an integer from 1 to 4096, got {self.hidden!r}")
        need(is_int(self.batch) and 1 <= self.batch <= 65536,
             f"batch must be an integer from 1 to 65536, got {self.batch!r}")
        need(is_int(self.steps) and 1 <= self.steps <= 100_000_000,
             f"steps must be a positive integer, got {self.steps!r}")
        need(isinstance(self.optimizer, str), f"optimizer must be a name, got {self.optimizer!r}")
        _check_optimizer(self.optimizer)
        need(is_real(self.lr) and math.isfinite(self.lr) and 0 < self.lr <= 10,
             f"lr must be a number in (0, 10], got {self.lr!r}")
        self.lr_changes()
        need(is_real(self.momentum) and 0 <= self.momentum < 1,
             f"momentum must be in [0, 1), got {self.momentum!r}")
        need(is_real(self.clip) and math.isfinite(self.clip) and self.clip >= 0,
             f"clip must be a number >= 0 (0 disables clipping), got {self.clip!r}")
        need(is_int(self.seed) and 0 <= self.seed < 2**32,
             f"seed must be an integer from 0 to 2**32-1, got {self.seed!r}")
        need(self.backend in BACKENDS,
             f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        need(is_int(self.probe_every) and self.probe_every >= 0,
             f"probe-every must be a positive integer (or 0 for auto), got {self.probe_every!r}")
        need(self.dtype in ("float32", "float64"), f"dtype must be float32 or float64, got {self.dtype!r}")
        need(self.rnn_activation in ("tanh", "relu"),
             f"rnn-activation must be tanh or relu, got {self.rnn_activation!r}")
        need(isinstance(self.until_solved, (bool, np.bool_)),
             f"until-solved must be true or false, got {self.until_solved!r}")
        need(is_int(self.test_size) and 0 <= self.test_size <= 1_000_000,
             f"test-size must be an integer from 0 to 1000000 (0: no test set), got {self.test_size!r}")
        need(is_int(self.test_every) and self.test_every >= 0,
             f"test-every must be an integer >= 0 (0: only at the end), got {self.test_every!r}")
        self.init_spec()
        self.check_memory()
        return self

    def memory_bytes(self) -> int:
        """Memory a training step of this config holds, estimated from the cells' buffers at the task's
        longest sequence (:meth:`kernels.cells.CellSpec.workspace_floats`), every cell, plus the input batch
        and the probe sequence's copy. Measured against ``bench --memory``: within 1.5x above 10 MB."""
        from explorer.tasks import make_task
        from kernels import cells

        task = make_task(self.task, self.seq_len)
        L = task.lengths[1]
        floats = sum(cells.get(c).workspace_floats(L, self.batch, self.hidden, task.n_in) for c in self.cells)
        floats += 2 * L * self.batch * task.n_in
        return floats * np.dtype(self.dtype).itemsize

    def check_memory(self, available: int | None = None) -> None:
        """:class:`ConfigError` with the estimate when a training step of this config cannot fit in the
        memory this machine has free (``available`` bytes; default: MemAvailable, when the OS says)."""
        need_b = self.memory_bytes()
        have = available_memory() if available is None else available
        if have is not None and need_b > have:
            raise ConfigError(
                f"this configuration needs about {need_b / 2**30:,.1f} GiB to train (T={self.seq_len}, batch "
                f"{self.batch}, H={self.hidden}, cells {','.join(self.cells)}: every step keeps the states and gates "
                f"of the whole sequence for backpropagation through time) but this machine has "
                f"{have / 2**30:,.1f} GiB free: lower --seq-len, --batch or --hidden, or train fewer cells at once")

    def init_spec(self):
        """The parsed initialisation (:class:`kernels.inits.InitSpec`); :class:`ConfigError` naming the problem.
        A per-cell item for a cell this run does not train is unused."""
        from kernels.errors import KernelInputError
        from kernels.inits import parse_init

        try:
            spec = parse_init(self.init)
            for cell in self.cells:
                spec.for_cell(cell)
        except KernelInputError as exc:
            raise ConfigError(f"init: {exc}") from None
        return spec

    def lr_changes(self) -> tuple[tuple[int, float], ...]:
        """``lr_schedule`` parsed: ``((step, lr), ...)`` with rising steps; :class:`ConfigError` naming the
        problem."""
        return parse_lr_schedule(self.lr_schedule)

    def lr_at(self, step: int) -> float:
        """The learning rate of training step ``step`` (1-based): ``lr``, or the latest change at or before it."""
        rate = self.lr
        for start, value in self.lr_changes():
            if start > step:
                break
            rate = value
        return rate

    def cell_options(self, cell: str) -> dict:
        """The options of ``cell``'s kernels this config sets (the RNN's activation)."""
        from kernels import cells

        return {"activation": self.rnn_activation} if "activation" in dict(cells.get(cell).options) else {}

    @property
    def probe_interval(self) -> int:
        """Steps between probe snapshots: ``probe_every``, or with 0 (auto) about :data:`AUTO_PROBES`
        probes per run (every 50 steps of the default 3000), so a session's size does not grow with
        ``steps`` (T = 1000, H = 128, RNN + LSTM: ~100 MB of probes however long the run)."""
        return self.probe_every or max(1, round(self.steps / AUTO_PROBES))

    def to_dict(self) -> dict:
        """Plain JSON-able dict (cells as a list)."""
        d = dataclasses.asdict(self)
        d["cells"] = list(self.cells)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**d)


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux MemAvailable; the physical total elsewhere;
    None when the OS does not say)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def parse_lr_schedule(text) -> tuple[tuple[int, float], ...]:
    """``"160000:1e-4,200000:1e-5"`` -> ``((160000, 1e-4), (200000, 1e-5))``: each rate holds from its
    step on. Steps are integers >= 2 and rise; rates are numbers in (0, 10]. "" is no change."""
    if not isinstance(text, str):
        raise ConfigError(f"lr-schedule must be text such as 160000:1e-4, got {text!r}")
    return _parse_lr_schedule(text)


@functools.lru_cache(maxsize=32)
def _parse_lr_schedule(text: str) -> tuple[tuple[int, float], ...]:
    """:func:`parse_lr_schedule` of a string, parsed once (the trainer asks for the rate every step)."""
    changes: list[tuple[int, float]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        step_text, sep, rate_text = item.partition(":")
        try:
            step, rate = int(step_text), float(rate_text)
        except ValueError:
            step = rate = None
        if not sep or step is None or not math.isfinite(rate):
            raise ConfigError(f"lr-schedule: {item!r} is not STEP:LR (e.g. 160000:1e-4, the rate 1e-4 from "
                              f"step 160000 on)")
        if step < 2:
            raise ConfigError(f"lr-schedule: {item!r} starts at step {step}; the first step trains at --lr, "
                              f"a change starts at step 2 or later")
        if not 0 < rate <= 10:
            raise ConfigError(f"lr-schedule: {item!r} has the rate {rate:g}, outside (0, 10]")
        if changes and step <= changes[-1][0]:
            raise ConfigError(f"lr-schedule: the steps must rise, {item!r} comes after step {changes[-1][0]}")
        changes.append((step, rate))
    return tuple(changes)


def _check_optimizer(text: str) -> None:
    """A :class:`ConfigError` unless ``text`` names an optimizer (kernels.optim.parse_optimizer)."""
    from kernels.errors import KernelInputError
    from kernels.optim import parse_optimizer

    try:
        parse_optimizer(text)
    except KernelInputError as exc:
        raise ConfigError(str(exc)) from None
