"""Check a file against ``sessions/SCHEMA.md`` and list every problem found."""
from __future__ import annotations

import json

import h5py
import numpy as np

from sessions.errors import H5_READ_ERRORS, NotASessionError, SchemaError, UnsupportedVersionError, describe
from sessions.h5file import open_h5
from sessions.layout import _text, check_format, file_problems, run_groups, run_problems, series_names
from sessions.writer import STATUSES



def validate(path) -> list[str]:
    """Problems of the session file at ``path`` (an empty list means valid).

    Raises :class:`~sessions.errors.SessionError` only when the file cannot be
    opened at all (missing, a directory, no permission, empty, not HDF5,
    truncated). A foreign HDF5 file, a newer major version, a missing or
    malformed group, dataset or attribute, and data that cannot be read are
    reported as problems.
    """
    f, _, _ = open_h5(path)
    try:
        try:
            check_format(f, str(path))
        except (NotASessionError, UnsupportedVersionError, SchemaError) as exc:
            return [exc.problem]
        try:
            problems = file_problems(f)
            groups = run_groups(f, problems)
        except H5_READ_ERRORS as exc:
            return [f"cannot read the file's groups and attributes ({describe(exc)})"]
        try:
            closed = bool(f["writer/closed"][()])
        except H5_READ_ERRORS:
            closed = True    # (reported above) check as for a finished file
        try:
            problems.extend(_order_problems(f["runs"]) if isinstance(f.get("runs"), h5py.Group) else [])
        except H5_READ_ERRORS as exc:
            problems.append(f"cannot read /runs ({describe(exc)})")
        for where, g in groups:
            try:
                layout = run_problems(where, g)
            except H5_READ_ERRORS as exc:
                layout = [f"{where}: cannot read its groups and attributes ({describe(exc)})"]
            problems.extend(layout)
            for check in (_status_problems, _scalar_problems, _probe_problems, _param_problems):
                try:
                    problems.extend(check(where, g, closed))
                except H5_READ_ERRORS + (AttributeError,) as exc:   # a group where a dataset belongs...
                    if not layout:   # otherwise the layout problems above say why
                        problems.append(f"{where}: cannot read its data ({describe(exc)})")
        return problems
    finally:
        try:
            f.close()
        except Exception:
            pass


def _order_problems(runs: h5py.Group) -> list[str]:
    order = runs.attrs.get("order")
    if order is None:
        return []
    try:
        listed = json.loads(_text(order))
        if not isinstance(listed, list):
            raise ValueError
    except ValueError:
        return ["/runs attribute 'order' is not a JSON list"]
    return [f"/runs attribute 'order' lists {n!r}, which has no group" for n in listed
            if not isinstance(n, str) or n not in runs]


def _status_problems(where: str, g: h5py.Group, closed: bool) -> list[str]:
    out = []
    status = _text(g["status"][()]).rstrip("\x00")
    if status not in STATUSES:
        out.append(f"{where}/status is {status!r}, not one of {', '.join(STATUSES)}")
    return out


def _scalar_problems(where: str, g: h5py.Group, closed: bool) -> list[str]:
    """Scalar series: equal lengths, increasing steps."""
    out = []
    series = {n: g["scalars"][n] for n in series_names(g["scalars"])}
    for name, s in series.items():
        lens = {s[c].shape[0] for c in ("step", "time", "value")}
        if len(lens) > 1 and closed:
            out.append(f"{where}/scalars/{name}: step, time and value lengths differ {sorted(lens)}")
    steps = _trim(series["loss"]["step"][()], closed)
    if steps.size > 1 and np.any(np.diff(steps) <= 0):
        out.append(f"{where}/scalars/loss/step is not strictly increasing")
    return out


def _probe_problems(where: str, g: h5py.Group, closed: bool) -> list[str]:
    """Probes: equal numbers of rows, increasing steps."""
    out = []
    p = g["probes"]
    keys = ["step", "grad_norm_t", "h"] + (["time"] if "time" in p else []) + (["c"] if "c" in p else []) + \
        (["gates", "saturation"] if int(g.attrs["n_gates"]) else [])
    counts = {p[k].shape[0] for k in keys}
    if len(counts) > 1 and closed:
        out.append(f"{where}/probes datasets have different numbers of rows {sorted(counts)}")
    if p["step"].shape[0] > 1 and np.any(np.diff(_trim(p["step"][()], closed)) <= 0):
        out.append(f"{where}/probes/step is not strictly increasing")
    return out


def _param_problems(where: str, g: h5py.Group, closed: bool) -> list[str]:
    out = []
    try:
        names = json.loads(_text(g.attrs.get("param_grad_names", "[]")))
        if not isinstance(names, list):
            raise ValueError
    except ValueError:
        out.append(f"{where} attribute 'param_grad_names' is not a JSON list")
    if int(g["params_written"][()]):
        for k, ds in g["params"].items():
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
                out.append(f"{where}/params/{k} is not a numeric dataset")
            elif ds.dtype.kind == "f" and not np.all(np.isfinite(ds[()])):
                out.append(f"{where}/params/{k} holds non-finite values")
    return out


def _trim(steps: np.ndarray, closed: bool) -> np.ndarray:
    """Drop a tail of step-0 rows left by a writer that died mid-flush (only when it did not close)."""
    if closed or steps.size == 0 or steps[-1] != 0:
        return steps
    nz = np.flatnonzero(steps)
    return steps[: nz[-1] + 1] if nz.size else steps[:0]
