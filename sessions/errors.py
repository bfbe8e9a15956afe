"""The session package's own exceptions.

Every message names the file and says what is wrong (and, where there is one,
how to fix it), so the CLI can print it as one line and the GUI in a dialog.
"""
from __future__ import annotations

import os


class SessionError(Exception):
    """Base class of every error about a session file (reading or writing)."""

    def __init__(self, path, problem: str):
        self.path = os.fspath(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class SessionNotFoundError(SessionError, FileNotFoundError):
    """The path does not exist."""


class SessionIsDirectoryError(SessionError, IsADirectoryError):
    """The path is a directory, not a session file."""


class SessionPermissionError(SessionError, PermissionError):
    """The file (or its folder) cannot be read or written with the current permissions."""


class SessionExistsError(SessionError, FileExistsError):
    """A writer was asked to create a file that already exists (without overwrite)."""


class EmptyFileError(SessionError):
    """The file has zero bytes."""


class NotHDF5Error(SessionError):
    """The file is not HDF5 at all (no HDF5 signature)."""


class DamagedFileError(SessionError):
    """The file has an HDF5 signature but HDF5 cannot open or read it: truncated or corrupt."""


#: the name used in the issue and the docs; a truncated file raises this type
TruncatedFileError = DamagedFileError


class NotASessionError(SessionError):
    """A valid HDF5 file that is not an LSTM Explorer session (no or another ``format``)."""


class SchemaError(SessionError):
    """A session file that lacks groups, datasets or attributes the schema requires."""


class UnsupportedVersionError(SessionError):
    """The file's format major version is newer than this reader understands."""


class SessionBusyError(SessionError):
    """Another process holds the file open in a mode that excludes this one."""


class RunNotFoundError(SessionError, LookupError):
    """The session has no run of the requested name."""


class SessionWriteError(SessionError):
    """Writing failed (disk full, I/O error, writer closed). What was flushed before stays readable."""


#: what h5py raises while reading when the bytes of an object or of its data are damaged (a failed
#: checksum, an undecodable header, a dangling link, a value of an unexpected type)
H5_READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, OverflowError)


def describe(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
