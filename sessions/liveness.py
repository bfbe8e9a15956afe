"""Who is writing a session file: the writer's liveness lock and the rule that reads it.

The writer holds an exclusive open-file-description (OFD) lock on one byte at
:data:`LOCK_OFFSET` for as long as it is open. The kernel drops it when the process
dies (kill -9 included), so a reader on the same machine can tell a live writer
from a dead one without trusting pids. HDF5 itself uses flock(), which does not
interact with fcntl byte-range locks. :func:`writer_alive` is the rule SCHEMA.md
states, with the heartbeat for writers on other machines.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import sys
import time

from sessions.errors import SessionBusyError, SessionExistsError, SessionPermissionError, SessionWriteError

#: byte offset of the writer's liveness lock (far beyond any real file size; no data lives there)
LOCK_OFFSET = 1 << 62

_OFD = sys.platform.startswith("linux") and hasattr(os, "O_RDWR")
if _OFD:
    import fcntl

    _OFD = hasattr(fcntl, "F_OFD_SETLK") and hasattr(fcntl, "F_OFD_GETLK")
_FLOCK_FMT = "hhqqi4x"  # struct flock on Linux (x86_64, aarch64): type, whence, start, len, pid


def _flock(kind: int) -> bytes:
    return struct.pack(_FLOCK_FMT, kind, os.SEEK_SET, LOCK_OFFSET, 1, 0)


def claim_new_file(path, overwrite: bool) -> tuple[int | None, bool]:
    """Create ``path`` (or, with ``overwrite``, open the file there) and take the liveness lock before
    anything is written to it; returns ``(fd holding the lock or None, created)``.

    HDF5 truncates a file it creates as it opens it, before any lock of its own is
    checked; taking ours first means a file that another live process is writing is
    refused, never truncated, and that two writers racing for one name cannot both win.
    """
    created = False
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        created = True
    except FileExistsError:
        if not overwrite:
            raise SessionExistsError(path, "already exists; use --force to overwrite it (or choose another name)") from None
        try:
            fd = os.open(path, os.O_RDWR)
        except PermissionError as exc:
            raise SessionPermissionError(path, f"permission denied: cannot overwrite the file ({exc.strerror})") from None
        except OSError as exc:
            raise SessionWriteError(path, f"cannot open the file to overwrite it: {exc.strerror or exc}") from None
    except PermissionError:
        raise SessionPermissionError(path, f"permission denied: cannot write in folder "
                                           f"{os.path.dirname(os.path.abspath(path))}") from None
    except OSError as exc:
        raise SessionWriteError(path, f"cannot create the file: {exc.strerror or exc}") from None
    if not _OFD:
        os.close(fd)
        return None, created
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_WRLCK))
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES):   # no such locks on this file system: write unlocked
            return None, created
        raise SessionBusyError(path, "is being written by another running process (a training or a window); "
                                     "stop it first or choose another name — the file was not touched") from None
    return fd, created


def probe_writer_lock(path) -> bool | None:
    """True if a live writer holds the liveness lock on ``path``, False if nobody does, None if unknown."""
    if not _OFD:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        out = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_RDLCK))
        return struct.unpack(_FLOCK_FMT, out)[0] != fcntl.F_UNLCK
    except OSError:
        return None
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool | None:
    if sys.platform.startswith("win"):  # os.kill(pid, 0) would terminate the process there
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError, OverflowError):
        return None
    return True


def writer_alive(path, *, closed: bool, hostname: str, pid: int, lock: str,
                 heartbeat: float, heartbeat_timeout_s: float, now: float | None = None) -> bool:
    """Decide whether the process that wrote ``path`` is still writing it (the rule in SCHEMA.md).

    1. ``/writer/closed`` is 1: the writer closed the file, it is not writing.
    2. The liveness lock is held: a live writer holds it (on this or, over a file
       system with shared locks, another machine).
    3. Same host: the lock was taken (``lock == "ofd"``) and is free, or the pid
       is gone -> dead. A pid that still exists (without lock support) -> alive.
    4. Another host (or nothing above could decide): alive while the heartbeat is
       younger than ``heartbeat_timeout_s``.
    """
    if closed:
        return False
    held = probe_writer_lock(path)
    if held:
        return True
    if hostname == socket.gethostname():
        if held is False and lock == "ofd":
            return False
        alive = _pid_alive(pid)
        if alive is not None:
            return alive
    now = time.time() if now is None else now
    return (now - heartbeat) <= heartbeat_timeout_s
