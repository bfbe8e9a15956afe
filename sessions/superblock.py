"""The HDF5 superblock's status flags, for a session file whose writer was killed (``train --resume``).

A writer in SWMR mode marks the file "open for write" in its superblock (version 2 or 3) and clears the mark
when it closes; a killed writer leaves it, and HDF5 then refuses to open the file for writing. Once our own
liveness lock shows that no process writes the file, :func:`clear_write_flags` does what ``h5clear -s``
does: it zeroes the flags and puts the superblock's checksum (Bob Jenkins' lookup3, as HDF5 does) right.
"""
from __future__ import annotations

import os

M32 = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & M32


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum HDF5 puts on its metadata."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & M32
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & M32
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & M32
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & M32
        a = (a - c) & M32; a ^= _rot(c, 4); c = (c + b) & M32          # noqa: E702
        b = (b - a) & M32; b ^= _rot(a, 6); a = (a + c) & M32          # noqa: E702
        c = (c - b) & M32; c ^= _rot(b, 8); b = (b + a) & M32          # noqa: E702
        a = (a - c) & M32; a ^= _rot(c, 16); c = (c + b) & M32         # noqa: E702
        b = (b - a) & M32; b ^= _rot(a, 19); a = (a + c) & M32         # noqa: E702
        c = (c - b) & M32; c ^= _rot(b, 4); b = (b + a) & M32          # noqa: E702
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i:i + n] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & M32
    b = (b + int.from_bytes(tail[4:8], "little")) & M32
    c = (c + int.from_bytes(tail[8:12], "little")) & M32
    c ^= b; c = (c - _rot(b, 14)) & M32     # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & M32     # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & M32     # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & M32     # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & M32      # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & M32     # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & M32     # noqa: E702
    return c


#: bytes of a v2/v3 superblock with 8-byte addresses before its checksum, and where the flags byte is
SUPERBLOCK_BYTES, FLAGS_AT = 44, 11


def clear_write_flags(path) -> bool:
    """Zero the file-consistency flags of ``path``'s superblock (v2/v3 at offset 0, 8-byte addresses, its
    checksum valid) and rewrite its checksum; True when they were set and are now cleared. Only for a file
    no live process writes (hold the writer's lock first)."""
    with open(path, "r+b") as fh:
        head = bytearray(fh.read(SUPERBLOCK_BYTES + 4))
        if (len(head) < SUPERBLOCK_BYTES + 4 or head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3)
                or head[9] != 8 or not head[FLAGS_AT]):
            return False
        if int.from_bytes(head[SUPERBLOCK_BYTES:], "little") != lookup3(bytes(head[:SUPERBLOCK_BYTES])):
            return False            # not a superblock we understand: leave it to HDF5 to refuse
        head[FLAGS_AT] = 0
        head[SUPERBLOCK_BYTES:] = lookup3(bytes(head[:SUPERBLOCK_BYTES])).to_bytes(4, "little")
        fh.seek(0)
        fh.write(head)
        fh.flush()
        os.fsync(fh.fileno())
    return True
