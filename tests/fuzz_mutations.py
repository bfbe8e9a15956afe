"""Seeded mutations of real session and sweep files, for the hostile-file fuzz test.

:func:`mutate` copies a file and damages the copy in one of many ways, chosen by
the seed (the same seed always gives the same damage):

* bytes: a truncation, a run of bytes overwritten, a block zeroed, bits flipped, a
  block copied over another — often aimed at HDF5's metadata (object headers,
  B-trees, heaps), whose checksums make the library refuse the object;
* structure (through h5py): a dataset, group, attribute or link deleted; a dataset
  replaced by another dtype or shape (0-d, 1-d where 2-d is expected, strings where
  numbers are, empty, a group); NaN/inf/extreme values; odd status strings; bad
  config JSON; odd version and format strings; dangling soft and external links.

A file that its writer left open (SWMR flags set, as after a ``kill -9``) cannot be
opened for writing by HDF5; its superblock flags are cleared for the structural
change and set again afterwards, checksum included, so the damage lands on a
file that still reads as interrupted.
"""
from __future__ import annotations

import random
import shutil
import struct

import h5py
import numpy as np

from sessions.superblock import lookup3

#: HDF5 metadata signatures (version 2 object headers, B-trees, heaps, free-space managers)
META_SIGNATURES = (b"OHDR", b"OCHK", b"BTHD", b"BTIN", b"BTLF", b"FRHP", b"FHDB", b"FHIB", b"FSHD",
                   b"FSSE", b"TREE", b"HEAP", b"GCOL", b"SNOD", b"EAHD", b"EAIB", b"EADB", b"FAHD", b"FADB")


def superblock_flags(path: str) -> int | None:
    """The status flags of a version 2/3 superblock at offset 0 (None for other versions)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    return head[11] if len(head) == 12 and head[8] in (2, 3) else None


def set_superblock_flags(path: str, flags: int) -> None:
    """Rewrite the superblock's status flags and its checksum (8-byte offsets and lengths)."""
    with open(path, "r+b") as fh:
        sb = bytearray(fh.read(48))
        assert sb[8] in (2, 3) and sb[9] == 8, "superblock v2/v3 with 8-byte offsets expected"
        sb[11] = flags
        sb[44:48] = struct.pack("<I", lookup3(bytes(sb[:44])))
        fh.seek(0)
        fh.write(sb)


# ---------------------------------------------------------------------------------- byte damage
def _meta_offsets(data: bytes) -> list[int]:
    out = [0]
    for sig in META_SIGNATURES:
        i = data.find(sig)
        while i >= 0:
            out.append(i)
            i = data.find(sig, i + 1)
    return out


def _byte_damage(path: str, rng: random.Random) -> str:
    data = bytearray(open(path, "rb").read())
    size = len(data)
    meta = _meta_offsets(bytes(data))
    aim = rng.random()
    if aim < 0.55:
        base = rng.choice(meta)
        off = min(size - 1, base + rng.randrange(0, 64 if rng.random() < 0.7 else 512))
        where = f"near metadata at {base}"
    elif aim < 0.7:
        off = rng.randrange(0, min(size, 4096))
        where = "in the first 4 KiB"
    else:
        off = rng.randrange(0, size)
        where = "anywhere"
    kind = rng.choice(["truncate", "truncate", "overwrite", "overwrite", "zero", "bitflip", "copy", "tail"])
    if kind == "truncate":
        cut = rng.choice([off, rng.randrange(0, size), size - rng.randrange(1, 4096), rng.randrange(0, 600)])
        cut = max(0, min(size - 1, cut))
        with open(path, "r+b") as fh:
            fh.truncate(cut)
        return f"truncated to {cut} of {size} bytes"
    if kind == "tail":
        extra = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2048)))
        with open(path, "ab") as fh:
            fh.write(extra)
        return f"{len(extra)} random bytes appended"
    if kind == "overwrite":
        n = rng.choice([1, 2, 4, 8, 16, 64, 256])
        data[off:off + n] = bytes(rng.randrange(256) for _ in range(len(data[off:off + n])))
        what = f"{n} random bytes written at {off} ({where})"
    elif kind == "zero":
        n = rng.choice([4, 16, 64, 512, 4096, 65536])
        data[off:off + n] = bytes(len(data[off:off + n]))
        what = f"{n} bytes zeroed at {off} ({where})"
    elif kind == "bitflip":
        flips = [min(size - 1, off + rng.randrange(0, 32)) for _ in range(rng.randrange(1, 4))]
        for j in flips:
            data[j] ^= 1 << rng.randrange(8)
        what = f"bits flipped at {flips} ({where})"
    else:
        src = rng.choice(meta)
        n = rng.choice([16, 64, 256])
        block = data[src:src + n]
        data[off:off + len(block)] = block
        what = f"{n} bytes from {src} copied over {off} ({where})"
    with open(path, "r+b") as fh:
        fh.write(data[:size])
    return what


# ---------------------------------------------------------------------------------- structural damage
def _links(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visit_links(names.append)
    return names


def _attr_targets(f: h5py.File, names: list[str]) -> list[tuple[str, str]]:
    out = [("/", k) for k in f.attrs]
    for n in names:
        try:
            out += [(n, k) for k in f[n].attrs]
        except Exception:
            pass
    return out


BAD_JSON = ["{", "", "null", "[]", '"text"', "123", "NaN", '{"steps": "many", "cells": 5, "seq_len": null}',
            '{"steps": 1e400, "hidden": -3}', '{"task": {"nested": [1, {"x": NaN}]}}', b"\xff\xfe{", 5,
            np.array(["a", "b"], dtype=object)]
ODD_VERSIONS = ["", "2.0.0", "0.9.0", "1", "1.x.y", "abc", b"\xff\xfe", 1, np.array([1, 0, 0]), " 1.0.0 ",
                "1.0.0-rc1", "99999999999999999999.0.0", "1.99999999999999999999.0", "1.0.0\x00junk",
                "-1.0.0", 1.5]
ODD_STATUS = ["", "weird", "diverged", "stopped", "running", "completed", "\x00abc", "x" * 16, b"\xff\xfe\xfd",
              "interrupted", "RUNNING", "ok\nno"]
ODD_NUMBERS = [-1, 0, 1, 10**12, 2**63 - 1, -(2**63), "abc", np.array([1, 2]), np.nan, np.inf, -np.inf, 2.5,
               True, b"\xff", np.float16(3), np.uint64(2**64 - 1)]
ODD_FILL = [np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, -1.0, 65504.0, 1e-45]


def _variants(ds: h5py.Dataset, rng: random.Random):
    """(description, data, dtype or None) of another dtype or shape for dataset ``ds``."""
    shape = ds.shape
    rows = shape[0] if shape else 1
    pick = rng.randrange(16)
    if pick == 0:
        return "a 0-d float", np.float64(1.5), None
    if pick == 1:
        return "a 0-d string", "oops", h5py.string_dtype()
    if pick == 2:
        return "a 1-d array of 3", np.arange(3, dtype=np.float64), None
    if pick == 3:
        return "a 2-d (3, 2) array", np.zeros((3, 2)), None
    if pick == 4:
        return "strings", np.array(["a"] * max(rows, 1), dtype=object), h5py.string_dtype()
    if pick == 5:
        return "an empty (0,) array", np.zeros((0,)), None
    if pick == 6:
        return "an empty array of the same row shape", np.zeros((0,) + shape[1:]), None
    if pick == 7:
        return "bools of the same shape", np.ones(shape, dtype=bool), None
    if pick == 8:
        return "complex of the same shape", np.ones(shape, dtype=np.complex64), None
    if pick == 9:
        cmp = np.zeros(max(rows, 1), dtype=[("a", "i4"), ("b", "f8")])
        return "a compound array", cmp, None
    if pick == 10:
        return "int8 of the same shape", np.full(shape, -7, dtype=np.int8), None
    if pick == 11:
        return "uint64 of the same shape", np.full(shape, 2**64 - 1, dtype=np.uint64), None
    if pick == 12 and shape:
        bigger = (shape[0],) + tuple(d + rng.choice([-1, 1, 3]) for d in shape[1:]) if len(shape) > 1 \
            else (shape[0] + 5,)
        bigger = tuple(max(d, 0) for d in bigger)
        return f"shape {bigger} instead of {shape}", np.ones(bigger, dtype=np.float32), None
    if pick == 13 and shape:
        return f"one dimension more {shape + (2,)}", np.ones(shape + (2,), dtype=np.float32), None
    if pick == 14 and len(shape) > 1:
        return f"one dimension less {shape[:-1]}", np.ones(shape[:-1], dtype=np.float32), None
    return "fixed-length bytes", np.array([b"12"] * max(rows, 1)), None


def _replace(f: h5py.File, name: str, data, dtype) -> None:
    del f[name]
    f.create_dataset(name, data=data, dtype=dtype)


def _set_attr(obj, key: str, value) -> None:
    if isinstance(value, np.ndarray) and value.dtype == object:
        obj.attrs.create(key, value, dtype=h5py.string_dtype())
    else:
        obj.attrs[key] = value


def _structural(path: str, rng: random.Random, sweep: bool) -> str:
    with h5py.File(path, "r+") as f:
        names = _links(f)
        datasets = [n for n in names if isinstance(f.get(n, getlink=False), h5py.Dataset)]
        groups = [n for n in names if isinstance(f.get(n, getlink=False), h5py.Group)]
        attrs = _attr_targets(f, names)
        kinds = ["delete", "delete_attr", "replace", "fill", "json", "version", "attr_value", "links", "junk"]
        kinds += ["sweep_column"] * 3 if sweep else ["status", "status", "steps", "probe_shape", "probe_shape"]
        kind = rng.choice(kinds)
        if kind == "delete":
            n = rng.choice(names)
            del f[n]
            return f"deleted {n}"
        if kind == "delete_attr":
            obj, k = rng.choice(attrs)
            del f[obj].attrs[k]
            return f"deleted attribute {k!r} of {obj}"
        if kind in ("replace", "probe_shape", "sweep_column"):
            pool = datasets
            if kind == "probe_shape":
                pool = [n for n in datasets if "/probes/" in n] or datasets
            if kind == "sweep_column":
                pool = [n for n in datasets if n.startswith("runs/")] or datasets
            n = rng.choice(pool)
            if rng.random() < 0.1:
                del f[n]
                f.create_group(n)
                return f"{n} replaced by a group"
            what, data, dtype = _variants(f[n], rng)
            _replace(f, n, data, dtype)
            return f"{n} replaced by {what}"
        if kind == "fill":
            n = rng.choice([d for d in datasets if f[d].dtype.kind in "fiu"] or datasets)
            ds = f[n]
            v = rng.choice(ODD_FILL)
            if ds.dtype.kind in "iu":
                v = rng.choice([0, -1, 2**62, -(2**62), 7])
                arr = np.full(ds.shape, v, dtype=np.int64)
                if arr.ndim and arr.shape[0] > 1 and rng.random() < 0.5:
                    arr = np.asarray(ds[()], dtype=np.int64)[::-1].copy()
                    v = "reversed"
            elif ds.dtype.kind == "f":
                arr = np.asarray(ds[()], dtype=np.float64).copy()
                if arr.ndim and arr.size and rng.random() < 0.5:
                    arr.flat[rng.randrange(arr.size)] = v
                else:
                    arr[...] = v
            else:
                return f"nothing filled ({n} is {ds.dtype})"
            _replace(f, n, arr.astype(ds.dtype) if ds.dtype.kind == "f" or v != 2**62 else arr, None)
            return f"{n} filled with {v}"
        if kind == "status":
            n = rng.choice([d for d in datasets if d.endswith(("/status", "/message"))])
            v = rng.choice(ODD_STATUS)
            if rng.random() < 0.3:
                _replace(f, n, v if isinstance(v, bytes) else v.encode(), h5py.string_dtype() if rng.random() < 0.5
                         else None)
            else:
                _replace(f, n, np.array(v if isinstance(v, bytes) else v.encode(), dtype=f[n].dtype), None)
            return f"{n} set to {v!r}"
        if kind == "steps":
            n = rng.choice([d for d in datasets if d.endswith("/step")])
            arr = np.asarray(f[n][()]).copy()
            how = rng.choice(["zeros", "duplicates", "shuffled", "negative", "huge"])
            if how == "zeros":
                arr[...] = 0
            elif how == "duplicates":
                arr[...] = arr[0] if arr.size else 0
            elif how == "shuffled":
                rng.shuffle(arr)
            elif how == "negative":
                arr = -arr
            else:
                arr[...] = 2**62
            _replace(f, n, arr, None)
            return f"{n}: {how}"
        if kind == "json":
            targets = [(o, k) for o, k in attrs if k in ("json", "config", "order", "param_grad_names")]
            obj, k = rng.choice(targets or attrs)
            v = rng.choice(BAD_JSON)
            _set_attr(f[obj], k, v)
            return f"attribute {k!r} of {obj} set to {v!r}"
        if kind == "version":
            k = rng.choice(["format_version", "format_version", "format"])
            v = rng.choice(ODD_VERSIONS if k == "format_version" else
                           ["", "lstm-explorer-sweep", "lstm-explorer-session", "other", b"\xff", 5])
            _set_attr(f, k, v)
            return f"root attribute {k!r} set to {v!r}"
        if kind == "attr_value":
            obj, k = rng.choice(attrs)
            v = rng.choice(ODD_NUMBERS + ["", "x" * 5000])
            _set_attr(f[obj], k, v)
            return f"attribute {k!r} of {obj} set to {v!r}"
        if kind == "links":
            n = rng.choice(names)
            del f[n]
            how = rng.randrange(4)
            if how == 0:
                f[n] = h5py.SoftLink("/nowhere/at/all")
                return f"{n} replaced by a dangling soft link"
            if how == 1:
                f[n] = h5py.ExternalLink("missing-file.h5", "/data")
                return f"{n} replaced by an external link to a missing file"
            if how == 2:
                other = rng.choice([d for d in names if d != n and d in f] or ["/"])
                f[n] = h5py.SoftLink("/" + other.lstrip("/"))
                return f"{n} replaced by a soft link to {other}"
            parent = n.rsplit("/", 1)[0] if "/" in n else "/"
            f[n] = h5py.SoftLink("/" + parent.lstrip("/"))
            return f"{n} replaced by a soft link to its parent {parent} (a cycle)"
        # junk: an unexpected member
        parent = rng.choice(groups or ["/"])
        what = rng.choice(["group", "dataset", "string"])
        name = f"{parent}/zz_junk" if parent != "/" else "zz_junk"
        if what == "group":
            f.create_group(name)
        elif what == "dataset":
            f.create_dataset(name, data=np.arange(5.0))
        else:
            f.create_dataset(name, data="junk", dtype=h5py.string_dtype())
        return f"unexpected {what} {name}"


def mutate(src: str, dst: str, seed: int, sweep: bool = False) -> str:
    """Copy ``src`` to ``dst`` and damage the copy as ``seed`` says; returns what was done."""
    rng = random.Random(seed)
    shutil.copyfile(src, dst)
    if rng.random() < 0.4:
        return _byte_damage(dst, rng)
    flags = superblock_flags(dst)
    if flags:
        set_superblock_flags(dst, 0)
    try:
        what = _structural(dst, rng, sweep)
        if rng.random() < 0.15:   # sometimes a second change on top
            what += "; " + _structural(dst, rng, sweep)
    finally:
        if flags:
            set_superblock_flags(dst, flags)
    return what
