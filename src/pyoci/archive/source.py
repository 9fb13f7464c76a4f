"""Opening a docker-archive source: a file or stdin, plain, gzip or zstd (detected by magic bytes).

The stream is never seeked, so a pipe works as well as a file. Compressed input that yields no data
for :data:`STALL_LIMIT` bytes (gzip zero padding, which the gzip reader skips one member boundary at a
time, or zstd skippable frames) is an error, so an endless stream of it cannot keep pyoci reading.
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
from pyoci.mediatype import Compression
from pyoci.reference import STDIN
from pyoci.streams import Readable, ReaderBase

STALL_LIMIT = 16 << 20
"""Compressed input bytes that may be read without yielding any decompressed byte."""
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
        """Return up to ``n`` bytes (at most 1 MiB when ``n`` < 0); ``b""`` at the end of input.

        Raises:
            ArchiveError: stdin cannot be read (opened for writing only, a directory...).
        """
        try:
            while not select.select([self._fd], [], [], _POLL_SECONDS)[0]:
                pass
            return os.read(self._fd, _BUFFER if n < 0 else n)
        except OSError as exc:
            raise ArchiveError(f"stdin: cannot read: {exc.strerror or exc}") from exc


class _Stall:
    """Compressed bytes read since the decompressor last yielded data; shared by the two readers below."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.idle = 0


class _CompressedInput(ReaderBase):
    """The input a decompressor reads, counted against :data:`STALL_LIMIT`."""

    def __init__(self, source: Readable, stall: _Stall) -> None:
        self._source = source
        self._stall = stall

    def read(self, n: int = -1, /) -> bytes:
        """Read from the source; raise ArchiveError past :data:`STALL_LIMIT` bytes without output."""
        data = self._source.read(n)
        self._stall.idle += len(data)
        if self._stall.idle > STALL_LIMIT:
            raise ArchiveError(
                f"{self._stall.name}: more than {STALL_LIMIT} bytes of compressed input without any data"
                " (zero padding or empty frames)"
            )
        return data


class _DecompressedOutput(ReaderBase):
    """A decompressor's output; each byte it yields resets the stall count."""

    def __init__(self, source: Readable, stall: _Stall) -> None:
        self._source = source
        self._stall = stall

    def read(self, n: int = -1, /) -> bytes:
        """Read decompressed bytes."""
        data = self._source.read(n)
        if data:
            self._stall.idle = 0
        return data


@contextlib.contextmanager
def open_archive(path: str) -> Iterator[Readable]:
    """Yield the decompressed byte stream of the archive at ``path`` (``-`` for stdin).

    Raises:
        ArchiveError: the file cannot be opened, or it (or stdin) is empty or closed; while reading,
            compressed input that yields nothing for :data:`STALL_LIMIT` bytes.
    """
    name = "stdin" if path == STDIN else path
    with contextlib.ExitStack() as stack:
        if path == STDIN:
            if sys.stdin is None:  # started with its file descriptor 0 closed
                raise ArchiveError("stdin: is closed, nothing to read")
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
        if outer is Compression.NONE:
            yield whole
        else:
            stall = _Stall(name)
            yield _DecompressedOutput(compression.open_reader(outer, _CompressedInput(whole, stall)), stall)
