"""Write a session file live: layout first, then SWMR, buffered rows, periodic flushes.

The file format is defined in ``sessions/SCHEMA.md``; this module is its reference
writer. One :class:`SessionWriter` writes one file holding one or several runs::

    with SessionWriter("run.h5", software_version="0.1.0") as w:
        w.add_run("lstm", cell="lstm", config={...}, param_count=..., ...)
        w.start()                       # layout complete -> SWMR mode (readers may follow)
        for ...:
            w.append_step("lstm", step, wall_time, loss, metric, grad_norm, {...})
        w.set_status("lstm", "completed")
        w.write_params("lstm", state_dict)

Rows are buffered in memory and written in blocks, at most every
``flush_interval_s`` seconds or ``flush_every_steps`` steps, whichever comes first.
A writer killed with ``kill -9`` loses only what it had not flushed; readers then
report its runs as ``interrupted`` (see :func:`sessions.liveness.writer_alive`).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import socket
import time
import warnings
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from sessions.liveness import LOCK_OFFSET, claim_new_file
from sessions.superblock import clear_write_flags
from sessions.errors import (
    SessionError,
    SessionExistsError,
    SessionIsDirectoryError,
    SessionPermissionError,
    SessionWriteError,
)

#: root attribute ``format``: what kind of file this is
FORMAT_NAME = "lstm-explorer-session"
#: root attribute ``format_version`` (semver: readers read the same major, refuse a newer one)
FORMAT_VERSION = "1.5.0"
#: bytes kept for the batch stream's state in a checkpoint (NumPy's PCG64 state as JSON is about 150)
RNG_BYTES = 1024
#: every status a run can have in the file ("interrupted" is normally derived by readers)
STATUSES = ("running", "completed", "stopped", "diverged", "interrupted")
#: LSTM gate order, as in PyTorch: the gate names of a 1.0 file with 4 gates
GATE_ORDER = ("i", "f", "g", "o")
#: fixed byte lengths of the mutable string datasets
STATUS_BYTES = 16
MESSAGE_BYTES = 1024
#: HDF5 format bounds: SWMR needs >= v110; capping at v114 keeps files readable by HDF5 1.10-1.14
LIBVER = ("v110", "v114")
#: target size of one raw-data chunk in bytes
CHUNK_BYTES = 1 << 20
#: rows per chunk of the scalar time series
SCALAR_CHUNK_ROWS = 1024
#: a flush is refused (the writer stops cleanly) when fewer bytes than this plus its own size are free
SPACE_RESERVE_BYTES = 4 << 20

_SERIES = ("loss", "metric", "grad_norm")
#: (1.2) columns of a run's held-out test evaluations, ``test/<column>``, one row per evaluation
TEST_COLUMNS = {"step": np.int64, "time": np.float64, "loss": np.float64, "metric": np.float64,
                "wrong": np.int64, "final": np.int8}


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- writer

class _RunLayout:
    """Datasets of one run and its in-memory buffers."""

    def __init__(self, name: str, group: h5py.Group, length: int, hidden: int, n_gates: int,
                 param_grad_names: list[str], param_shapes: dict[str, tuple[int, ...]]):
        self.name = name
        self.group = group
        self.length = length
        self.hidden = hidden
        self.n_gates = n_gates
        self.param_grad_names = list(param_grad_names)
        self.param_shapes = {k: tuple(int(n) for n in v) for k, v in param_shapes.items()}
        self.rows: list[tuple] = []        # (step, time, loss, metric, grad_norm, *param norms)
        self.probes: list[dict] = []
        self.keys_checked = False
        sc = group["scalars"]
        self.step = sc["loss/step"]
        self.time = sc["loss/time"]
        self.values = [sc[f"{s}/value"] for s in _SERIES] + \
                      [sc[f"grad_norm/{p}/value"] for p in self.param_grad_names]
        pr = group["probes"]
        self.probe_ds = {k: pr[k] for k in pr if isinstance(pr[k], h5py.Dataset)}
        self.status = group["status"]
        self.message = group["message"]
        self.status_step = group["status_step"]
        self.params_written = group["params_written"]
        self.last_step = 0
        self.solved = (group["solved_step"], group["solved_sequences"])
        self.test = {k: group[f"test/{k}"] for k in TEST_COLUMNS}


class SessionWriter:
    """Create a session file and write runs into it while they train.

    Parameters
    ----------
    path : str or os.PathLike
        File to create. An existing file is refused unless ``overwrite=True``.
    overwrite : bool
        Replace an existing file (the CLI's ``--force``).
    software_version : str
        Version of the program that writes the file (root attribute).
    flush_interval_s : float
        Flush at least this often (seconds) while rows arrive. A ``kill -9``
        loses at most this much.
    flush_every_steps : int or None
        Also flush after this many appended steps (all runs together);
        None means 1000.
    """

    def __init__(self, path, *, overwrite: bool = False, software_version: str = "0.0.0",
                 flush_interval_s: float = 1.0, flush_every_steps: int | None = None):
        self._setup(path, flush_interval_s, flush_every_steps)
        self._create(overwrite, software_version)

    def _setup(self, path, flush_interval_s: float, flush_every_steps: int | None) -> None:
        self.path = os.fspath(path)
        self.flush_interval_s = float(flush_interval_s)
        self.flush_every_steps = int(flush_every_steps) if flush_every_steps else 1000
        self._runs: dict[str, _RunLayout] = {}
        self._order: list[str] = []
        self._started = False
        self._closed = False
        self._failed: str | None = None
        self._pending = 0
        self._last_flush = time.monotonic()
        self._file: h5py.File | None = None
        self._lock_fd: int | None = None
        self._checkpoints = False          # some run keeps checkpoints: /checkpoint is made at start()
        #: set by :meth:`close` when the path was deleted or replaced while recording, and where it saved
        #: the file instead (None: nowhere could be written)
        self.path_was_lost = False
        self.saved_as: str | None = None

    @classmethod
    def reopen(cls, path, step: int, running: Iterable[str], *, config_changes: dict | None = None,
               flush_interval_s: float = 1.0, flush_every_steps: int | None = None) -> "SessionWriter":
        """(1.5) Open a session file to go on writing it from the end of ``step`` (``train --resume``): every
        row, probe and test row after ``step`` is cut away, the runs in ``running`` (those still training at
        the checkpoint) are ``running`` again with what was solved after ``step`` forgotten, and the file
        switches to SWMR mode. ``config_changes``, ``{field: value}``, is written into every run's
        configuration (``--resume FILE --steps N``: the new cap; ``--lr-schedule``: the later learning
        rates). A file another live process writes is refused, untouched."""
        self = cls.__new__(cls)
        self._setup(path, flush_interval_s, flush_every_steps)
        self._lock_fd, _ = claim_new_file(self.path, overwrite=True)
        try:
            clear_write_flags(self.path)     # a killed writer's "open for write" mark: no live writer holds it
            self._file = h5py.File(self.path, "r+", libver=LIBVER)
        except OSError as exc:
            self._abort()
            raise SessionWriteError(self.path, f"cannot open the file to resume it: {_short(exc)}") from None
        running = set(running)
        try:
            f = self._file
            wg = f["writer"]
            wg.attrs["hostname"] = socket.gethostname()
            wg.attrs["pid"] = os.getpid()
            wg.attrs["lock"] = "ofd" if self._lock_fd is not None else "none"
            wg["closed"][()] = np.int8(0)
            self._checkpoints = "checkpoint" in f
            self._order = list(json.loads(_text_of(f["runs"].attrs["order"])))
            for name in self._order:
                g = f["runs"][name]
                a = g.attrs
                run = _RunLayout(name, g, int(a["length"]), int(a["hidden"]), int(a["n_gates"]),
                                 json.loads(_text_of(a["param_grad_names"])),
                                 {k: ds.shape for k, ds in g["params"].items() if isinstance(ds, h5py.Dataset)})
                _cut_after(run, step)
                if config_changes:
                    _change_config(g["config"], config_changes)
                if name in running:
                    if int(run.solved[0][()]) > step:
                        run.solved[0][()] = np.int64(0)
                        run.solved[1][()] = np.int64(0)
                    run.status[()] = np.bytes_(b"running")
                    run.message[()] = np.bytes_(b"")
                    run.status_step[()] = np.int64(step)
                    run.params_written[()] = np.int8(0)
                self._runs[name] = run
            f.swmr_mode = True
            self._started = True
            self._heartbeat()
            f.flush()
        except Exception as exc:
            self._fail(exc, "reopening the file to resume it")
        self._last_flush = time.monotonic()
        return self

    def _create(self, overwrite: bool, software_version: str) -> None:
        if os.path.isdir(self.path):
            raise SessionIsDirectoryError(self.path, "is a directory, not a session file; give a file name such as run.h5")
        if os.path.lexists(self.path) and not overwrite:
            raise SessionExistsError(self.path, "already exists; use --force to overwrite it (or choose another name)")
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise SessionWriteError(self.path, f"cannot create the file: folder {parent} does not exist")
        # the liveness lock first: a file another live process writes is refused before HDF5 truncates it
        self._lock_fd, created = claim_new_file(self.path, overwrite)
        try:
            self._file = h5py.File(self.path, "w", libver=LIBVER)
        except OSError as exc:
            self._abort()
            if created:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            if isinstance(exc, PermissionError):
                raise SessionPermissionError(self.path, f"permission denied: cannot create the file ({exc.strerror or exc})") from None
            if not os.access(parent, os.W_OK):
                raise SessionPermissionError(self.path, f"permission denied: cannot write in folder {parent}") from None
            raise SessionWriteError(self.path, f"cannot create the file: {exc}") from None
        try:
            f = self._file
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["software"] = "lstm-explorer"
            f.attrs["software_version"] = str(software_version)
            f.attrs["created"] = _now_iso()
            wg = f.create_group("writer")
            wg.attrs["hostname"] = socket.gethostname()
            wg.attrs["pid"] = os.getpid()
            wg.attrs["lock"] = "ofd" if self._lock_fd is not None else "none"
            wg.attrs["lock_offset"] = np.int64(LOCK_OFFSET)
            wg.attrs["flush_interval_s"] = self.flush_interval_s
            wg.attrs["flush_every_steps"] = self.flush_every_steps
            wg.attrs["heartbeat_timeout_s"] = max(60.0, 10.0 * self.flush_interval_s)
            wg.create_dataset("heartbeat", data=np.float64(time.time()))
            wg.create_dataset("closed", data=np.int8(0))
            f.create_group("runs")
        except Exception as exc:
            self._abort()
            raise SessionWriteError(self.path, f"cannot write the file layout: {exc}") from None

    # ------------------------------------------------------------------ layout
    def add_run(self, name: str, *, cell: str, config: Mapping[str, Any], param_count: int,
                param_shapes: Mapping[str, tuple], length: int, hidden: int, n_gates: int,
                metric_name: str, higher_is_better: bool, baseline_loss: float,
                baseline_metric: float, param_grad_names: list[str],
                param_dtype: str = "float32", gate_names=None, cell_state: bool | None = None,
                init: str = "default", cell_options: Mapping[str, Any] | None = None,
                stop_rule: str = "", test_size: int = 0, sequence_rule: str = "",
                probe_input=None, weight_sigma_bounds=None, checkpoint_layout=None) -> None:
        """Create the full layout of one run (before :meth:`start`).

        ``gate_names`` name the ``n_gates`` gate blocks in PyTorch's row order (default: the LSTM's
        i, f, g, o when there are 4); ``cell_state`` says whether probes carry a cell state ``c``
        (default: when there are 4 gates, as in 1.0 files); ``init`` and ``cell_options`` (1.1) record
        the initialisation and the cell's kernel options (the RNN's activation); ``stop_rule``,
        ``test_size`` and ``sequence_rule`` (1.2) describe what "solved" means and the held-out test set;
        ``probe_input : (length, n_in)`` (1.3) is the probe sequence the probes run on;
        ``weight_sigma_bounds : (1 + n_gates,)`` (1.4) the vanishing bound 1/γ of W_hh and of each gate's
        block (NaN: none), beside the probes' ``weight_sigma``.
        """
        self._check_open()
        if self._started:
            raise SessionError(self.path, f"cannot add run {name!r} after start(): the layout is fixed in SWMR mode")
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"run name must be a non-empty name without '/', got {name!r}")
        if name in self._runs:
            raise ValueError(f"run {name!r} already exists in {self.path}")
        length, hidden, n_gates = int(length), int(hidden), int(n_gates)
        if length < 1 or hidden < 1 or not 0 <= n_gates <= 64:
            raise ValueError(f"bad run shape: length={length}, hidden={hidden}, n_gates={n_gates} (0 to 64)")
        gate_names = tuple(GATE_ORDER if gate_names is None and n_gates == 4 else gate_names or ())
        if len(gate_names) != n_gates or any(not n or "," in n for n in gate_names):
            raise ValueError(f"run {name!r}: {n_gates} gates need as many names without commas, got {gate_names}")
        cell_state = n_gates == 4 if cell_state is None else bool(cell_state)
        try:
            g = self._file["runs"].create_group(name)
            g.attrs["cell"] = str(cell)
            g.attrs["param_count"] = np.int64(param_count)
            g.attrs["length"] = np.int64(length)
            g.attrs["hidden"] = np.int64(hidden)
            g.attrs["n_gates"] = np.int64(n_gates)
            g.attrs["metric_name"] = str(metric_name)
            g.attrs["higher_is_better"] = np.int8(bool(higher_is_better))
            g.attrs["baseline_loss"] = np.float64(baseline_loss)
            g.attrs["baseline_metric"] = np.float64(baseline_metric)
            g.attrs["param_grad_names"] = json.dumps(list(param_grad_names))
            g.attrs["init"] = str(init)
            g.attrs["cell_options"] = json.dumps(dict(cell_options or {}))

            cg = g.create_group("config")
            cg.attrs["json"] = json.dumps(dict(config), sort_keys=False, default=_json_default)
            for key, value in dict(config).items():
                _set_browse_attr(cg, key, value)

            g.create_dataset("status", data=np.bytes_(b"running"), dtype=f"S{STATUS_BYTES}")
            g.create_dataset("message", data=np.bytes_(b""), dtype=f"S{MESSAGE_BYTES}")
            g.create_dataset("status_step", data=np.int64(0))
            g.create_dataset("params_written", data=np.int8(0))
            g.attrs["stop_rule"] = str(stop_rule)
            g.create_dataset("solved_step", data=np.int64(0))
            g.create_dataset("solved_sequences", data=np.int64(0))
            tg = g.create_group("test")
            tg.attrs["n"] = np.int64(test_size)
            tg.attrs["sequence_rule"] = str(sequence_rule)
            for col, kind in TEST_COLUMNS.items():
                _grow_1d(tg, col, kind)

            sc = g.create_group("scalars")
            loss = sc.create_group("loss")
            step = _grow_1d(loss, "step", np.int64)
            tds = _grow_1d(loss, "time", np.float64)
            _grow_1d(loss, "value", np.float64)
            step.attrs["unit"] = "training steps done (1-based)"
            tds.attrs["unit"] = "s since training started"

            def series(group, desc):
                group["step"] = step      # H5MD: hard links to the shared step/time columns
                group["time"] = tds
                group.attrs["description"] = desc

            loss.attrs["description"] = "task loss on the step's batch"
            m = sc.create_group("metric")
            series(m, f"task metric ({metric_name}) on the step's batch")
            _grow_1d(m, "value", np.float64)
            gn = sc.create_group("grad_norm")
            series(gn, "global L2 norm of all gradients, before clipping")
            _grow_1d(gn, "value", np.float64)
            for p in param_grad_names:
                pg = gn.create_group(p)
                series(pg, f"L2 norm of the gradient of {p}, before clipping")
                _grow_1d(pg, "value", np.float64)
            wt = sc.create_group("wall_time")
            series(wt, "wall time (value is a hard link to the time column)")
            wt["value"] = tds

            pr = g.create_group("probes")
            pr.attrs["gate_order"] = ",".join(gate_names)
            _grow_1d(pr, "step", np.int64)
            _grow_1d(pr, "time", np.float64)
            _grow_nd(pr, "grad_norm_t", (length,), np.float32)
            _grow_nd(pr, "h", (length, hidden), np.float16)
            if n_gates:
                _grow_nd(pr, "gates", (n_gates, length, hidden), np.float16)
                _grow_nd(pr, "saturation", (n_gates,), np.float32)
            if cell_state:
                _grow_nd(pr, "c", (length, hidden), np.float16)
            _grow_nd(pr, "saliency", (length,), np.float32)
            _grow_nd(pr, "spectrum", (length, 1 + bool(cell_state)), np.float32)
            _grow_nd(pr, "weight_sigma", (1 + n_gates,), np.float32)
            pr["weight_sigma"].attrs["bounds"] = (np.full(1 + n_gates, np.nan) if weight_sigma_bounds is None else
                                                  _as(weight_sigma_bounds, (1 + n_gates,), np.float64, "bounds"))
            if probe_input is not None:
                x = np.asarray(probe_input, dtype=np.float32)
                if x.ndim != 2 or x.shape[0] != length:
                    raise ValueError(f"probe_input has shape {x.shape}, the run's layout needs ({length}, n_in)")
                g.create_dataset("probe_input", data=x)

            if checkpoint_layout:          # two slots: a checkpoint being written never spoils the last one
                ck = g.create_group("checkpoint")
                for key, (shape, dtype) in checkpoint_layout.items():
                    ck.create_dataset(key, shape=(2,) + tuple(int(n) for n in shape), dtype=np.dtype(dtype))
                self._checkpoints = True

            pa = g.create_group("params")
            pa.attrs["layout"] = ("PyTorch state_dict names and shapes; gate rows in the order of "
                                  f"probes/gate_order ({','.join(gate_names) or 'one block'})")
            for pname, shape in param_shapes.items():
                pa.create_dataset(pname, shape=tuple(int(n) for n in shape), dtype=param_dtype,
                                  fillvalue=np.nan)
        except Exception as exc:
            self._abort()
            raise SessionWriteError(self.path, f"cannot write the layout of run {name!r}: {exc}") from None
        self._runs[name] = _RunLayout(name, g, length, hidden, n_gates, list(param_grad_names),
                                      dict(param_shapes))
        self._order.append(name)

    def start(self) -> None:
        """Finish the layout and switch to SWMR mode: from now on readers may follow the file."""
        self._check_open()
        if self._started:
            return
        try:
            self._file["runs"].attrs["order"] = json.dumps(self._order)
            if self._checkpoints:
                ck = self._file.create_group("checkpoint")
                ck.create_dataset("slot", data=np.int8(-1))        # the slot holding the newest whole checkpoint
                ck.create_dataset("step", data=np.full(2, -1, np.int64))
                ck.create_dataset("time", data=np.zeros(2))
                ck.create_dataset("rng", shape=(2,), dtype=f"S{RNG_BYTES}")
            self._file.swmr_mode = True
            self._started = True
            self._heartbeat()
            self._file.flush()
        except Exception as exc:
            self._fail(exc, "switching to SWMR mode")
        self._last_flush = time.monotonic()

    # ------------------------------------------------------------------ rows
    def append_step(self, name: str, step: int, wall_time: float, loss: float, metric: float,
                    grad_norm: float, param_grad_norms: Mapping[str, float] | None = None) -> None:
        """Buffer one training step of run ``name``; flushes when an interval is due."""
        run = self._run_for_append(name)
        norms = param_grad_norms or {}
        row = [int(step), float(wall_time), float(loss), float(metric), float(grad_norm)]
        row.extend(float(norms.get(p, math.nan)) for p in run.param_grad_names)
        if not run.keys_checked:  # the record's keys are checked once per run
            run.keys_checked = True
            extra = sorted(k for k in norms if k not in run.param_grad_names)
            if extra:
                warnings.warn(f"{self.path}: run {name!r} has no series for gradient norm(s) "
                              f"{', '.join(extra)}; they are not recorded", stacklevel=2)
        run.rows.append(tuple(row))
        run.last_step = int(step)
        self._pending += 1
        self._maybe_flush()

    def append_probe(self, name: str, step: int, wall_time: float, grad_norm_t, h, gates=None,
                     c=None, saturation=None, saliency=None, spectrum=None, weight_sigma=None) -> None:
        """Buffer one probe snapshot of run ``name`` (arrays are copied; ``saliency`` (L,), 1.3, ``spectrum``
        (L, S) and ``weight_sigma`` (1 + n_gates,), 1.4: NaN when not given)."""
        run = self._run_for_append(name)
        L, H, G = run.length, run.hidden, run.n_gates
        item = {"step": int(step), "time": float(wall_time),
                "grad_norm_t": _as(grad_norm_t, (L,), np.float32, "grad_norm_t"),
                "h": _as(h, (L, H), np.float16, "h")}
        if G:
            item["gates"] = _as(gates, (G, L, H), np.float16, "gates")
            item["saturation"] = _as(saturation, (G,), np.float32, "saturation")
        if "c" in run.probe_ds:
            item["c"] = _as(c, (L, H), np.float16, "c")
        for key, value in (("saliency", saliency), ("spectrum", spectrum), ("weight_sigma", weight_sigma)):
            shape = run.probe_ds[key].shape[1:]
            item[key] = _as(np.full(shape, np.nan) if value is None else value, shape, np.float32, key)
        run.probes.append(item)
        self._maybe_flush()

    def set_status(self, name: str, status: str, message: str = "", step: int | None = None) -> None:
        """Set run ``name``'s status (flushes the rows buffered so far first)."""
        run = self._run_for_append(name)
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
        msg = str(message).encode("utf-8")[:MESSAGE_BYTES]
        while msg:  # do not cut a UTF-8 character in half
            try:
                msg.decode("utf-8")
                break
            except UnicodeDecodeError:
                msg = msg[:-1]
        self._flush_rows()
        try:
            run.status[()] = np.bytes_(status.encode("ascii"))
            run.message[()] = np.bytes_(msg)
            run.status_step[()] = np.int64(run.last_step if step is None else step)
        except Exception as exc:
            self._fail(exc, f"writing the status of run {name!r}")
        self.flush()

    def set_solved(self, name: str, step: int, sequences: int) -> None:
        """(1.2) Run ``name``'s stop rule held at ``step``, after ``sequences`` training sequences."""
        run = self._run_for_append(name)
        self._flush_rows()
        try:
            run.solved[0][()] = np.int64(step)
            run.solved[1][()] = np.int64(sequences)
        except Exception as exc:
            self._fail(exc, f"writing when run {name!r} was solved")
        self.flush()

    def append_test(self, name: str, step: int, wall_time: float, loss: float, metric: float,
                    wrong: int | None, final: bool = False) -> None:
        """(1.2) One evaluation of run ``name`` on its held-out test set (``wrong`` None: no per-sequence rule)."""
        run = self._run_for_append(name)
        row = {"step": int(step), "time": float(wall_time), "loss": float(loss), "metric": float(metric),
               "wrong": -1 if wrong is None else int(wrong), "final": int(bool(final))}
        self._flush_rows()
        try:
            n = run.test["step"].shape[0]
            for col in TEST_COLUMNS:      # step last: a reader counts rows by the shortest column
                if col != "step":
                    run.test[col].resize((n + 1,))
                    run.test[col][n] = row[col]
            run.test["step"].resize((n + 1,))
            run.test["step"][n] = row["step"]
        except Exception as exc:
            self._fail(exc, f"writing a test evaluation of run {name!r}")
        self.flush()

    def write_checkpoint(self, step: int, wall_time: float, rng: str, runs: Mapping[str, Mapping[str, Any]]) -> None:
        """(1.5) Keep a checkpoint of the end of ``step``: ``rng`` (the batch stream's state, JSON) and, per run,
        the arrays of its ``checkpoint_layout``. Every row buffered so far goes to the file first; the arrays go
        to the slot not holding the newest checkpoint, and only then does ``/checkpoint/slot`` point at it, so a
        kill at any moment leaves one whole checkpoint."""
        self._check_open()
        if not self._checkpoints:
            raise SessionError(self.path, "no run of this file keeps checkpoints (its layout has none)")
        rng_bytes = rng.encode("utf-8")
        if len(rng_bytes) > RNG_BYTES:
            raise ValueError(f"the random-stream state takes {len(rng_bytes)} bytes, the layout holds {RNG_BYTES}")
        self._flush_rows()
        try:
            ck = self._file["checkpoint"]
            slot = 1 - int(ck["slot"][()]) if int(ck["slot"][()]) >= 0 else 0
            for name, arrays in runs.items():
                group = self._run_for_append(name).group["checkpoint"]
                for key, ds in group.items():
                    ds[slot] = np.asarray(arrays[key], dtype=ds.dtype).reshape(ds.shape[1:])
            ck["step"][slot] = np.int64(step)
            ck["time"][slot] = float(wall_time)
            ck["rng"][slot] = np.bytes_(rng_bytes)
            self._file.flush()
            ck["slot"][()] = np.int8(slot)
            self._heartbeat()
            self._file.flush()
        except Exception as exc:
            self._fail(exc, "writing a checkpoint")
        self._pending = 0
        self._last_flush = time.monotonic()

    def write_params(self, name: str, params: Mapping[str, np.ndarray]) -> None:
        """Write the final parameters of run ``name`` (PyTorch state_dict names and shapes)."""
        run = self._run_for_append(name)
        missing = [k for k in run.param_shapes if k not in params]
        extra = [k for k in params if k not in run.param_shapes]
        if missing or extra:
            raise ValueError(f"parameters of run {name!r} do not match its layout: "
                             f"missing {missing}, unexpected {extra}")
        arrays = {}
        for k, shape in run.param_shapes.items():
            a = np.asarray(params[k])
            if a.shape != shape:
                raise ValueError(f"parameter {k} of run {name!r} has shape {a.shape}, layout says {shape}")
            arrays[k] = a
        try:
            pg = run.group["params"]
            for k, a in arrays.items():
                pg[k][...] = a
            run.params_written[()] = np.int8(1)
        except Exception as exc:
            self._fail(exc, f"writing the parameters of run {name!r}")
        self.flush()

    # ------------------------------------------------------------------ flush / close
    def flush(self) -> None:
        """Write every buffered row and make it visible to readers."""
        self._check_open()
        self._ensure_space()
        self._flush_rows()
        try:
            self._heartbeat()
            self._file.flush()
        except Exception as exc:
            self._fail(exc, "flushing")
        self._pending = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush, mark the file closed and release it. Safe to call twice, and after a write error."""
        if self._closed:
            return
        if self._failed is not None:
            self._abort()
            return
        try:
            self._flush_rows()
            self._file["writer/closed"][()] = np.int8(1)
            self._heartbeat()
            self._file.flush()
        except Exception as exc:
            self._abort()
            raise SessionWriteError(self.path, f"writing failed while closing: {_short(exc)}; "
                                               "the rows flushed before are kept") from None
        orphan = self._hold_if_unlinked()
        self._abort()
        if orphan is not None:
            self.path_was_lost = True
            self.saved_as = _save_orphan(orphan, self.path)

    def path_lost(self) -> bool:
        """True when :attr:`path` no longer names the file being written (deleted or replaced while
        recording: on Linux the writer goes on writing the unlinked file, which :meth:`close` then saves
        under a new name, :attr:`saved_as`)."""
        fd = self._vfd()
        if fd is None:
            return False
        try:
            mine = os.fstat(fd)
        except OSError:
            return False
        try:
            there = os.stat(self.path)
        except OSError:
            return True
        return mine.st_nlink == 0 or (mine.st_ino, mine.st_dev) != (there.st_ino, there.st_dev)

    def _vfd(self) -> int | None:
        try:
            fd = self._file.id.get_vfd_handle() if self._file is not None else None
        except Exception:
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    def _hold_if_unlinked(self) -> int | None:
        """A duplicate of the file's descriptor when its path was lost (it keeps the data alive past close)."""
        if not self.path_lost():
            return None
        try:
            return os.dup(self._vfd())
        except (OSError, TypeError):
            return None

    def close_quietly(self) -> None:
        """Release the file without writing anything more and without raising (for error paths)."""
        self._abort()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def failed(self) -> str | None:
        """Why writing stopped (after a SessionWriteError), else None."""
        return self._failed

    @property
    def run_names(self) -> list[str]:
        return list(self._order)

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._failed is not None:
            raise SessionWriteError(self.path, f"the writer stopped after an earlier error ({self._failed})")
        if self._closed:
            raise SessionWriteError(self.path, "the writer is closed")

    def _run_for_append(self, name: str) -> _RunLayout:
        self._check_open()
        if not self._started:
            raise SessionError(self.path, "call start() before writing rows")
        try:
            return self._runs[name]
        except KeyError:
            raise ValueError(f"no run {name!r} in {self.path} (runs: {', '.join(self._order)})") from None

    def _maybe_flush(self) -> None:
        if self._pending >= self.flush_every_steps or \
                time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def _pending_bytes(self) -> int:
        """Upper bound of the bytes the next flush adds to the file."""
        total = 0
        for run in self._runs.values():
            if run.rows:
                total += 8 * len(run.rows) * (2 + len(run.values)) + 8 * SCALAR_CHUNK_ROWS * (2 + len(run.values))
            if run.probes:
                total += sum(a.nbytes for k, a in run.probes[0].items() if isinstance(a, np.ndarray)) * len(run.probes)
                total += sum(int(np.prod(ds.chunks)) * ds.dtype.itemsize for ds in run.probe_ds.values())
        return total

    def _ensure_space(self) -> None:
        """Stop cleanly, before HDF5 fails half-way through a flush, when the disk is (nearly) full.

        Every run still ``running`` is marked ``stopped`` with a message, the file
        is closed normally, and SessionWriteError is raised. Rows flushed before stay.
        """
        if not any(r.rows or r.probes for r in self._runs.values()):
            return
        free = _free_bytes(os.path.dirname(os.path.abspath(self.path)))
        if free is None:
            return
        needed = self._pending_bytes() + SPACE_RESERVE_BYTES
        if free >= needed:
            return
        reason = (f"disk full: {free / 1e6:.1f} MB free, the next flush needs up to {needed / 1e6:.1f} MB; "
                  "recording stopped, the rows flushed before are kept")
        try:
            for run in self._runs.values():
                run.rows.clear()
                run.probes.clear()
                if _text_of(run.status[()]) == "running":
                    run.status[()] = np.bytes_(b"stopped")
                    run.message[()] = np.bytes_(reason.encode()[:MESSAGE_BYTES])
                    run.status_step[()] = np.int64(_last(run.step))
            self._file["writer/closed"][()] = np.int8(1)
            self._heartbeat()
            self._file.flush()
        except Exception as exc:
            self._fail(exc, "stopping on a full disk")
        self._failed = reason
        self._abort()
        raise SessionWriteError(self.path, reason)

    def _heartbeat(self) -> None:
        self._file["writer/heartbeat"][()] = np.float64(time.time())

    def _flush_rows(self) -> None:
        """Write the buffered rows and probes of every run (no HDF5 flush)."""
        try:
            for run in self._runs.values():
                if run.rows:
                    block = np.array(run.rows, dtype=np.float64)
                    n0 = run.step.shape[0]
                    n1 = n0 + block.shape[0]
                    # values first, the shared step/time columns last
                    for j, ds in enumerate(run.values):
                        ds.resize((n1,))
                        ds[n0:n1] = block[:, 2 + j]
                    run.time.resize((n1,))
                    run.time[n0:n1] = block[:, 1]
                    run.step.resize((n1,))
                    run.step[n0:n1] = np.array([r[0] for r in run.rows], dtype=np.int64)
                    run.rows.clear()
                if run.probes:
                    k = len(run.probes)
                    n0 = run.probe_ds["step"].shape[0]
                    for key, ds in run.probe_ds.items():
                        if key == "step":
                            continue
                        ds.resize(n0 + k, axis=0)
                        ds[n0:n0 + k] = np.stack([p[key] for p in run.probes])
                    ds = run.probe_ds["step"]
                    ds.resize((n0 + k,))
                    ds[n0:n0 + k] = np.array([p["step"] for p in run.probes], dtype=np.int64)
                    run.probes.clear()
        except Exception as exc:
            self._fail(exc, "writing rows")

    def _fail(self, exc: BaseException, doing: str):
        """Record a write failure, release the file, and raise SessionWriteError."""
        reason = _short(exc)
        if isinstance(exc, OSError) and exc.errno is not None:
            reason = f"{os.strerror(exc.errno)} ({reason})"
        self._failed = f"{doing}: {reason}"
        self._abort()
        raise SessionWriteError(self.path, f"writing failed while {doing}: {reason}; "
                                           "recording stopped, the rows flushed before are kept") from None

    def _abort(self) -> None:
        """Close the HDF5 file and the lock without raising.

        After a write failure HDF5 would retry its failed writes when closing (and,
        failing again, crash at interpreter exit). So its file descriptor is first
        pointed at /dev/null: the close then succeeds and the file on disk keeps
        exactly what was flushed before the failure.
        """
        self._closed = True
        f, self._file = self._file, None
        if f is not None:
            if self._failed is not None:
                _detach_fd(f)
            try:
                f.close()
            except Exception:
                pass
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _save_orphan(fd: int, path: str) -> str | None:
    """Copy the closed, unlinked session file behind ``fd`` to ``<path stem>.recovered[-k].h5`` (in its
    folder, or the current one when that is gone); returns where, or None when it cannot be written."""
    stem = os.path.splitext(path)[0]
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        stem = os.path.basename(stem)
    dest, k = f"{stem}.recovered.h5", 1
    while os.path.exists(dest):
        k += 1
        dest = f"{stem}.recovered-{k}.h5"
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        with open(dest, "xb") as out:
            while chunk := os.read(fd, 1 << 20):
                out.write(chunk)
        return dest
    except OSError:
        return None
    finally:
        os.close(fd)


def _detach_fd(f: h5py.File) -> None:
    """Point the HDF5 file's descriptor at /dev/null so nothing more reaches the real file."""
    try:
        fd = f.id.get_vfd_handle()
        if not isinstance(fd, int) or fd < 0:
            return
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except Exception:
        pass


def _free_bytes(folder: str) -> int | None:
    """Bytes free to an unprivileged writer on ``folder``'s file system (None if unknown)."""
    try:
        st = os.statvfs(folder)
    except (AttributeError, OSError):
        return None
    return int(st.f_bavail) * int(st.f_frsize)


def _short(exc: BaseException) -> str:
    """One line about an exception; for HDF5 I/O errors the operating system's reason (e.g. 'No space left')."""
    import re

    m = re.search(r"errno = (\d+), error message = '([^']*)'", str(exc))
    if m:
        return f"{m.group(2)} (errno {m.group(1)})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _change_config(group, changes: dict) -> None:
    """Write ``{field: value}`` into a run's ``config`` group (its JSON and its browsable attributes)."""
    config = json.loads(_text_of(group.attrs["json"]))
    config.update(changes)
    group.attrs["json"] = json.dumps(config, sort_keys=False, default=_json_default)
    for key, value in changes.items():
        _set_browse_attr(group, key, value)


def _text_of(value) -> str:
    return value.decode("utf-8", "replace").rstrip("\x00") if isinstance(value, bytes) else str(value)


def _cut_after(run: _RunLayout, step: int) -> None:
    """Drop run ``run``'s rows, probes and test rows of steps after ``step`` (the step/time columns first,
    so a reader never sees values without their step)."""
    def keep(ds) -> int:
        return int(np.searchsorted(ds[()], step, side="right")) if ds.shape[0] else 0

    n = keep(run.step)
    for ds in [run.step, run.time] + run.values:
        if ds.shape[0] > n:
            ds.resize((n,))
    k = keep(run.probe_ds["step"])
    for key in ["step"] + [key for key in run.probe_ds if key != "step"]:
        if run.probe_ds[key].shape[0] > k:
            run.probe_ds[key].resize(k, axis=0)
    k = keep(run.test["step"])
    for ds in [run.test["step"]] + [ds for key, ds in run.test.items() if key != "step"]:
        if ds.shape[0] > k:
            ds.resize(k, axis=0)
    run.last_step = int(run.step[n - 1]) if n else 0


def _last(ds: h5py.Dataset) -> int:
    n = ds.shape[0]
    return int(ds[n - 1]) if n else 0


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    return str(obj)


def _set_browse_attr(group: h5py.Group, key: str, value) -> None:
    """One attribute per config field, for browsing in HDFView/h5dump (``json`` is authoritative)."""
    if isinstance(value, (bool, np.bool_)):
        group.attrs[key] = np.int8(value)
    elif isinstance(value, (int, float, np.integer, np.floating)):
        group.attrs[key] = value
    elif isinstance(value, str):
        group.attrs[key] = value
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        group.attrs[key] = ",".join(value)
    elif value is None:
        group.attrs[key] = "None"


def _grow_1d(group: h5py.Group, name: str, dtype) -> h5py.Dataset:
    return group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                                chunks=(SCALAR_CHUNK_ROWS,))


def _grow_nd(group: h5py.Group, name: str, row_shape: tuple[int, ...], dtype) -> h5py.Dataset:
    """A dataset growing along axis 0 by rows of ``row_shape``, chunked to about CHUNK_BYTES."""
    itemsize = np.dtype(dtype).itemsize
    row_bytes = itemsize * int(np.prod(row_shape))
    if row_bytes <= CHUNK_BYTES:
        chunk = (max(1, min(64, CHUNK_BYTES // max(row_bytes, 1))),) + tuple(row_shape)
    else:  # one row is bigger than a chunk: split its leading axes
        inner = list(row_shape)
        for ax in range(len(inner)):
            rest = itemsize * int(np.prod(inner[ax + 1:]))
            if rest * 1 <= CHUNK_BYTES:
                inner[ax] = max(1, CHUNK_BYTES // rest)
                break
            inner[ax] = 1
        chunk = (1,) + tuple(min(a, b) for a, b in zip(inner, row_shape))
    return group.create_dataset(name, shape=(0,) + tuple(row_shape), maxshape=(None,) + tuple(row_shape),
                                dtype=dtype, chunks=chunk)


def _as(a, shape: tuple[int, ...], dtype, what: str) -> np.ndarray:
    if a is None:
        raise ValueError(f"probe {what} is required for this run (shape {shape})")
    arr = np.asarray(a)
    if arr.shape != shape:
        raise ValueError(f"probe {what} has shape {arr.shape}, the run's layout needs {shape}")
    with np.errstate(over="ignore"):   # a diverging run's values beyond float16 are stored as ±inf, as they are
        return arr.astype(dtype, copy=True)


def estimate_size(steps: int, probe_every: int, length: int, hidden: int, n_gates: int,
                  n_param_grads: int = 6, cell_state: bool | None = None) -> int:
    """Bytes one run adds to a session file (raw data; metadata and chunk rounding add ~1%).

    Per step: step (int64), time and 3 + ``n_param_grads`` values (float64).
    Per probe: step, time, grad_norm_t, saliency and the spectrum (L float32 each, the spectrum 2L with a
    cell state), h (L*H float16), the gates (G*L*H float16) and their saturation (G float32), the weight
    σ_max (1 + G float32), and c (L*H float16) for a cell with a cell state (default: the LSTM's 4 gates).
    """
    per_step = 8 * (2 + 3 + n_param_grads)
    per_probe = 16 + 12 * length + 2 * length * hidden + 4
    if n_gates:
        per_probe += 2 * n_gates * length * hidden + 8 * n_gates
    if (n_gates == 4) if cell_state is None else cell_state:
        per_probe += 2 * length * hidden + 4 * length
    n_probes = steps // max(1, probe_every)
    return steps * per_step + n_probes * per_probe
