"""Reading files named by operators (profiles, secrets, models, videos) without trusting them:
only regular files, never more than a cap, never blocking on a FIFO or a device."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_CHUNK = 64 * 1024
NUL_IN_NAME = "has a NUL character in its name"
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileReadError(Exception):
    """Why a file cannot be read; the message names no content, only what is wrong."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of `path` (links followed), which must be a regular file of at most `limit` bytes.

    Opened non-blocking so a FIFO cannot hang the caller; the size is checked on the open file
    and again while reading, since a file can grow between the two."""
    if "\0" in str(path):
        raise FileReadError(NUL_IN_NAME)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as error:
        raise FileReadError(_reason(error)) from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise FileReadError(f"is {_kind(mode)}, not a regular file")
        chunks, size = [], 0
        while chunk := os.read(descriptor, _CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FileReadError(f"is larger than {limit} bytes (the limit)")
        return b"".join(chunks)
    except OSError as error:
        raise FileReadError(_reason(error)) from None
    finally:
        os.close(descriptor)


def regular_file_problem(path: Path) -> str | None:
    """Why `path` is not an existing regular file (links followed), or None when it is one."""
    if "\0" in str(path):
        return NUL_IN_NAME
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return _reason(error)
    return None if stat.S_ISREG(mode) else f"is {_kind(mode)}, not a regular file"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "of an unknown kind")


def _reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "does not exist"
    reason = error.strerror or str(error)
    return f"is unreadable ({reason[0].lower()}{reason[1:]})"
