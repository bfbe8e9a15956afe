"""Check a file against ``sessions/SCHEMA.md`` and list every problem found."""
from __future__ import annotations

import json

import h5py
import numpy as np

from sessions.errors import NotASessionError, SchemaError, UnsupportedVersionError
from sessions.reader import _text, check_format, open_h5, structure_problems
from sessions.writer import STATUSES


def validate(path) -> list[str]:
    """Problems of the session file at ``path`` (an empty list means valid).

    Raises :class:`~sessions.errors.SessionError` only when the file cannot be
    opened at all (missing, a directory, no permission, empty, not HDF5,
    truncated). A foreign HDF5 file, a newer major version or a missing group
    are reported as problems.
    """
    f, _, _ = open_h5(path)
    try:
        try:
            check_format(f, str(path))
        except (NotASessionError, UnsupportedVersionError, SchemaError) as exc:
            return [exc.problem]
        problems = structure_problems(f)
        if problems:
            return problems
        closed = bool(f["writer/closed"][()])
        order = f["runs"].attrs.get("order")
        if order is not None:
            try:
                listed = json.loads(_text(order))
                for n in listed:
                    if n not in f["runs"]:
                        problems.append(f"/runs attribute 'order' lists {n!r}, which has no group")
            except ValueError:
                problems.append("/runs attribute 'order' is not a JSON list")
        for name, g in f["runs"].items():
            problems.extend(_run_problems(f"/runs/{name}", g, closed))
        return problems
    finally:
        f.close()


def _run_problems(where: str, g: h5py.Group, closed: bool) -> list[str]:
    out: list[str] = []
    try:
        json.loads(_text(g["config"].attrs["json"]))
    except ValueError:
        out.append(f"{where}/config attribute 'json' is not valid JSON")
    status = _text(g["status"][()]).rstrip("\x00")
    if status not in STATUSES:
        out.append(f"{where}/status is {status!r}, not one of {', '.join(STATUSES)}")
    L, H, G = int(g.attrs["length"]), int(g.attrs["hidden"]), int(g.attrs["n_gates"])
    if G not in (0, 4):
        out.append(f"{where} attribute n_gates is {G}, must be 0 or 4")

    # scalar series: step/time/value, equal lengths, increasing steps
    sc = g["scalars"]
    series = {}
    sc.visititems(lambda n, o: series.__setitem__(n, o) if isinstance(o, h5py.Group) and "value" in o else None)
    n_ref = None
    for name, s in series.items():
        for col, kinds in (("step", "iu"), ("time", "f"), ("value", "f")):
            if col not in s:
                out.append(f"{where}/scalars/{name} lacks dataset '{col}'")
            elif s[col].ndim != 1 or s[col].dtype.kind not in kinds:
                out.append(f"{where}/scalars/{name}/{col} must be 1-D "
                           f"{'integer' if kinds == 'iu' else 'float'}, is {s[col].dtype} {s[col].shape}")
        if all(c in s for c in ("step", "time", "value")):
            lens = {s[c].shape[0] for c in ("step", "time", "value")}
            if len(lens) > 1 and closed:
                out.append(f"{where}/scalars/{name}: step, time and value lengths differ {sorted(lens)}")
            n_ref = min(lens) if n_ref is None else n_ref
    if "loss" in series:
        steps = _trim(series["loss"]["step"][()], closed)
        if steps.size > 1 and np.any(np.diff(steps) <= 0):
            out.append(f"{where}/scalars/loss/step is not strictly increasing")

    # probes
    p = g["probes"]
    expected = {"step": ((), "iu"), "time": ((), "f"), "grad_norm_t": ((L,), "f"), "h": ((L, H), "f")}
    if G:
        expected.update(gates=((G, L, H), "f"), c=((L, H), "f"), saturation=((G,), "f"))
    counts = set()
    for key, (shape, kinds) in expected.items():
        if key not in p:
            if key != "time":
                out.append(f"{where}/probes lacks dataset '{key}'")
            continue
        ds = p[key]
        if ds.shape[1:] != shape or ds.dtype.kind not in kinds:
            out.append(f"{where}/probes/{key} has shape {ds.shape} {ds.dtype}, expected (P,)+{shape}")
        counts.add(ds.shape[0])
    if len(counts) > 1 and closed:
        out.append(f"{where}/probes datasets have different numbers of rows {sorted(counts)}")
    if "step" in p and p["step"].shape[0] > 1 and np.any(np.diff(_trim(p["step"][()], closed)) <= 0):
        out.append(f"{where}/probes/step is not strictly increasing")

    # params
    try:
        names = json.loads(_text(g.attrs.get("param_grad_names", "[]")))
        if not isinstance(names, list):
            raise ValueError
    except ValueError:
        out.append(f"{where} attribute 'param_grad_names' is not a JSON list")
    if int(g["params_written"][()]):
        for k, ds in g["params"].items():
            if isinstance(ds, h5py.Dataset) and ds.dtype.kind == "f" and not np.all(np.isfinite(ds[()])):
                out.append(f"{where}/params/{k} holds non-finite values")
    return out


def _trim(steps: np.ndarray, closed: bool) -> np.ndarray:
    """Drop a tail of step-0 rows left by a writer that died mid-flush (only when it did not close)."""
    if closed or steps.size == 0 or steps[-1] != 0:
        return steps
    nz = np.flatnonzero(steps)
    return steps[: nz[-1] + 1] if nz.size else steps[:0]
