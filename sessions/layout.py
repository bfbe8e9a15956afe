"""The session layout a reader relies on: the root format and version, and every run's
groups, datasets and attributes with their types and shapes (numpy + h5py only).

:func:`structure_problems` lists what is missing or malformed; the reader refuses a
file with any (naming the first), ``sessions.validate`` reports them all. Only
metadata is read here (types, shapes, attributes), never the rows, so it stays cheap
for files of any length.
"""
from __future__ import annotations

import json
import re

import h5py
import numpy as np

from sessions.errors import DamagedFileError, NotASessionError, SchemaError, UnsupportedVersionError
from sessions.errors import describe as _describe
from sessions.writer import FORMAT_NAME, FORMAT_VERSION

_MAJOR = int(FORMAT_VERSION.split(".")[0])
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")

PROBE_ARRAYS = ("grad_norm_t", "h", "gates", "c", "saturation", "saliency", "spectrum", "weight_sigma")


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
    """What a reader relies on that is missing or malformed: groups, datasets and attributes,
    with their types and shapes (metadata only). An empty list means the layout is sound."""
    problems = file_problems(f)
    for where, g in run_groups(f, problems):
        problems.extend(run_problems(where, g))
    return problems


def file_problems(f: h5py.File) -> list[str]:
    """The layout problems of the root attributes, ``/writer`` and ``/runs`` (not of the runs in it)."""
    problems: list[str] = []
    for attr in ("software_version", "created"):
        if attr not in f.attrs:
            problems.append(f"root attribute '{attr}' is missing")
    w = _member(f, "writer", h5py.Group, "/", problems)
    if w is not None:
        for name in ("heartbeat", "closed"):
            _dataset(w, name, "/writer", problems, shape=())
        for attr, check in (("hostname", _is_text), ("pid", _is_int), ("lock", _is_text),
                            ("heartbeat_timeout_s", _is_real)):
            _attr(w, attr, "/writer", check, problems)
    _member(f, "runs", h5py.Group, "/", problems)
    return problems


def run_groups(f: h5py.File, problems: list[str]) -> list[tuple[str, h5py.Group]]:
    """``("/runs/NAME", group)`` of every run; a member of /runs that is not a group goes to ``problems``."""
    runs = f.get("runs")
    if not isinstance(runs, h5py.Group):
        return []
    out = []
    for name in _keys(runs, "/runs", problems):
        g = _member(runs, name, h5py.Group, "/runs", problems)
        if g is not None:
            out.append((f"/runs/{name}", g))
    return out


def run_problems(where: str, g: h5py.Group) -> list[str]:
    """The layout problems of one run group (see :func:`structure_problems`)."""
    out: list[str] = []
    ok = {}
    for attr, check in (("cell", _is_text), ("metric_name", _is_text), ("param_count", _is_count),
                        ("length", _is_size), ("hidden", _is_size), ("n_gates", _is_gates),
                        ("higher_is_better", _is_int), ("baseline_loss", _is_real),
                        ("baseline_metric", _is_real)):
        ok[attr] = _attr(g, attr, where, check, out)
    config = _member(g, "config", h5py.Group, where, out)
    if config is not None and _attr(config, "json", f"{where}/config", _is_text, out):
        try:
            if not isinstance(json.loads(_text(config.attrs["json"])), dict):
                out.append(f"{where}/config attribute 'json' is not a JSON object")
        except ValueError:
            out.append(f"{where}/config attribute 'json' is not valid JSON")
    for name, kinds in (("status", "SOU"), ("message", "SOU"), ("status_step", "iu"), ("params_written", "iub")):
        _dataset(g, name, where, out, shape=(), kinds=kinds)
    _member(g, "params", h5py.Group, where, out)
    scalars = _member(g, "scalars", h5py.Group, where, out)
    if scalars is not None:
        try:
            series = series_names(scalars)
        except Exception as exc:
            series = []
            out.append(f"cannot list {where}/scalars ({_describe(exc)})")
        for name in ("loss", "metric", "grad_norm"):
            if name not in series:
                out.append(f"missing {where}/scalars/{name}/value")
        for name in series:
            sg = _member(scalars, name, h5py.Group, f"{where}/scalars", out)
            for col, kinds in (("step", "iu"), ("time", "fiu"), ("value", "fiu")):
                if sg is not None:
                    _dataset(sg, col, f"{where}/scalars/{name}", out, ndim=1, kinds=kinds)
    probes = _member(g, "probes", h5py.Group, where, out)
    if probes is not None:
        _dataset(probes, "step", f"{where}/probes", out, ndim=1, kinds="iu")
        if "time" in probes:
            _dataset(probes, "time", f"{where}/probes", out, ndim=1, kinds="fiu")
        if ok["length"] and ok["hidden"] and ok["n_gates"]:
            L, H, G = int(g.attrs["length"]), int(g.attrs["hidden"]), int(g.attrs["n_gates"])
            rows = {"grad_norm_t": (L,), "h": (L, H)}
            if G:
                rows.update(gates=(G, L, H), saturation=(G,))
            if "c" in probes:   # a cell state (1.1: only a cell with one has it)
                rows["c"] = (L, H)
            if "saliency" in probes:   # 1.3
                rows["saliency"] = (L,)
            if "spectrum" in probes:   # 1.4: one column per state (h, and c with a cell state)
                rows["spectrum"] = (L, 1 + ("c" in probes))
            if "weight_sigma" in probes:   # 1.4
                rows["weight_sigma"] = (1 + G,)
            for name, row in rows.items():
                _dataset(probes, name, f"{where}/probes", out, row=row,
                         why=f" (a run with {G} gates has them)" if name in ("gates", "saturation") else "")
    if "probe_input" in g and ok["length"]:   # 1.3: the probe sequence, (L, n_in)
        ds = _dataset(g, "probe_input", where, out, ndim=2, kinds="f")
        if ds is not None and ds.shape[0] != int(g.attrs["length"]):
            out.append(f"{where}/probe_input has {ds.shape[0]} rows, expected L={int(g.attrs['length'])}")
    for name in ("solved_step", "solved_sequences"):   # 1.2
        if name in g:
            _dataset(g, name, where, out, shape=(), kinds="iu")
    test = _member(g, "test", h5py.Group, where, out) if "test" in g else None   # 1.2: held-out test evaluations
    if test is not None and "step" in test:
        for col, kinds in (("step", "iu"), ("time", "fiu"), ("loss", "fiu"), ("metric", "fiu"), ("wrong", "iu"),
                           ("final", "iub")):
            _dataset(test, col, f"{where}/test", out, ndim=1, kinds=kinds)
    return out


def series_names(scalars: h5py.Group) -> list[str]:
    """The scalar series under a run's ``scalars`` group: every group holding a ``value``. Found by
    link names alone (no object is opened), so it stays cheap however many series there are."""
    names: list[str] = []
    scalars.visit_links(lambda n: names.append(n[:-6]) if n.endswith("/value") else None)
    return names


# ---------------------------------------------------------------------------------- checks
def _keys(g: h5py.Group, where: str, out: list[str]) -> list[str]:
    try:
        return list(g.keys())
    except Exception as exc:
        out.append(f"cannot list {where} ({_describe(exc)})")
        return []


def _member(g: h5py.Group, name: str, kind: type, where: str, out: list[str]):
    """``g[name]`` if it is a ``kind`` (Group or Dataset), else None with the problem in ``out``."""
    path = f"{where.rstrip('/')}/{name}"
    try:
        obj = g.get(name)
    except Exception as exc:  # a damaged object header, a dangling external link...
        out.append(f"cannot read {path} ({_describe(exc)})")
        return None
    if obj is None:
        out.append(f"missing {path}")
        return None
    if not isinstance(obj, kind):
        out.append(f"{path} is a {type(obj).__name__.lower()}, not a {kind.__name__.lower()}")
        return None
    return obj


_KIND_WORDS = {"iu": "integer", "fiu": "numeric", "iub": "integer", "SOU": "string"}


def _dataset(g, name, where, out, *, shape=None, ndim=None, row=None, kinds="fiu", why=""):
    """Check ``g[name]``: a dataset of dtype kind ``kinds`` and of ``shape``, ``ndim`` dimensions
    or rows of shape ``row``; the problem goes to ``out``."""
    n0 = len(out)
    ds = _member(g, name, h5py.Dataset, where, out)
    if ds is None:
        if why and len(out) > n0:
            out[-1] += why
        return None
    path = f"{where}/{name}"
    try:
        dt, sh = ds.dtype, ds.shape
    except Exception as exc:
        out.append(f"cannot read {path} ({_describe(exc)})")
        return None
    if sh is None:
        out.append(f"{path} has no data space (an empty dataset)")
        return None
    if dt.kind not in kinds or (dt.kind == "O" and h5py.check_string_dtype(dt) is None):
        out.append(f"{path} holds {dt}, expected {_KIND_WORDS.get(kinds, kinds)} values")
    elif shape is not None and sh != shape:
        out.append(f"{path} has shape {sh}, expected {shape or 'a single value'}")
    elif ndim is not None and len(sh) != ndim:
        out.append(f"{path} has shape {sh}, expected {ndim} dimension(s)")
    elif row is not None and sh[1:] != row:
        out.append(f"{path} has shape {sh}, expected (P,) + {row} (P probes)")
    else:
        return ds
    return None


def _attr(obj, key: str, where: str, check, out: list[str]) -> bool:
    try:
        if key not in obj.attrs:
            out.append(f"{where} lacks attribute '{key}'")
            return False
        value = obj.attrs[key]
    except Exception as exc:
        out.append(f"cannot read attribute '{key}' of {where} ({_describe(exc)})")
        return False
    problem = check(value)
    if problem:
        out.append(f"{where} attribute '{key}' is {_short(value)}: {problem}")
        return False
    return True


def _short(value) -> str:
    text = repr(value.item() if isinstance(value, np.ndarray) and value.shape == () else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _scalar(value):
    if isinstance(value, np.ndarray):
        return value.item() if value.shape == () else None
    return value.item() if isinstance(value, np.generic) else value


def _is_text(value) -> str:
    return "" if isinstance(_scalar(value), (str, bytes)) else "expected text"


def _is_int(value) -> str:
    v = _scalar(value)
    return "" if isinstance(v, (int, bool)) else "expected an integer"


def _is_real(value) -> str:
    v = _scalar(value)
    return "" if isinstance(v, (int, float)) and not isinstance(v, bool) else "expected a number"


def _is_count(value) -> str:
    return _is_int(value) or ("" if _scalar(value) >= 0 else "expected a count >= 0")


def _is_size(value) -> str:
    return _is_int(value) or ("" if 1 <= _scalar(value) <= 1 << 31 else "expected a size >= 1")


def _is_gates(value) -> str:
    return _is_int(value) or ("" if 0 <= _scalar(value) <= 64 else "expected a number of gates (0 RNN, 4 LSTM, 3 GRU)")
