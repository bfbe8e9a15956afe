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

import json
import math
import os
import re
import struct
from typing import Any

import h5py
import numpy as np

from sessions.errors import (
    DamagedFileError,
    EmptyFileError,
    NotASessionError,
    NotHDF5Error,
    RunNotFoundError,
    SchemaError,
    SessionBusyError,
    SessionError,
    SessionIsDirectoryError,
    SessionNotFoundError,
    SessionPermissionError,
    UnsupportedVersionError,
)
from sessions.writer import FORMAT_NAME, FORMAT_VERSION, probe_writer_lock, writer_alive

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAJOR = int(FORMAT_VERSION.split(".")[0])
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")

#: attributes every run group must carry
RUN_ATTRS = ("cell", "param_count", "length", "hidden", "n_gates", "metric_name",
             "higher_is_better", "baseline_loss", "baseline_metric")
#: datasets/groups every run group must hold
RUN_MEMBERS = ("config", "status", "message", "status_step", "params_written", "scalars",
               "scalars/loss/step", "scalars/loss/time", "scalars/loss/value",
               "scalars/metric/value", "scalars/grad_norm/value",
               "probes", "probes/step", "probes/grad_norm_t", "probes/h", "params")
PROBE_ARRAYS = ("grad_norm_t", "h", "gates", "c", "saturation")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``; raises ValueError for anything else."""
    m = _SEMVER.match(str(text).strip())
    if not m:
        raise ValueError(f"not a semantic version: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# --------------------------------------------------------------------------- opening

def check_file(path) -> tuple[str, int]:
    """File-system level checks before HDF5 sees the file; returns (path, superblock offset).

    Raises the SessionError subclass for: missing, directory, unreadable, empty, not HDF5.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SessionNotFoundError(path, "no such file") from None
    except PermissionError:
        raise SessionPermissionError(path, "permission denied: cannot access the file") from None
    except OSError as exc:
        raise SessionError(path, f"cannot access the file: {exc.strerror or exc}") from None
    if os.path.isdir(path):
        raise SessionIsDirectoryError(path, "is a directory, not a session file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if st.st_size == 0 or not head:
                raise EmptyFileError(path, "the file is empty (0 bytes): nothing was ever written to it")
            offset = 0
            found = head == HDF5_SIGNATURE
            while not found and (offset := max(512, offset * 2)) + 8 <= st.st_size:
                fh.seek(offset)  # HDF5 allows a user block of 512 * 2**k bytes before the superblock
                found = fh.read(8) == HDF5_SIGNATURE
    except PermissionError:
        raise SessionPermissionError(path, "permission denied: cannot read the file") from None
    except IsADirectoryError:
        raise SessionIsDirectoryError(path, "is a directory, not a session file") from None
    except OSError as exc:
        raise SessionError(path, f"cannot read the file: {exc.strerror or exc}") from None
    if not found:
        raise NotHDF5Error(path, f"not an HDF5 file (no HDF5 signature; it starts with {head[:8]!r}), "
                                 "so not an LSTM Explorer session")
    return path, offset


def read_superblock(path: str, offset: int) -> dict | None:
    """Version, consistency flags and end-of-file address of an HDF5 superblock v2/v3 (else None)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        b = fh.read(48)
    if len(b) < 12 or b[8] not in (2, 3) or b[9] not in (4, 8):
        return None
    size = b[9]
    if len(b) < 12 + 3 * size:
        return None
    fmt = "<" + ("I" if size == 4 else "Q") * 3
    base, _ext, eoa = struct.unpack(fmt, b[12:12 + 3 * size])
    undefined = (1 << (8 * size)) - 1
    return {"version": b[8], "flags": b[11], "base": offset if base == undefined else base, "eoa": eoa}


_LIBHDF5 = None


def _fapl_single_read_attempt():
    """A file-access property list with one metadata read attempt (None if not settable).

    In SWMR-read mode HDF5 retries a metadata read whose checksum fails up to 100
    times with growing sleeps, because a live writer may be half-way through a
    flush. For a file whose writer is dead nothing will change, and a damaged
    file would otherwise take many minutes to fail. h5py does not expose
    ``H5Pset_metadata_read_attempts``, so it is called through ctypes on the
    HDF5 library h5py has loaded.
    """
    global _LIBHDF5
    try:
        import ctypes

        if _LIBHDF5 is None:
            _LIBHDF5 = False
            with open("/proc/self/maps") as maps:
                for line in maps:
                    lib = line.split()[-1] if line.split() else ""
                    name = os.path.basename(lib)
                    if name.startswith("libhdf5") and not name.startswith("libhdf5_hl") and ".so" in name:
                        _LIBHDF5 = ctypes.CDLL(lib)
                        break
        if not _LIBHDF5:
            return None
        fn = _LIBHDF5.H5Pset_metadata_read_attempts
        fn.argtypes, fn.restype = [ctypes.c_int64, ctypes.c_uint], ctypes.c_int
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
        if fn(fapl.id, 1) < 0:
            return None
        return fapl
    except Exception:
        return None


def _open_swmr(path: str, settled: bool) -> h5py.File:
    fapl = _fapl_single_read_attempt() if settled else None
    if fapl is None:
        return h5py.File(path, "r", swmr=True, locking="best-effort")
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def open_h5(path) -> tuple[h5py.File, bool, bool]:
    """Open ``path`` read-only with HDF5; returns (file, swmr, short).

    A file whose writer closed it normally opens in plain read mode; a file
    still marked open-for-write (a live writer, or one that was killed) opens in
    SWMR-read mode, which sees every row the writer flushed. ``short`` is True
    when the file is shorter than its superblock says (a writer that died during
    a flush, or a truncated copy).
    """
    path, offset = check_file(path)
    size = os.path.getsize(path)
    try:
        sb = read_superblock(path, offset)
    except OSError:
        sb = None
    marked_open = bool(sb and sb["flags"] & 0x1)
    swmr_written = bool(sb and sb["flags"] & 0x4)
    live = bool(probe_writer_lock(path)) if marked_open else False
    short = bool(sb is not None and size < sb["base"] + sb["eoa"])
    truncated = DamagedFileError(
        path, f"the file is truncated: it has {size} bytes but its HDF5 header says "
              f"{sb['base'] + sb['eoa'] if sb else '?'}; it was cut off (an incomplete copy or download?) "
              "and cannot be read")
    if short and not marked_open:
        raise truncated
    if marked_open and not swmr_written:
        if live:
            raise SessionBusyError(path, "another process is still creating this file (its layout is not "
                                         "finished, so it cannot be shared yet); try again in a moment")
        raise DamagedFileError(path, "the file was left incomplete: its writer stopped before the layout "
                                     "was finished, so it holds no readable runs")
    errors = []
    for swmr in ((True, False) if marked_open else (False, True)):
        try:
            if swmr:
                return _open_swmr(path, settled=not live), True, short
            return h5py.File(path, "r", locking="best-effort"), False, short
        except PermissionError:
            raise SessionPermissionError(path, "permission denied: cannot read the file") from None
        except (OSError, RuntimeError, ValueError) as exc:
            errors.append(exc)
    text = " ".join(str(e) for e in errors).lower()
    if short or "truncated" in text:
        raise truncated from None
    if "lock" in text:
        raise SessionBusyError(path, "another process holds the file open exclusively (still creating "
                                     "it?); try again in a moment") from None
    raise DamagedFileError(path, f"the file has an HDF5 signature but is damaged and cannot be opened "
                                 f"({_describe(errors[0])})") from None


def check_format(f: h5py.File, path: str) -> tuple[str, tuple[int, int, int]]:
    """Check the root ``format`` and ``format_version``; returns (version text, parsed)."""
    try:
        fmt = f.attrs.get("format")
        ver = f.attrs.get("format_version")
    except Exception as exc:
        raise DamagedFileError(path, f"cannot read the root attributes ({_describe(exc)})") from None
    if fmt is None:
        raise NotASessionError(path, "an HDF5 file, but not an LSTM Explorer session "
                                     "(no root attribute 'format')")
    if _text(fmt) != FORMAT_NAME:
        raise NotASessionError(path, f"an HDF5 file of format {_text(fmt)!r}, not an LSTM Explorer "
                                     f"session ({FORMAT_NAME!r})")
    if ver is None:
        raise SchemaError(path, "the root attribute 'format_version' is missing")
    try:
        parsed = parse_version(_text(ver))
    except ValueError:
        raise SchemaError(path, f"the root attribute format_version is {_text(ver)!r}, not a version "
                                "like 1.0.0") from None
    if parsed[0] > _MAJOR:
        raise UnsupportedVersionError(
            path, f"session format version {_text(ver)} is newer than this program reads "
                  f"(format {FORMAT_VERSION}, major version {_MAJOR}); upgrade lstm-explorer to open it")
    if parsed[0] < _MAJOR:
        raise UnsupportedVersionError(
            path, f"session format version {_text(ver)} is older than this program reads "
                  f"(format {FORMAT_VERSION}, major version {_MAJOR})")
    return _text(ver), parsed


def structure_problems(f: h5py.File) -> list[str]:
    """Missing groups, datasets and attributes (everything a reader relies on)."""
    problems = []
    for attr in ("software_version", "created"):
        if attr not in f.attrs:
            problems.append(f"root attribute '{attr}' is missing")
    for member in ("writer", "writer/heartbeat", "writer/closed", "runs"):
        if member not in f:
            problems.append(f"missing /{member}")
    if "writer" in f:
        for attr in ("hostname", "pid", "lock", "heartbeat_timeout_s"):
            if attr not in f["writer"].attrs:
                problems.append(f"/writer lacks attribute '{attr}'")
    if "runs" in f:
        for name, g in f["runs"].items():
            if not isinstance(g, h5py.Group):
                problems.append(f"/runs/{name} is not a group")
                continue
            for attr in RUN_ATTRS:
                if attr not in g.attrs:
                    problems.append(f"/runs/{name} lacks attribute '{attr}'")
            for member in RUN_MEMBERS:
                if member not in g:
                    problems.append(f"missing /runs/{name}/{member}")
            if "config" in g and "json" not in g["config"].attrs:
                problems.append(f"/runs/{name}/config lacks attribute 'json'")
            if "n_gates" in g.attrs and int(g.attrs["n_gates"]) and "probes" in g:
                for member in ("gates", "c", "saturation"):
                    if member not in g["probes"]:
                        problems.append(f"missing /runs/{name}/probes/{member} (an LSTM run has gates)")
    return problems


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
        self.path = os.fspath(path)
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
                more = f" (and {len(problems) - 1} more problem(s); run validate for all)" if len(problems) > 1 else ""
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
    def writer_closed(self) -> bool:
        """True once the writer closed the file normally."""
        return bool(self._closed_ds[()])

    @property
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

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Session {self.path!r} format {getattr(self, 'format_version', '?')} runs {self.run_names}>"


class Run:
    """One run (one cell) in a session file."""

    def __init__(self, session: Session, name: str, group: h5py.Group):
        self._session = session
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
        try:
            self.config: dict[str, Any] = json.loads(_text(group["config"].attrs["json"]))
        except ValueError:
            raise SchemaError(session.path, f"/runs/{name}/config: attribute 'json' is not valid JSON") from None
        self._status = group["status"]
        self._message = group["message"]
        self._status_step = group["status_step"]
        self._params_written = group["params_written"]
        self._series: dict[str, h5py.Group] = {}
        group["scalars"].visititems(self._collect_series)
        try:
            grads = [f"grad_norm/{p}" for p in json.loads(_text(a.get("param_grad_names", "[]")))]
        except (ValueError, TypeError):
            grads = []
        order = ["loss", "metric", "grad_norm", "wall_time"] + grads
        self.scalar_names = [n for n in order if n in self._series] + \
                            sorted(n for n in self._series if n not in order)
        self._probes = group["probes"]

    def _rows(self, ds: h5py.Dataset) -> int:
        """Rows of ``ds`` whose data lies inside the file (all of them unless the file is short)."""
        cap = self._session._caps.get(ds.name) if self._session._caps is not None else None
        if cap is None and self._session._caps is not None:
            cap = self._session._caps[ds.name] = _rows_inside(ds, self._session._size)
        return ds.shape[0] if cap is None else min(ds.shape[0], cap)

    def _collect_series(self, name: str, obj) -> None:
        if isinstance(obj, h5py.Group) and "value" in obj and "step" in obj:
            self._series[name] = obj

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
    def message(self) -> str:
        m = _text(self._message[()]).rstrip("\x00")
        if not m and self.stored_status == "running" and self.status == "interrupted":
            if self._session.writer_closed:
                return "the writer closed the file before the run finished"
            return ("the writing process stopped (killed or crashed) before the run finished; "
                    "the steps it had flushed are kept")
        return m

    @property
    def status_step(self) -> int:
        return int(self._status_step[()])

    # ---------------------------------------------------------------- scalars
    def _series_group(self, name: str) -> h5py.Group:
        try:
            return self._series[name]
        except KeyError:
            raise KeyError(f"run {self.name!r} has no scalar series {name!r} "
                           f"(has: {', '.join(self.scalar_names)})") from None

    def scalar(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(step int64 (N,), time float64 (N,), value float64 (N,))`` of one series."""
        g = self._series_group(name)
        st, tm, va = g["step"], g["time"], g["value"]
        n = _valid_rows(st, min(self._rows(st), self._rows(tm), self._rows(va)))
        return (st[:n].astype(np.int64, copy=False), tm[:n].astype(np.float64, copy=False),
                va[:n].astype(np.float64, copy=False))

    def __len__(self) -> int:
        g = self._series["loss"]
        n = min(self._rows(g["step"]), self._rows(g["time"]), self._rows(g["value"]))
        return _valid_rows(g["step"], n)

    @property
    def n_rows(self) -> int:
        """Number of recorded steps (rows of every scalar series)."""
        return len(self)

    @property
    def steps(self) -> int:
        """The last recorded step (0 if none)."""
        n = len(self)
        return int(self._series["loss"]["step"][n - 1]) if n else 0

    @property
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
        n = min(self._rows(ds) for ds in self._probes.values() if isinstance(ds, h5py.Dataset)
                and ds.name.rsplit("/", 1)[-1] in ("step", "time") + PROBE_ARRAYS)
        return _valid_rows(self._probes["step"], n)

    @property
    def n_probes(self) -> int:
        return self._n_probes()

    @property
    def probe_steps(self) -> np.ndarray:
        """Steps at which probes were taken, int64 (P,)."""
        return self._probes["step"][: self._n_probes()].astype(np.int64, copy=False)

    def probe(self, i: int) -> dict[str, Any]:
        """Probe ``i`` (negative counts from the end): step, time, grad_norm_t (L,), h (L,H),
        gates (4,L,H) | None, c (L,H) | None, saturation (4,) | None; arrays as float32."""
        n = self._n_probes()
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"probe index {i} out of range: run {self.name!r} has {n} probe(s)")
        out: dict[str, Any] = {"step": int(self._probes["step"][j])}
        if "time" in self._probes:
            out["time"] = float(self._probes["time"][j])
        for key in PROBE_ARRAYS:
            out[key] = self._probes[key][j].astype(np.float32) if key in self._probes else None
        return out

    def probe_series(self, name: str) -> np.ndarray:
        """One probe array over all probes, as stored: ``grad_norm_t`` (P, L) float32,
        ``saturation`` (P, 4) float32, ``h``/``c`` (P, L, H) float16, ``gates`` (P, 4, L, H)
        float16, ``step`` (P,) int64, ``time`` (P,) float64."""
        if name not in self._probes or not isinstance(self._probes[name], h5py.Dataset):
            if name in PROBE_ARRAYS:
                raise KeyError(f"run {self.name!r} ({self.cell}) has no probe array {name!r}")
            raise KeyError(f"unknown probe array {name!r}: one of step, time, {', '.join(PROBE_ARRAYS)}")
        return self._probes[name][: self._n_probes()]

    # ---------------------------------------------------------------- params
    @property
    def params(self) -> dict[str, np.ndarray] | None:
        """Final parameters (PyTorch state_dict names and shapes), None until written."""
        if not int(self._params_written[()]):
            return None
        return {k: ds[()] for k, ds in self._g["params"].items() if isinstance(ds, h5py.Dataset)}

    @property
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
