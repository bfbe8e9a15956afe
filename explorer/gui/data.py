"""Qt-free in-memory runs fed by trainer records, read like ``sessions.Run``.

The plots draw a live training run and a replayed session file through one
code path: both offer ``scalar(name)``, ``probe_steps``, ``probe(i)``,
``probe_series(name)`` and the run attributes (``cell``, ``baseline``, ...).
:class:`LiveSession` holds the :class:`LiveRun` of each cell and is fed, on the
GUI thread, with the batches of records the worker forwards.
"""
from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

from explorer.training import PARAM_GRAD_NAMES, ProbeRecord, RunInfo, SolvedRecord, StatusRecord, StepRecord

SCALARS = ("loss", "metric", "grad_norm", "wall_time") + tuple(f"grad_norm/{p}" for p in PARAM_GRAD_NAMES)
#: a live run keeps the (L, H) probe arrays (h, c, gates) of its newest probes up to this many bytes (at least
#: two probes); older ones are read back from the session file being written, which holds them all
PROBE_MEMORY_BYTES = 48 * 2**20
#: probes read back from the file kept at hand (scrubbing back and forth stays quick)
READ_BACK_CACHE = 4
BIG_ARRAYS = ("h", "gates", "c")


class _Growable:
    """An append-only float64/int64 column with amortised doubling."""

    def __init__(self, dtype, row_shape: tuple[int, ...] = ()):
        self.row = tuple(row_shape)
        self._a = np.empty((64,) + self.row, dtype=dtype)
        self.n = 0

    def append(self, value) -> None:
        if self.n == self._a.shape[0]:
            bigger = np.empty((2 * self.n,) + self._a.shape[1:], dtype=self._a.dtype)
            bigger[: self.n] = self._a[: self.n]
            self._a = bigger
        self._a[self.n] = value
        self.n += 1

    def view(self) -> np.ndarray:
        return self._a[: self.n]


def gate_names_of(info: RunInfo) -> tuple[str, ...]:
    """A run's gate names in row order (an LSTM's i, f, g, o when unnamed)."""
    if info.gate_names is not None:
        return tuple(info.gate_names)
    return ("i", "f", "g", "o") if info.n_gates == 4 else tuple(f"gate{k}" for k in range(info.n_gates))


class LiveRun:
    """One cell's run as it trains; the read API mirrors :class:`sessions.Run`."""

    def __init__(self, info: RunInfo, config: dict[str, Any], session: "LiveSession | None" = None):
        self.name = info.cell
        self._session = session
        self._held: collections.deque = collections.deque()   # probes whose (L, H) arrays are in memory, oldest first
        self._held_bytes = 0
        self._read_cache: dict[int, dict] = {}                  # probe index -> arrays read back from the file
        self.cell = info.cell
        self.config = dict(config)
        self.param_count = info.param_count
        self.length = info.length
        self.hidden = info.hidden
        self.n_gates = info.n_gates
        self.gate_names = gate_names_of(info)
        self.has_cell_state = bool(info.n_gates == 4 if info.cell_state is None else info.cell_state)
        self.init = info.init
        self.cell_options = dict(info.options)
        self.probe_input = info.probe_input
        self.metric_name = info.metric_name
        self.higher_is_better = info.higher_is_better
        self.baseline = {"loss": float(info.baseline_loss), "metric": float(info.baseline_metric)}
        self.status = "running"
        self.message = ""
        self.params = None
        #: ``{"step", "sequences"}`` once the task's stop rule held (as ``sessions.Run.solved_at``)
        self.solved_at: dict[str, int] | None = None
        self.scalar_names = list(SCALARS)
        self._step = _Growable(np.int64)
        self._time = _Growable(np.float64)
        self._values = _Growable(np.float64, (len(SCALARS),))
        self._probes: list[dict[str, Any]] = []
        self._probe_step = _Growable(np.int64)
        n_states = 1 + self.has_cell_state
        #: the small per-probe arrays, kept for every probe (the heatmaps over training read them whole)
        self._small = {"grad_norm_t": _Growable(np.float32, (info.length,)),
                       "saliency": _Growable(np.float32, (info.length,)),
                       "spectrum": _Growable(np.float32, (info.length, n_states)),
                       "weight_sigma": _Growable(np.float32, (1 + info.n_gates,))}
        if info.n_gates:
            self._small["saturation"] = _Growable(np.float32, (info.n_gates,))
        bounds = info.weight_sigma_bounds
        self.weight_sigma_bounds = np.full(1 + info.n_gates, np.nan) if bounds is None else np.asarray(bounds, float)
        self.weight_sigma_names = ("W_hh",) + tuple(f"W_h{g}" for g in self.gate_names)

    # -- feeding -------------------------------------------------------------------------------
    def add(self, rec) -> None:
        if isinstance(rec, StepRecord):
            self._step.append(rec.step)
            self._time.append(rec.wall_time)
            row = [rec.loss, rec.metric, rec.grad_norm, rec.wall_time]
            row += [rec.param_grad_norms.get(p, math.nan) for p in PARAM_GRAD_NAMES]
            self._values.append(row)
        elif isinstance(rec, ProbeRecord):
            time = float(self._time.view()[-1]) if self._time.n else 0.0
            probe = {"step": int(rec.step), "time": time, "h": rec.h, "gates": rec.gates, "c": rec.c,
                     "saturation": rec.saturation}
            for name, grow in self._small.items():      # a probe without one (no spectrum): NaN, as in the file
                value = getattr(rec, name)
                probe[name] = np.full(grow.row, np.nan, np.float32) if value is None else value
                grow.append(probe[name])
            self._probes.append(probe)
            self._probe_step.append(rec.step)
            self._evict()
        elif isinstance(rec, StatusRecord):
            self.status, self.message = rec.status, rec.message
        elif isinstance(rec, SolvedRecord):
            self.solved_at = {"step": int(rec.step), "sequences": int(rec.sequences)}

    # -- reading (same names as sessions.Run) --------------------------------------------------
    def __len__(self) -> int:
        return self._step.n

    n_rows = property(__len__)

    @property
    def steps(self) -> int:
        return int(self._step.view()[-1]) if self._step.n else 0

    def scalar(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            j = SCALARS.index(name)
        except ValueError:
            raise KeyError(f"run {self.name!r} has no scalar series {name!r} (has: {', '.join(SCALARS)})") from None
        return self._step.view(), self._time.view(), self._values.view()[:, j]

    @property
    def n_probes(self) -> int:
        return len(self._probes)

    @property
    def probe_steps(self) -> np.ndarray:
        return self._probe_step.view()

    def _evict(self) -> None:
        """Drop the (L, H) arrays of the oldest probes held beyond :data:`PROBE_MEMORY_BYTES` (keeping two):
        the window's memory stays bounded however long the run; :meth:`probe` reads those back."""
        p = self._probes[-1]
        self._held.append(p)
        self._held_bytes += sum(p[k].nbytes for k in BIG_ARRAYS if p[k] is not None)
        while len(self._held) > 2 and self._held_bytes > PROBE_MEMORY_BYTES:
            old = self._held.popleft()
            self._held_bytes -= sum(old[k].nbytes for k in BIG_ARRAYS if old[k] is not None)
            old.update(h=None, gates=None, c=None)

    def probe(self, i: int) -> dict[str, Any]:
        """Probe ``i`` as ``sessions.Run.probe`` gives it; an older probe's (L, H) arrays come back from the
        session file (None for them in the moment before the writer flushed it)."""
        p = dict(self._probes[i])
        if p["h"] is None:          # every probe has h: None means its arrays were dropped
            p.update(self._read_back(i % len(self._probes)))
        return p

    def _read_back(self, i: int) -> dict[str, Any]:
        """h, gates and c of probe ``i`` from the session file being written (a small LRU cache)."""
        cache = self._read_cache
        if i in cache:
            cache[i] = cache.pop(i)          # most recently used last
            return cache[i]
        run = self._session.recorded_run(self.name) if self._session is not None else None
        arrays = dict.fromkeys(BIG_ARRAYS)
        if run is not None and i < run.n_probes:
            stored = run.probe(i)
            arrays = {k: stored[k] for k in BIG_ARRAYS}
            cache[i] = arrays
            while len(cache) > READ_BACK_CACHE:
                cache.pop(next(iter(cache)))
        return arrays

    def probe_series(self, name: str) -> np.ndarray:
        if name in self._small:
            return self._small[name].view()
        if name == "saturation":
            raise KeyError(f"run {self.name!r} ({self.cell}) has no probe array 'saturation'")
        if name == "step":
            return self._probe_step.view()
        if name in BIG_ARRAYS:
            if (name == "gates" and not self.n_gates) or (name == "c" and not self.has_cell_state):
                raise KeyError(f"run {self.name!r} ({self.cell}) has no probe array {name!r}")
            return np.stack([self.probe(i)[name] for i in range(len(self._probes))]) if self._probes \
                else np.empty((0,))
        raise KeyError(f"unknown probe array {name!r}")


class LiveSession:
    """The runs of a training in progress, plus the session file it is recorded to."""

    live = True

    def __init__(self, runs: list[RunInfo], config: dict[str, Any], path: str | None = None):
        self.path = path
        self._runs = {info.cell: LiveRun(info, config, self) for info in runs}
        self._recorded = None        # sessions.Session of the file being written, opened on first need
        #: bumped on every fed batch so views redraw only when something changed
        self.version = 0

    @property
    def run_names(self) -> list[str]:
        return list(self._runs)

    @property
    def runs(self) -> list[LiveRun]:
        return list(self._runs.values())

    def run(self, name: str) -> LiveRun:
        return self._runs[name]

    def feed(self, records) -> None:
        for rec in records:
            run = self._runs.get(rec.cell)
            if run is not None:
                run.add(rec)
        self.version += 1

    def refresh(self) -> None:  # the same API as sessions.Session
        pass

    def recorded_run(self, name: str):
        """Run ``name`` of the session file as written so far (refreshed), or None when it cannot be read."""
        from sessions import SessionError, open_session

        try:
            if self._recorded is None:
                self._recorded = open_session(self.path)
            else:
                self._recorded.refresh()
            return self._recorded.run(name)
        except (SessionError, OSError, KeyError, TypeError):
            return None

    def close(self) -> None:
        """Close the file read back for older probes (the data stay in memory)."""
        recorded, self._recorded = self._recorded, None
        if recorded is not None:
            recorded.close()
