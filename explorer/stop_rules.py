"""Stop rules for ``--until-solved``: when a run counts as solved, decided step by step.

:class:`MetricStopRule` holds a task's solved threshold on the running mean of its metric;
:class:`PaperStopRule` is Hochreiter & Schmidhuber's (1997) rule for the ``-hs97`` tasks. A task
picks its rule (:meth:`explorer.tasks.Task.stop_rule`); a rule's state goes into checkpoints.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from explorer.tasks import Task

#: the stop rules look at this many most recent training sequences (H&S 1997: "the 2000 most recent")
STOP_WINDOW = 2000


class StopRule:
    """Decides, step by step, when a run counts as solved (``--until-solved``).

    Feed it every training step's readout outputs and targets with :meth:`update`; it returns
    True from the first step at which the rule holds over the ``window`` most recent training
    sequences (never before ``window`` sequences were seen).
    """

    def __init__(self, task: Task, window: int = STOP_WINDOW):
        self.task, self.window = task, int(window)
        self.seen = 0                  # training sequences seen so far

    def update(self, out: np.ndarray, y: np.ndarray) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Everything :meth:`update` has seen, as arrays (a checkpoint): ``seen`` and the ring buffers."""
        rings = {k.lstrip("_"): v.copy() for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return {"seen": np.int64(self.seen), **rings}

    def load_state(self, state: dict) -> None:
        """Continue from :meth:`state`'s result."""
        self.seen = int(state["seen"])
        for k, v in vars(self).items():
            if isinstance(v, np.ndarray):
                v[:] = np.asarray(state[k.lstrip("_")], dtype=v.dtype)

    def _push(self, ring: np.ndarray, values: np.ndarray) -> None:
        """Append ``values`` to the ring buffer ``ring`` (size ``window``), position from ``seen``."""
        values = values[-self.window:]
        idx = (self.seen + np.arange(values.size)) % self.window
        ring[idx] = values


class MetricStopRule(StopRule):
    """The task's solved threshold on the running mean of its metric over the last ``window``
    sequences (each step's batch metric counts once per sequence of the batch)."""

    def __init__(self, task: Task, window: int = STOP_WINDOW):
        super().__init__(task, window)
        self._ring = np.zeros(self.window, dtype=np.float64)

    def update(self, out, y) -> bool:
        n = int(np.shape(y)[-1])
        self._push(self._ring, np.full(n, self.task.metric(out, y), dtype=np.float64))
        self.seen += n
        return self.seen >= self.window and self.task.solved(math.nan, float(self._ring.mean()))

    def describe(self) -> str:
        t = self.task
        cmp = ">=" if t.higher_is_better else "<"
        return f"mean {t.metric_name} over the last {self.window:,} training sequences {cmp} {t.solved_threshold:g}"


class PaperStopRule(StopRule):
    """Hochreiter & Schmidhuber (1997): the average training error over the last ``window``
    sequences below the task's ``error_threshold`` and every one of them correct."""

    def __init__(self, task: Task, window: int = STOP_WINDOW):
        super().__init__(task, window)
        self._ok = np.zeros(self.window, dtype=bool)
        self._err = np.zeros(self.window, dtype=np.float64)

    def update(self, out, y) -> bool:
        ok = np.asarray(self.task.correct(out, y), dtype=bool).ravel()
        self._push(self._ok, ok)
        self._push(self._err, np.asarray(self.task.sequence_error(out, y), dtype=np.float64).ravel())
        self.seen += ok.size
        return (self.seen >= self.window and bool(self._ok.all())
                and float(self._err.mean()) < self.task.error_threshold)

    def describe(self) -> str:
        t = self.task
        return (f"average training error < {t.error_threshold:g} and the last {self.window:,} training "
                f"sequences all correct ({t.sequence_rule})")
