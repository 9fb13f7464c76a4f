"""Opening a docker-archive source: a file or stdin, plain, gzip or zstd (detected by magic bytes).

The stream is never seeked, so a pipe works as well as a file.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pyoci import compression
from pyoci.errors import ArchiveError
from pyoci.streams import PrefixedReader, Readable, read_exactly_head

STDIN = "-"
_BUFFER = 1 << 20


@contextlib.contextmanager
def open_archive(path: str) -> Iterator[Readable]:
    """Yield the decompressed byte stream of the archive at ``path`` (``-`` for stdin).

    Raises:
        ArchiveError: the file cannot be opened, or it (or stdin) is empty.
    """
    name = "stdin" if path == STDIN else path
    with contextlib.ExitStack() as stack:
        if path == STDIN:
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = stack.enter_context(open(Path(path), "rb", buffering=_BUFFER))
            except IsADirectoryError:
                raise ArchiveError(f"{name}: is a directory, not a docker-archive") from None
            except OSError as exc:
                raise ArchiveError(f"{name}: cannot open: {exc.strerror}") from exc
        head = read_exactly_head(raw, compression.MAGIC_LENGTH)
        if not head:
            raise ArchiveError(f"{name}: empty input, not a docker-archive")
        outer = compression.detect(head)
        stream = compression.open_reader(outer, PrefixedReader(head, raw))
        yield stream
