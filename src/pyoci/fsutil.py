"""File-system primitives every store shares: temporary names, atomic replacement, fsync, flock.

Writers never change a file in place: they write a temporary file in the same directory (named
:data:`TEMP_PREFIX` + the writer's process ID, so a cleaner can tell a live writer's file from a
leftover), flush it to disk and rename it over the target (POSIX ``rename(2)`` is atomic), so a
failed or interrupted run never leaves a half-written file behind and never damages what was there.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import itertools
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from pyoci.errors import FormatError

TEMP_PREFIX = ".pyoci-tmp-"
"""Every temporary file or directory pyoci creates starts with this, then ``<pid>-``."""

_TEMP_TOKEN = secrets.token_hex(4)
_temp_counter = itertools.count()


def temp_name(directory: Path) -> Path:
    """Return a fresh temporary path in ``directory`` carrying this process's ID.

    The name is ``.pyoci-tmp-<pid>-<random>-<n>``: one random token per process (``os.urandom`` is
    slow on some virtual machines) and a counter.
    """
    return directory / f"{TEMP_PREFIX}{os.getpid()}-{_TEMP_TOKEN}-{next(_temp_counter)}"


def fsync_dir(directory: Path) -> None:
    """Make renames inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading in binary mode, following symbolic links, if it is a regular file.

    A store's file may have been replaced by anything: a directory, a FIFO (opened without
    blocking, so a reader never waits for a writer that will not come), a device, a link loop.

    Raises:
        OSError: it cannot be opened (``FileNotFoundError`` for an absent file or a dangling
            link), or it is not a regular file (``strerror`` "not a regular file").
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, limit: int) -> bytes:
    """Read the whole regular file ``path`` (see :func:`open_regular`) of at most ``limit`` bytes.

    Raises:
        OSError: as :func:`open_regular`, or reading failed.
        FormatError: the file holds more than ``limit`` bytes.
    """
    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FormatError(f"{path}: larger than {limit} bytes")
    return data


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a file that replaces ``path`` (fsynced, renamed) when the block ends without error.

    The file is written under a temporary name in the same directory; on error it is removed and
    ``path`` is untouched.
    """
    tmp = temp_name(path.parent)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data)


def temp_pid(name: str) -> int | None:
    """The process ID a temporary name (``.pyoci-tmp-<pid>-...``) carries, or None."""
    head = name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return int(head) if name.startswith(TEMP_PREFIX) and head.isdigit() else None


def process_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def libc_function(name: str, argtypes: list[Any]) -> Any:
    """The C library function ``name`` with ``argtypes`` and an ``int`` result, or None where absent."""
    try:
        func = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    func.argtypes = argtypes
    func.restype = ctypes.c_int
    return func


_syncfs = cast(Callable[[int], int] | None, libc_function("syncfs", [ctypes.c_int]))


def syncfs(directory: Path) -> bool:
    """Flush every written file of the filesystem holding ``directory`` (Linux ``syncfs``).

    One call replaces an fsync per file when many files were written. Returns False (having done
    nothing) where ``syncfs`` is unavailable or fails, so the caller falls back to fsync per file.
    """
    if _syncfs is None:
        return False
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return _syncfs(fd) == 0
    finally:
        os.close(fd)


@contextlib.contextmanager
def flock(directory: Path, operation: int) -> Iterator[None]:
    """Hold ``flock(operation)`` on ``directory`` (released when the block ends)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)
