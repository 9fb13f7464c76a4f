"""Small reader adapters for single-pass streams (no seeking anywhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Readable(Protocol):
    """Anything with a binary ``read``: files, tar members, decompressing readers."""

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes (all remaining when ``n`` < 0); ``b""`` at the end."""
        ...


class Sink(Protocol):
    """Anything with a binary ``write``."""

    def write(self, data: bytes | bytearray, /) -> int:
        """Write ``data``; return its length."""
        ...


class ReaderBase:
    """``readinto`` and ``readable`` for readers that only implement ``read``, as io and codecs expect."""

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes."""
        raise NotImplementedError

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` as far as one ``read`` allows; return the count."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        """Always True."""
        return True


class PrefixedReader(ReaderBase):
    """Reads ``head`` (bytes already taken from ``source``) first, then the rest of ``source``."""

    def __init__(self, head: bytes, source: Readable) -> None:
        self._head = memoryview(head)
        self._source = source

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes (everything left when ``n`` < 0); ``b""`` at the end."""
        if not self._head:
            return self._source.read(n)
        if 0 <= n < len(self._head):
            data = bytes(self._head[:n])
            self._head = self._head[n:]
            return data
        data = bytes(self._head)
        self._head = memoryview(b"")
        if n < 0:
            return data + self._source.read()
        return data + self._source.read(n - len(data)) if n > len(data) else data


class CountingReader(ReaderBase):
    """Passes reads through and reports each byte count to ``on_read``."""

    def __init__(self, source: Readable, on_read: Callable[[int], None]) -> None:
        self._source = source
        self._on_read = on_read

    def read(self, n: int = -1, /) -> bytes:
        """Read from the source and report the count."""
        data = self._source.read(n)
        self._on_read(len(data))
        return data


class TeeReader(ReaderBase):
    """Reads from ``source`` and copies every byte read into ``sink``."""

    def __init__(self, source: Readable, sink: Sink) -> None:
        self._source = source
        self._sink = sink

    def read(self, n: int = -1, /) -> bytes:
        """Read from the source, write the same bytes to the sink."""
        data = self._source.read(n)
        self._sink.write(data)
        return data


def read_exactly_head(source: Readable, n: int) -> bytes:
    """Read up to ``n`` bytes, retrying short reads (pipes), stopping early only at the end."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        more = source.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)
