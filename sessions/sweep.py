"""The sweep file ``sweep.h5``: one row per finished (cell, T, seed) run of a sweep (numpy + h5py only).

Layout (format ``lstm-explorer-sweep``, version 1.0)::

    /                      attrs: format, format_version, software, updated (ISO time),
                                  config (JSON: the sweep's plan and shared training config)
    /runs/<column>         one 1-D dataset per column of :data:`COLUMNS`, all the same length

A row is written for every run that ended (completed, diverged, stopped, failed).
The file is rewritten whole after each finished run: written to a temporary file
in the same folder, then moved over the old one with :func:`os.replace`, so a
reader (or a crash) never sees a half-written file.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from sessions.errors import (
    H5_READ_ERRORS,
    DamagedFileError,
    EmptyFileError,
    NotHDF5Error,
    SchemaError,
    SessionError,
    SessionIsDirectoryError,
    SessionNotFoundError,
    SessionPermissionError,
    SessionWriteError,
    UnsupportedVersionError,
    describe,
)
from sessions.h5file import check_global_heaps

SWEEP_FORMAT_NAME = "lstm-explorer-sweep"
SWEEP_FORMAT_VERSION = "1.2"
_MAJOR = 1

#: column -> numpy dtype of the ``runs`` table (strings are stored as UTF-8 variable length)
COLUMNS: dict[str, Any] = {
    "cell": str,             # "rnn" | "lstm"
    "seq_len": np.int64,     # the lag T
    "seed": np.int64,
    "status": str,           # completed | diverged | stopped | interrupted | failed
    "message": str,          # why (diverged / failed), else ""
    "final_loss": np.float64,    # mean loss of the last 50 steps
    "final_metric": np.float64,  # mean metric of the last 50 steps
    "solved": np.int8,       # 1 when the task's solved rule holds for final_metric
    "steps": np.int64,       # steps trained
    "steps_per_s": np.float64,
    "ms_per_step": np.float64,
    "param_count": np.int64,
    "decay_ratio": np.float64,   # ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at the last probe
    "baseline_metric": np.float64,  # chance level of the metric
    "session": str,          # session file name, relative to the sweep file's folder
    "variant": str,          # (1.1) the --vary settings of this run, e.g. "lr=0.01 hidden=32"; "" without --vary
    "solved_step": np.int64,       # (1.2) step at which the stop rule first held; 0 not solved; -1 not recorded
    "solved_sequences": np.int64,  # (1.2) training sequences by then (step x batch); 0 not solved; -1 not recorded
    "test_n": np.int64,            # (1.2) held-out test sequences evaluated at the end (0: none)
    "test_loss": np.float64,       # (1.2) loss over the test set
    "test_metric": np.float64,     # (1.2) metric over the test set
    "test_wrong": np.int64,        # (1.2) test sequences wrong under the paper's rule; -1 without a rule
    "wall_s": np.float64,          # (1.2) seconds the run trained
}
#: columns added after 1.0 -> the value a file without them holds
LATER_COLUMNS: dict[str, Any] = {"variant": "", "solved_step": -1, "solved_sequences": -1, "test_n": 0,
                                 "test_loss": math.nan, "test_metric": math.nan, "test_wrong": -1,
                                 "wall_s": math.nan}




class NotASweepError(SessionError):
    """A valid HDF5 file that is not an LSTM Explorer sweep file."""


@dataclass
class SweepResult:
    """What :func:`read_sweep` returns.

    ``runs`` holds one dict per row with the keys of :data:`COLUMNS`, plus
    ``session_path`` (absolute path of the run's session file).
    """

    path: str
    config: dict
    runs: list[dict] = field(default_factory=list)
    format_version: str = SWEEP_FORMAT_VERSION
    updated: str = ""

    @property
    def directory(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def column(self, name: str) -> np.ndarray:
        return np.array([r[name] for r in self.runs])


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def write_sweep(path, config: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> None:
    """Write ``sweep.h5`` atomically (temporary file + ``os.replace``).

    ``runs``: dicts with (at least) the keys of :data:`COLUMNS`; missing numbers become NaN/0.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    rows = list(runs)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sweep-", suffix=".h5.tmp", dir=folder)
        os.close(fd)
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)   # mkstemp makes 0600; give the usual file mode
    except PermissionError:
        raise SessionPermissionError(path, f"permission denied: cannot write in folder {folder}") from None
    except OSError as exc:
        raise SessionWriteError(path, f"cannot write the sweep file: {exc}") from None
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = SWEEP_FORMAT_NAME
            f.attrs["format_version"] = SWEEP_FORMAT_VERSION
            f.attrs["software"] = "lstm-explorer"
            f.attrs["updated"] = _now_iso()
            f.attrs["config"] = json.dumps(dict(config), default=_json_default)
            g = f.create_group("runs")
            g.attrs["n_runs"] = np.int64(len(rows))
            for name, kind in COLUMNS.items():
                values = [r.get(name) for r in rows]
                if kind is str:
                    data = np.array(["" if v is None else str(v) for v in values], dtype=object)
                    g.create_dataset(name, data=data, dtype=h5py.string_dtype("utf-8"))
                elif kind is np.float64:
                    data = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
                    g.create_dataset(name, data=data)
                else:
                    data = np.array([0 if v is None else int(v) for v in values], dtype=kind)
                    g.create_dataset(name, data=data)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SessionWriteError(path, f"cannot write the sweep file: {exc}") from None


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    return str(o)


def is_sweep_file(path) -> bool:
    """True when ``path`` is a readable HDF5 file whose ``format`` is the sweep format."""
    try:
        check_global_heaps(os.fspath(path))
        with h5py.File(os.fspath(path), "r") as f:
            return _text(f.attrs.get("format", "")) == SWEEP_FORMAT_NAME
    except Exception:
        return False


def _check_path(path: str) -> None:
    if not os.path.lexists(path):
        raise SessionNotFoundError(path, "no such file; give the sweep.h5 written by `lstm-explorer sweep --out DIR`")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "sweep.h5")):
            raise SessionIsDirectoryError(path, f"is a directory; did you mean {os.path.join(path, 'sweep.h5')}?")
        raise SessionIsDirectoryError(path, "is a directory, not a sweep file")
    if not os.access(path, os.R_OK):
        raise SessionPermissionError(path, "permission denied: cannot read the file")
    if os.path.getsize(path) == 0:
        raise EmptyFileError(path, "the file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head != b"\x89HDF\r\n\x1a\n":
        # HDF5 may also put the signature at 512, 1024, ... (user block); let h5py decide
        if not h5py.is_hdf5(path):
            raise NotHDF5Error(path, "is not an HDF5 file, so not a sweep file")
    check_global_heaps(path)   # a damaged one would hang HDF5


def read_sweep(path) -> SweepResult:
    """Read ``sweep.h5``; raises a :class:`~sessions.errors.SessionError` subclass naming the problem."""
    path = os.fspath(path)
    _check_path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DamagedFileError(path, f"HDF5 cannot open the file (truncated or corrupt): {describe(exc)}") from None
    try:
        with f:
            return _read(f, path)
    except SessionError:
        raise
    except H5_READ_ERRORS as exc:  # a damaged object header or data chunk, a dangling link...
        raise DamagedFileError(path, f"the sweep file is damaged and cannot be read ({describe(exc)})") from None


def _read(f: h5py.File, path: str) -> SweepResult:
    fmt = _text(f.attrs.get("format", ""))
    if fmt != SWEEP_FORMAT_NAME:
        what = f"format {fmt!r}" if fmt else "no 'format' attribute"
        raise NotASweepError(path, f"is not an LSTM Explorer sweep file ({what}); "
                                   "sweep files are written by `lstm-explorer sweep`")
    version = _text(f.attrs.get("format_version", ""))
    m = re.match(r"^(\d+)\.\d+(\.\d+)?$", version)
    if not m:
        raise SchemaError(path, f"the root attribute format_version is {version[:40]!r}, not a version like "
                                f"{SWEEP_FORMAT_VERSION}")
    if int(m.group(1)) != _MAJOR:
        raise UnsupportedVersionError(path, f"sweep format version {version} is "
                                            f"{'newer' if int(m.group(1)) > _MAJOR else 'older'} than this reader "
                                            f"reads ({SWEEP_FORMAT_VERSION}); use a matching lstm-explorer")
    try:
        config = json.loads(_text(f.attrs.get("config", "{}")))
    except ValueError:
        raise SchemaError(path, "root attribute 'config' is not valid JSON") from None
    problem = _config_problem(config)
    if problem:
        raise SchemaError(path, f"root attribute 'config' {problem}")
    g = f.get("runs")
    if not isinstance(g, h5py.Group):
        raise SchemaError(path, "has no /runs table")
    missing = [c for c in COLUMNS if c not in g and c not in LATER_COLUMNS]
    if missing:
        raise SchemaError(path, f"/runs lacks column(s): {', '.join(missing)}")
    cols = {}
    for name, kind in COLUMNS.items():
        if name not in g:
            continue
        ds = g[name]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
            raise SchemaError(path, f"/runs/{name} is not a column (a 1-D dataset)")
        text = ds.dtype.kind in "SU" or h5py.check_string_dtype(ds.dtype) is not None
        if text != (kind is str) or (not text and ds.dtype.kind not in "biuf"):
            raise SchemaError(path, f"/runs/{name} holds {ds.dtype}, expected "
                                    f"{'text' if kind is str else 'numbers'}")
        data = ds[()]
        if kind is str:
            cols[name] = [_text(v) for v in data]
        elif kind is np.float64:
            cols[name] = [float(v) for v in data]
        else:
            if ds.dtype.kind == "f" and not np.all(np.isfinite(data)):
                raise SchemaError(path, f"/runs/{name} holds non-finite values, expected integers")
            cols[name] = [int(v) for v in data]
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise SchemaError(path, "the /runs columns have different lengths")
    bad = [T for T in cols["seq_len"] if T < 1]
    if bad:
        raise SchemaError(path, f"/runs/seq_len holds {bad[0]}: lags are >= 1")
    n = lengths.pop() if lengths else 0
    folder = os.path.dirname(os.path.abspath(path))
    runs = []
    for i in range(n):
        row = {name: cols[name][i] if name in cols else LATER_COLUMNS[name] for name in COLUMNS}
        row["solved"] = bool(row["solved"])
        row["session_path"] = os.path.join(folder, row["session"]) if row["session"] else ""
        runs.append(row)
    return SweepResult(path=path, config=config, runs=runs, format_version=version,
                       updated=_text(f.attrs.get("updated", "")))


def _config_problem(config) -> str:
    """What is wrong with a sweep's config document ("" if nothing)."""
    if not isinstance(config, dict):
        return f"is a JSON {type(config).__name__}, not an object"
    for key, kind in (("train", dict), ("cells", list), ("seq_lens", list)):
        if key in config and not isinstance(config[key], kind):
            return f"has {key!r} = {str(config[key])[:40]!r}, not a JSON {'object' if kind is dict else 'list'}"
    return ""
