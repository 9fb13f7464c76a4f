"""Opening a docker-archive source: a file or stdin, plain, gzip or zstd (detected by magic bytes).

The stream is never seeked, so a pipe works as well as a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path

from pyoci import compression
from pyoci.errors import ArchiveError
from pyoci.reference import STDIN
from pyoci.streams import Readable, ReaderBase

_BUFFER = 1 << 20
_POLL_SECONDS = 0.5


class StdinReader(ReaderBase):
    """Reads a file descriptor (stdin) without ever blocking for long in one system call.

    A signal (Ctrl-C, SIGTERM) may be delivered to any thread of the process; Python runs its
    handler only when the main thread returns to the interpreter. A ``read`` that waits on an idle
    pipe would postpone that forever, so reads wait in ``select`` for at most
    :data:`_POLL_SECONDS` at a time. Reads may return fewer bytes than asked.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        with contextlib.suppress(OSError, AttributeError):  # not a pipe, or not Linux: keep its size
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _BUFFER)  # fewer, larger reads from a pipe

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes (at most 1 MiB when ``n`` < 0); ``b""`` at the end of input."""
        while not select.select([self._fd], [], [], _POLL_SECONDS)[0]:
            pass
        return os.read(self._fd, _BUFFER if n < 0 else n)


@contextlib.contextmanager
def open_archive(path: str) -> Iterator[Readable]:
    """Yield the decompressed byte stream of the archive at ``path`` (``-`` for stdin).

    Raises:
        ArchiveError: the file cannot be opened, or it (or stdin) is empty.
    """
    name = "stdin" if path == STDIN else path
    with contextlib.ExitStack() as stack:
        if path == STDIN:
            raw: Readable = StdinReader(sys.stdin.fileno())
        else:
            try:
                raw = stack.enter_context(open(Path(path), "rb", buffering=_BUFFER))
            except IsADirectoryError:
                raise ArchiveError(f"{name}: is a directory, not a docker-archive") from None
            except OSError as exc:
                raise ArchiveError(f"{name}: cannot open: {exc.strerror}") from exc
        outer, head, whole = compression.sniff(raw)
        if not head:
            raise ArchiveError(f"{name}: empty input, not a docker-archive")
        yield compression.open_reader(outer, whole)
