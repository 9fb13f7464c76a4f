"""A reader that hashes what it reads and checks it against a descriptor at the end of the stream.

Image-spec ``descriptor.md`` "Verification": content must be verified against its digest and size
before it is trusted. The check happens when the stream is exhausted (expected before actual in
the message); the reader never returns bytes past the declared size.
"""

from __future__ import annotations

from typing import BinaryIO

from pyoci.digest import Digest, Digester
from pyoci.errors import DigestMismatchError


class VerifyingReader:
    """Reads exactly ``size`` bytes from ``source`` and checks their digest at the end.

    Args:
        source: binary file object positioned at the start of the content.
        digest: the expected digest.
        size: the expected size in bytes.
        where: the name used in error messages (a file path or member name).

    ``read`` raises :class:`~pyoci.errors.DigestMismatchError` when the content is shorter or longer
    than ``size`` or its digest differs.
    """

    def __init__(self, source: BinaryIO, digest: Digest, size: int, where: str) -> None:
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
            raise DigestMismatchError(f"{self._where}: size: expected {self._size} bytes, got {self._digester.size}")
        if self._digester.size == self._size and not self._done:
            self._check_end()
        return data

    def _check_end(self) -> None:
        self._done = True
        if self._source.read(1):
            raise DigestMismatchError(f"{self._where}: size: expected {self._size} bytes, got more")
        actual = self._digester.finish()
        if actual != self._expected:
            raise DigestMismatchError(f"{self._where}: digest: expected {self._expected}, got {actual}")

    def drain(self) -> None:
        """Read and verify the rest of the content, discarding it."""
        while self.read(1 << 20):
            pass
        if not self._done:
            self._check_end()

    def read_all(self) -> bytes:
        """Read and verify the whole content (for small documents: manifests, indexes, configs)."""
        data = self.read()
        if not self._done:
            self._check_end()
        return data
