"""Open an HDF5 file for reading, with the file-system and superblock checks before HDF5 sees it.

:func:`open_h5` is shared by the session reader and the validator. Every problem
raises a :class:`~sessions.errors.SessionError` subclass whose message names the file.
"""
from __future__ import annotations

import os
import struct

import h5py

from sessions.errors import (
    DamagedFileError,
    EmptyFileError,
    NotHDF5Error,
    SessionBusyError,
    SessionError,
    SessionIsDirectoryError,
    SessionNotFoundError,
    SessionPermissionError,
)
from sessions.errors import describe as _describe
from sessions.liveness import probe_writer_lock

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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
    check_global_heaps(path)
    return path, offset


#: how much of a file :func:`check_global_heaps` reads: our writers put every variable-length
#: string (the attributes) in the file's layout, written before any row, so at its start
GLOBAL_HEAP_SCAN_BYTES = 16 << 20


def check_global_heaps(path: str, limit: int = GLOBAL_HEAP_SCAN_BYTES) -> None:
    """Refuse a file whose HDF5 global heap (where variable-length strings live) would hang HDF5.

    HDF5 (2.0 included) walks a global heap collection object by object, each object
    header giving the size of the step to the next; an object of index 0 and size 0
    (a zeroed block) is a step of 0 bytes and the library loops forever, in C, where
    no timeout reaches. Global heaps carry no checksum, so this walks each collection
    found in the first ``limit`` bytes the way the library does first, and raises
    :class:`DamagedFileError` where the library would not come back. Assumes 8-byte
    lengths (what h5py writes); other files are left to HDF5.
    """
    try:
        with open(path, "rb") as fh:
            buf = fh.read(limit)
            whole = not fh.read(1)
    except OSError:
        return   # check_file has read the file; HDF5 will report what goes wrong now
    i = buf.find(b"GCOL")
    while i >= 0:
        bad = _global_heap_problem(buf, i, whole)
        if bad:
            raise DamagedFileError(path, f"the file is damaged: its global heap (variable-length strings) at "
                                         f"byte {i} {bad}, so it cannot be read")
        i = buf.find(b"GCOL", i + 4)


def _global_heap_problem(buf: bytes, at: int, whole: bool) -> str:
    """What makes the collection at ``at`` unreadable ("" when nothing, or when it is not one).
    ``whole``: ``buf`` is the whole file (HDF5 reads zeros past its end)."""
    if buf[at + 4:at + 8] != b"\x01\x00\x00\x00" or at + 16 > len(buf):
        return ""    # not a collection header (version 1, reserved zeros): a coincidence in the data
    end = at + int.from_bytes(buf[at + 8:at + 16], "little")
    p = at + 16
    while p + 16 <= end:
        if p + 16 > len(buf) and not whole:
            return ""   # beyond what was read
        index = int.from_bytes(buf[p:p + 2], "little")   # b"" past the end of the file: 0
        size = int.from_bytes(buf[p + 8:p + 16], "little")
        step = 16 + ((size + 7) & ~7) if index else size
        if step == 0:
            return (f"holds a zeroed object header at byte {p}" if p + 16 <= len(buf)
                    else "is cut off by the end of the file")
        p += step
    return ""


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
