"""Reader adapters for single-pass streams (no seeking anywhere), and the verifying reader.

Image-spec ``descriptor.md`` "Verification": content must be verified against its digest and size
before it is trusted. :class:`VerifyingReader` checks when the stream is exhausted (expected before
actual in the message) and never returns bytes past the declared size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pyoci.digest import Digest, Digester
from pyoci.errors import DigestMismatchError


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


class BlobSink(Protocol):
    """Where one blob's bytes go, hashed and counted on the way (a layout's blob writer, a hash only).

    ``write`` the bytes, then ``finish`` (all written: the digest of them) or ``abort`` (discard).
    """

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Take ``data``; return its length."""
        ...

    def finish(self) -> Digest:
        """Complete the blob; return the sha256 of every byte written."""
        ...

    def abort(self) -> None:
        """Discard the blob; safe to call more than once."""
        ...

    @property
    def size(self) -> int:
        """Bytes written so far (all of them once :meth:`finish` returned)."""
        ...


class HashingSink:
    """A :class:`BlobSink` that keeps nothing: it only hashes and counts (``inspect`` of an archive)."""

    def __init__(self) -> None:
        self._digester = Digester()

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Hash ``data``; return its length."""
        self._digester.update(data)
        return len(data)

    def finish(self) -> Digest:
        """Return the digest of everything written."""
        return self._digester.finish()

    def abort(self) -> None:
        """Nothing to discard."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._digester.size


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


class VerifyingReader:
    """Reads exactly ``size`` bytes from ``source`` and checks their digest at the end.

    Args:
        source: a reader (a binary file, a response body) positioned at the start of the content.
        digest: the expected digest.
        size: the expected size in bytes.
        where: the name used in error messages (a file path or member name).

    ``read`` raises :class:`~pyoci.errors.DigestMismatchError` when the content is shorter or longer
    than ``size`` or its digest differs.
    """

    def __init__(self, source: Readable, digest: Digest, size: int, where: str) -> None:
        self._source = source
        self._expected = digest
        self._size = size
        self._where = where
        self._digester = Digester(digest.algorithm)
        self._done = False

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes (all remaining when ``n`` < 0); ``b""`` at the verified end."""
        remaining = self._size - self._digester.size
        want = remaining if n < 0 else min(n, remaining)
        data = self._source.read(want) if want > 0 else b""
        self._digester.update(data)
        if want > 0 and not data:
            raise DigestMismatchError(
                f"{self._where}: size: expected {self._size} bytes, got {self._digester.size}",
                expected=self._size,
                actual=self._digester.size,
            )
        if self._digester.size >= self._size and not self._done:
            self._check_end()
        return data

    def _check_end(self) -> None:
        self._done = True
        if self._digester.size > self._size or self._source.read(1):
            message = f"{self._where}: size: expected {self._size} bytes, got more"
            raise DigestMismatchError(message, expected=self._size)
        actual = self._digester.finish()
        if actual != self._expected:
            raise DigestMismatchError(
                f"{self._where}: digest: expected {self._expected}, got {actual}",
                expected=str(self._expected),
                actual=str(actual),
            )

    def drain(self) -> None:
        """Read and verify the rest of the content, discarding it."""
        while not self._done:
            self.read(1 << 20)

    def read_all(self) -> bytes:
        """Read and verify the whole content (for small documents: manifests, indexes, configs)."""
        parts = []
        while not self._done:
            parts.append(self.read())
        return b"".join(parts)
