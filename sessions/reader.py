"""Read session files: finished ones, and ones a live writer is still writing.

::

    with open_session("run.h5") as s:
        for run in s.runs:
            step, time, loss = run.scalar("loss")
            print(run.name, run.status, run.steps, run.final)
        s.refresh()            # pick up rows a live writer flushed since

Files are opened read-only in HDF5's SWMR-read mode, which also recovers the
flushed rows of a writer that was killed. Every problem with the file raises a
:class:`~sessions.errors.SessionError` subclass whose message names the file.
"""
from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

import h5py
import numpy as np

from sessions.errors import (
    H5_READ_ERRORS,
    DamagedFileError,
    NotASessionError,
    RunNotFoundError,
    SchemaError,
    SessionError,
    UnsupportedVersionError,
)
from sessions.h5file import _describe, check_file, open_h5, read_superblock  # noqa: F401 (re-exported)
from sessions.layout import (  # noqa: F401 (re-exported)
    PROBE_ARRAYS,
    _text,
    check_format,
    parse_version,
    series_names,
    structure_problems,
)
from sessions.liveness import writer_alive



class NoSuchSeriesError(KeyError):
    """A run has no scalar series or probe array of that name (a question, not damage)."""


class ProbeIndexError(IndexError):
    """A probe index out of range."""


def _reading(what: str):
    """Turn h5py's errors while reading into :class:`DamagedFileError` naming the file and ``what``
    (formatted with ``self`` and the call's ``args``)."""
    def wrap(fn):
        @functools.wraps(fn)
        def reader(self, *args, **kw):
            try:
                return fn(self, *args, **kw)
            except (SessionError, NoSuchSeriesError, ProbeIndexError):
                raise
            except H5_READ_ERRORS as exc:
                raise DamagedFileError(self._path, f"cannot read {what.format(self=self, args=args)}: "
                                                   f"{_describe(exc)}") from None
        return reader
    return wrap


def open_session(path) -> "Session":
    """Open a session file for reading (finished, or still being written).

    Raises
    ------
    SessionError
        A subclass naming the file and the problem: missing, a directory, no
        permission, empty, not HDF5, truncated/damaged, not a session, a newer
        major format version, or missing groups.
    """
    return Session(path)


# --------------------------------------------------------------------------- Session

class Session:
    """A session file opened for reading; see :func:`open_session`."""

    def __init__(self, path):
        self.path = self._path = os.fspath(path)
        self._alive_cache: bool | None = None
        self._file, self._swmr, short = open_h5(self.path)
        #: the file is shorter than its superblock says (writer died mid-flush, or a cut copy): rows whose
        #: chunks lie beyond the end are not returned; ``damaged`` says so in words
        self._size = os.path.getsize(self.path)
        self._caps: dict | None = {} if short else None
        self.damaged = (f"the file is shorter ({self._size} bytes) than its HDF5 header says: rows written "
                        "beyond its end are lost") if short else ""
        try:
            self.format_version, self._version = check_format(self._file, self.path)
            problems = structure_problems(self._file)
            if problems:
                more = f" (and {len(problems) - 1} more; `lstm-explorer info --check FILE` lists them all)" if len(problems) > 1 else ""
                raise SchemaError(self.path, f"not a complete session file: {problems[0]}{more}")
            a = self._file.attrs
            self.software_version = _text(a.get("software_version", ""))
            self.created = _text(a.get("created", ""))
            w = self._file["writer"]
            self._writer = dict(hostname=_text(w.attrs["hostname"]), pid=int(w.attrs["pid"]),
                                lock=_text(w.attrs["lock"]),
                                heartbeat_timeout_s=float(w.attrs["heartbeat_timeout_s"]))
            self._heartbeat = w["heartbeat"]
            self._closed_ds = w["closed"]
            runs = self._file["runs"]
            names = list(runs.keys())
            order = runs.attrs.get("order")
            if order is not None:
                try:
                    listed = [n for n in json.loads(_text(order)) if n in runs]
                    names = listed + [n for n in names if n not in listed]
                except (ValueError, TypeError):
                    pass
            self._runs = {n: Run(self, n, runs[n]) for n in names}
        except SessionError as exc:
            self.close()
            if short and not isinstance(exc, (NotASessionError, UnsupportedVersionError)):
                raise DamagedFileError(self.path, f"the file is truncated or was cut off while being written "
                                                  f"({exc.problem})") from None
            raise
        except Exception as exc:
            self.close()
            what = "truncated or was cut off while being written" if short else "damaged"
            raise DamagedFileError(self.path, f"the file is {what}: {_describe(exc)}") from None

    # ---------------------------------------------------------------- runs
    @property
    def run_names(self) -> list[str]:
        return list(self._runs)

    @property
    def runs(self) -> list["Run"]:
        return list(self._runs.values())

    def run(self, name: str) -> "Run":
        try:
            return self._runs[name]
        except KeyError:
            raise RunNotFoundError(self.path, f"no run named {name!r} (runs: {', '.join(self._runs) or 'none'})") from None

    def __iter__(self):
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self._runs)

    # ---------------------------------------------------------------- live following
    @property
    def swmr(self) -> bool:
        """True when opened in SWMR-read mode (refresh() sees new rows)."""
        return self._swmr

    @property
    @_reading("/writer/closed")
    def writer_closed(self) -> bool:
        """True once the writer closed the file normally."""
        return bool(self._closed_ds[()])

    @property
    @_reading("/writer/heartbeat")
    def heartbeat(self) -> float:
        """Unix time of the writer's last flush."""
        return float(self._heartbeat[()])

    @property
    def live(self) -> bool:
        """True while a writer process is still writing this file (the rule in SCHEMA.md)."""
        if self._alive_cache is None:
            self._alive_cache = writer_alive(self.path, closed=self.writer_closed, heartbeat=self.heartbeat,
                                             **self._writer)
        return self._alive_cache

    def refresh(self) -> None:
        """Pick up what a live writer flushed since opening (or the last refresh)."""
        self._alive_cache = None
        if not self._swmr or self._file is None:
            return
        try:
            self._heartbeat.refresh()
            self._closed_ds.refresh()
            for run in self._runs.values():
                run._refresh()
        except Exception as exc:
            raise DamagedFileError(self.path, f"cannot refresh from the file: {_describe(exc)}") from None

    @property
    @_reading("the checkpoint")
    def checkpoint(self) -> dict[str, Any] | None:
        """(1.5) The newest whole checkpoint: ``{"step", "time", "rng" (JSON text), "runs": {name: {array
        name: array}}}``; None when the file keeps none (older files, or a run stopped before its first).
        A checkpoint whose parts do not fit together is a :class:`DamagedFileError`."""
        ck = self._file.get("checkpoint")
        if not isinstance(ck, h5py.Group) or "slot" not in ck:
            return None
        slot = int(ck["slot"][()])
        if slot < 0:
            return None
        if slot > 1 or any(name not in ck or ck[name].shape != (2,) for name in ("step", "time", "rng")):
            raise DamagedFileError(self._path, f"its checkpoint is malformed (slot {slot})")
        runs = {}
        for run in self.runs:
            g = run._g.get("checkpoint")
            if not isinstance(g, h5py.Group):
                raise DamagedFileError(self._path, f"run {run.name!r} has no checkpoint arrays")
            runs[run.name] = {k: ds[slot] for k, ds in g.items() if isinstance(ds, h5py.Dataset) and ds.shape[:1] == (2,)}
        return {"step": int(ck["step"][slot]), "time": float(ck["time"][slot]),
                "rng": bytes(ck["rng"][slot]).rstrip(b"\0").decode("utf-8", "replace"), "runs": runs}

    # ---------------------------------------------------------------- lifetime
    @property
    def file(self) -> h5py.File:
        """The underlying read-only h5py.File (for anything this API does not cover)."""
        return self._file

    def close(self) -> None:
        f, self._file = getattr(self, "_file", None), None
        if f is not None:
            try:
                f.close()
            except Exception:
                pass

    def to_pandas(self):
        """Every run in long format (``run``, ``cell``, ``step``, ``time``, scalars); pandas needed."""
        from sessions.interop import session_frame

        return session_frame(self)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Session {self.path!r} format {getattr(self, 'format_version', '?')} runs {self.run_names}>"


def gate_names(order, n_gates: int) -> tuple[str, ...]:
    """The ``n_gates`` gate names of a ``probes/gate_order`` attribute ("i,f,g,o"); gate0, gate1, ... when
    the attribute does not name them all."""
    names = tuple(n for n in _text(order).split(",") if n)
    return names if len(names) == n_gates else tuple(f"gate{k}" for k in range(n_gates))


class Run:
    """One run (one cell) in a session file."""

    def __init__(self, session: Session, name: str, group: h5py.Group):
        self._session = session
        self._path = session.path
        self.name = name
        self._g = group
        a = group.attrs
        self.cell = _text(a["cell"])
        self.param_count = int(a["param_count"])
        self.length = int(a["length"])
        self.hidden = int(a["hidden"])
        self.n_gates = int(a["n_gates"])
        self.metric_name = _text(a["metric_name"])
        self.higher_is_better = bool(a["higher_is_better"])
        self.baseline = {"loss": float(a["baseline_loss"]), "metric": float(a["baseline_metric"])}
        self.config: dict[str, Any] = json.loads(_text(group["config"].attrs["json"]))  # an object: checked
        self._status = group["status"]
        self._message = group["message"]
        self._status_step = group["status_step"]
        self._params_written = group["params_written"]
        self._series: dict[str, h5py.Group] = {n: group["scalars"][n] for n in series_names(group["scalars"])}
        try:
            grads = [f"grad_norm/{p}" for p in json.loads(_text(a.get("param_grad_names", "[]")))]
        except (ValueError, TypeError):
            grads = []
        order = ["loss", "metric", "grad_norm", "wall_time"] + grads
        self.scalar_names = [n for n in order if n in self._series] + \
                            sorted(n for n in self._series if n not in order)
        self._probes = group["probes"]
        #: gate names in row order (probes/gate_order; "i,f,g,o" in every 1.0 file with gates)
        self.gate_names: tuple[str, ...] = gate_names(self._probes.attrs.get("gate_order", ""), self.n_gates)
        #: whether probes carry a cell state c (the dataset is there: 1.0 files have it with every LSTM)
        self.has_cell_state = "c" in self._probes
        #: the initialisation and kernel options this cell got (1.1; a 1.0 file: PyTorch's default, none)
        self.init = _text(a.get("init", "default"))
        try:
            self.cell_options: dict[str, Any] = dict(json.loads(_text(a.get("cell_options", "{}"))))
        except (ValueError, TypeError):
            self.cell_options = {}
        #: the probe datasets this run has (an RNN has no gates; members beyond these are ignored)
        self._probe_keys = ("step",) + (("time",) if "time" in self._probes else ()) + ("grad_norm_t", "h") + \
            (("gates", "saturation") if self.n_gates else ()) + (("c",) if self.has_cell_state else ()) + \
            tuple(k for k in ("saliency", "spectrum", "weight_sigma") if k in self._probes)

    def _rows(self, ds: h5py.Dataset) -> int:
        """Rows of ``ds`` whose data lies inside the file (all of them unless the file is short)."""
        cap = self._session._caps.get(ds.name) if self._session._caps is not None else None
        if cap is None and self._session._caps is not None:
            cap = self._session._caps[ds.name] = _rows_inside(ds, self._session._size)
        return ds.shape[0] if cap is None else min(ds.shape[0], cap)

    def _datasets(self):
        yield from (self._status, self._message, self._status_step, self._params_written)
        for g in self._series.values():
            yield from (g["step"], g["time"], g["value"])
        for k, ds in self._probes.items():
            if isinstance(ds, h5py.Dataset):
                yield ds

    def _refresh(self) -> None:
        for ds in self._datasets():
            ds.refresh()
        pg = self._g["params"]
        for ds in pg.values():
            if isinstance(ds, h5py.Dataset):
                ds.refresh()

    # ---------------------------------------------------------------- status
    @property
    @_reading("run {self.name!r}'s status")
    def stored_status(self) -> str:
        """The status exactly as the writer last stored it."""
        return _text(self._status[()]).rstrip("\x00")

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``stopped``, ``diverged``, or ``interrupted`` when the
        writer stopped writing (killed, crashed, or closed) while the run was ``running``."""
        s = self.stored_status
        if s == "running" and not self._session.live:
            return "interrupted"
        return s

    @property
    @_reading("run {self.name!r}'s message")
    def message(self) -> str:
        m = _text(self._message[()]).rstrip("\x00")
        if not m and self.stored_status == "running" and self.status == "interrupted":
            if self._session.writer_closed:
                return "the writer closed the file before the run finished"
            return ("the writing process stopped (killed or crashed) before the run finished; "
                    "the steps it had flushed are kept")
        return m

    @property
    @_reading("run {self.name!r}'s status step")
    def status_step(self) -> int:
        return int(self._status_step[()])

    # ---------------------------------------------------------------- scalars
    def _series_group(self, name: str) -> h5py.Group:
        try:
            return self._series[name]
        except KeyError:
            raise NoSuchSeriesError(f"run {self.name!r} has no scalar series {name!r} "
                           f"(has: {', '.join(self.scalar_names)})") from None

    @_reading("run {self.name!r}'s scalar series {args[0]!r}")
    def scalar(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(step int64 (N,), time float64 (N,), value float64 (N,))`` of one series."""
        g = self._series_group(name)
        st, tm, va = g["step"], g["time"], g["value"]
        n = _valid_rows(st, min(self._rows(st), self._rows(tm), self._rows(va)))
        return (st[:n].astype(np.int64, copy=False), tm[:n].astype(np.float64, copy=False),
                va[:n].astype(np.float64, copy=False))

    @_reading("run {self.name!r}'s steps")
    def __len__(self) -> int:
        g = self._series["loss"]
        n = min(self._rows(g["step"]), self._rows(g["time"]), self._rows(g["value"]))
        return _valid_rows(g["step"], n)

    @property
    def n_rows(self) -> int:
        """Number of recorded steps (rows of every scalar series)."""
        return len(self)

    @property
    @_reading("run {self.name!r}'s steps")
    def steps(self) -> int:
        """The last recorded step (0 if none)."""
        n = len(self)
        return int(self._series["loss"]["step"][n - 1]) if n else 0

    @property
    @_reading("run {self.name!r}'s final loss and metric")
    def final(self) -> dict[str, float]:
        """The last recorded step's loss and metric (NaN when no step was recorded)."""
        n = min(len(self), self._rows(self._series["metric"]["value"]))
        if not n:
            return {"loss": math.nan, "metric": math.nan}
        return {"loss": float(self._series["loss"]["value"][n - 1]),
                "metric": float(self._series["metric"]["value"][n - 1])}

    def decimated(self, name: str, n_buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Min/max per bucket of consecutive rows: ``(step, vmin, vmax)``, at most ``n_buckets`` rows.

        ``step`` is each bucket's first step. NaNs are ignored unless a whole
        bucket is NaN. With no more rows than buckets, every row is returned
        (vmin == vmax == value).
        """
        n_buckets = int(n_buckets)
        if n_buckets < 1:
            raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
        step, _, value = self.scalar(name)
        return decimate(step, value, n_buckets)

    # ---------------------------------------------------------------- probes
    def _n_probes(self) -> int:
        n = min(self._rows(self._probes[k]) for k in self._probe_keys)
        return _valid_rows(self._probes["step"], n)

    @property
    @_reading("run {self.name!r}'s probes")
    def n_probes(self) -> int:
        return self._n_probes()

    @property
    @_reading("run {self.name!r}'s probe steps")
    def probe_steps(self) -> np.ndarray:
        """Steps at which probes were taken, int64 (P,)."""
        return self._probes["step"][: self._n_probes()].astype(np.int64, copy=False)

    @_reading("probe {args[0]} of run {self.name!r}")
    def probe(self, i: int) -> dict[str, Any]:
        """Probe ``i`` (negative counts from the end): step, time, grad_norm_t (L,), h (L,H),
        gates (4,L,H) | None, c (L,H) | None, saturation (4,) | None, saliency (L,) | None (1.3),
        spectrum (L, S) | None and weight_sigma (1+G,) | None (1.4); arrays as float32."""
        n = self._n_probes()
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise ProbeIndexError(f"probe index {i} out of range: run {self.name!r} has {n} probe(s)")
        out: dict[str, Any] = {"step": int(self._probes["step"][j])}
        if "time" in self._probes:
            out["time"] = float(self._probes["time"][j])
        for key in PROBE_ARRAYS:
            out[key] = self._probes[key][j].astype(np.float32) if key in self._probe_keys else None
        return out

    @_reading("the probe array {args[0]!r} of run {self.name!r}")
    def probe_series(self, name: str) -> np.ndarray:
        """One probe array over all probes, as stored: ``grad_norm_t`` and ``saliency`` (1.3) (P, L) float32,
        ``saturation`` (P, 4) float32, ``h``/``c`` (P, L, H) float16, ``gates`` (P, 4, L, H)
        float16, ``spectrum`` (P, L, S) and ``weight_sigma`` (P, 1+G) float32 (1.4), ``step`` (P,) int64,
        ``time`` (P,) float64."""
        if name not in self._probe_keys:
            if name in PROBE_ARRAYS:
                raise NoSuchSeriesError(f"run {self.name!r} ({self.cell}) has no probe array {name!r}")
            raise NoSuchSeriesError(f"unknown probe array {name!r}: one of step, time, {', '.join(PROBE_ARRAYS)}")
        return self._probes[name][: self._n_probes()]

    # ---------------------------------------------------------------- params
    @property
    @_reading("run {self.name!r}'s parameters")
    def params(self) -> dict[str, np.ndarray] | None:
        """Final parameters (PyTorch state_dict names and shapes), None until written."""
        if not int(self._params_written[()]):
            return None
        return {k: ds[()] for k, ds in self._g["params"].items() if isinstance(ds, h5py.Dataset)}

    @property
    @_reading("run {self.name!r}'s probe sequence")
    def probe_input(self) -> np.ndarray | None:
        """(1.3) The probe sequence every probe ran on, ``(L, n_in)`` float32; None in older files."""
        ds = self._g.get("probe_input")
        return ds[()].astype(np.float32) if isinstance(ds, h5py.Dataset) else None

    @property
    @_reading("run {self.name!r}'s weight σ_max bounds")
    def weight_sigma_bounds(self) -> np.ndarray | None:
        """(1.4) The vanishing bound 1/γ of each ``weight_sigma`` column, ``(1 + G,)`` float64 (NaN: none);
        None in older files."""
        ds = self._probes.get("weight_sigma")
        if not isinstance(ds, h5py.Dataset):
            return None
        bounds = np.asarray(ds.attrs.get("bounds", np.full(ds.shape[1:], np.nan)), dtype=np.float64).ravel()
        return bounds if bounds.shape == tuple(ds.shape[1:]) else np.full(ds.shape[1:], np.nan)

    @property
    def weight_sigma_names(self) -> tuple[str, ...]:
        """(1.4) Names of the ``weight_sigma`` columns: ``W_hh``, then ``W_h`` + each gate."""
        return ("W_hh",) + tuple(f"W_h{g}" for g in self.gate_names)

    @property
    @_reading("run {self.name!r}'s solved step")
    def solved_at(self) -> dict[str, int] | None:
        """(1.2) ``{"step", "sequences"}`` where the task's stop rule first held; None if it did not
        (or the file predates 1.2)."""
        if "solved_step" not in self._g:
            return None
        ds, seq = self._g["solved_step"], self._g["solved_sequences"]
        if self._swmr_live():
            ds.refresh(), seq.refresh()
        step = int(ds[()])
        return {"step": step, "sequences": int(seq[()])} if step > 0 else None

    @property
    @_reading("run {self.name!r}'s test evaluations")
    def tests(self) -> list[dict]:
        """(1.2) Every held-out test evaluation, oldest first: ``{"step", "time", "n", "loss", "metric",
        "wrong" (None without a per-sequence rule), "final"}``; [] without one (or before 1.2)."""
        g = self._g.get("test")
        if not isinstance(g, h5py.Group) or "step" not in g:
            return []
        if self._swmr_live():
            for ds in g.values():
                ds.refresh()
        cols = {k: g[k] for k in ("step", "time", "loss", "metric", "wrong", "final") if k in g}
        n = _valid_rows(g["step"], min(self._rows(ds) for ds in cols.values()))
        data = {k: ds[:n] for k, ds in cols.items()}
        size = int(g.attrs.get("n", 0))
        return [{"step": int(data["step"][i]), "time": float(data["time"][i]), "n": size,
                 "loss": float(data["loss"][i]), "metric": float(data["metric"][i]),
                 "wrong": int(data["wrong"][i]) if int(data["wrong"][i]) >= 0 else None,
                 "final": bool(data["final"][i])} for i in range(n)]

    @property
    def test(self) -> dict | None:
        """(1.2) The latest held-out test evaluation (the end-of-run one when ``final``), or None."""
        tests = self.tests
        return tests[-1] if tests else None

    def _swmr_live(self) -> bool:
        return bool(self._session._swmr)

    def to_pandas(self):
        """One row per step: ``step``, ``time``, a column per scalar series (pandas needed);
        see :func:`sessions.interop.run_frame`."""
        from sessions.interop import run_frame

        return run_frame(self)

    def __repr__(self) -> str:
        return f"<Run {self.name!r} cell={self.cell} status={self.status} steps={self.steps}>"


def _rows_inside(ds: h5py.Dataset, size: int) -> int:
    """Rows of a chunked dataset before its first chunk that ends beyond ``size`` bytes."""
    n = ds.shape[0]
    if ds.chunks is None or n == 0:
        return n
    try:
        for i in range(ds.id.get_num_chunks()):
            info = ds.id.get_chunk_info(i)
            if info.byte_offset + info.size > size:
                n = min(n, int(info.chunk_offset[0]))
    except Exception:
        return 0
    return n


def _valid_rows(step: h5py.Dataset, n: int) -> int:
    """Rows ``[:n]`` without a tail of step 0: a writer that failed mid-flush can leave rows whose
    extent reached the file but whose data did not (steps are >= 1)."""
    if n == 0 or step[n - 1] != 0:
        return n
    nz = np.flatnonzero(step[:n])
    return int(nz[-1]) + 1 if nz.size else 0


def decimate(step: np.ndarray, value: np.ndarray, n_buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max of ``value`` per bucket of consecutive rows (see :meth:`Run.decimated`)."""
    n = value.shape[0]
    if n <= n_buckets:
        v = value.astype(np.float64, copy=True)
        return step.astype(np.int64, copy=True), v, v.copy()
    starts = (np.arange(n_buckets, dtype=np.int64) * n) // n_buckets
    with np.errstate(invalid="ignore"):
        vmin = np.fmin.reduceat(value, starts)
        vmax = np.fmax.reduceat(value, starts)
    return step[starts].astype(np.int64, copy=False), vmin.astype(np.float64), vmax.astype(np.float64)
