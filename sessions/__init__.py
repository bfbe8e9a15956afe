"""HDF5 session files: record training runs live and read them back (numpy + h5py only).

The format is defined in ``sessions/SCHEMA.md``. Write with :class:`SessionWriter`,
read with :func:`open_session`, check with :func:`validate`.
"""
from sessions.errors import (
    DamagedFileError,
    EmptyFileError,
    NotASessionError,
    NotHDF5Error,
    RunNotFoundError,
    SchemaError,
    SessionBusyError,
    SessionError,
    SessionExistsError,
    SessionIsDirectoryError,
    SessionNotFoundError,
    SessionPermissionError,
    SessionWriteError,
    TruncatedFileError,
    UnsupportedVersionError,
)
from sessions.interop import torch_module
from sessions.reader import Run, Session, decimate, open_session
from sessions.validate import validate
from sessions.writer import FORMAT_NAME, FORMAT_VERSION, STATUSES, SessionWriter

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "STATUSES",
    "SessionWriter", "open_session", "Session", "Run", "validate", "decimate", "torch_module",
    "SessionError", "SessionNotFoundError", "SessionIsDirectoryError", "SessionPermissionError",
    "SessionExistsError", "EmptyFileError", "NotHDF5Error", "DamagedFileError", "TruncatedFileError",
    "NotASessionError", "SchemaError", "UnsupportedVersionError", "SessionBusyError",
    "RunNotFoundError", "SessionWriteError",
]
