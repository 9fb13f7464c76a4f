"""Content digests (image-spec ``descriptor.md`` "Digests") and a hasher that counts bytes.

Only ``sha256`` and ``sha512`` are accepted, as the image-spec registers; the encoded part must be
lower-case hex of the algorithm's length.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pyoci.errors import FormatError, StreamNotConsumedError

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_ENCODED = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest such as ``sha256:9f86...``.

    Attributes:
        algorithm: ``"sha256"`` or ``"sha512"``.
        encoded: the lower-case hex digest (64 or 128 characters).
    """

    algorithm: str
    encoded: str

    def __post_init__(self) -> None:
        length = _HEX_LENGTH.get(self.algorithm)
        if length is None:
            raise FormatError(f"digest {self}: unsupported algorithm {self.algorithm!r}")
        if len(self.encoded) != length or not _ENCODED.fullmatch(self.encoded):
            raise FormatError(f"digest {self}: encoded part is not {length} lower-case hex digits")

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``"algorithm:encoded"``.

        Raises:
            FormatError: the text is not a valid sha256 or sha512 digest.
        """
        algorithm, sep, encoded = text.partition(":")
        if not sep:
            raise FormatError(f"digest {text!r}: missing ':' between algorithm and hex")
        return cls(algorithm, encoded)

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """Return the digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


class Digester:
    """Incremental hash that also counts the bytes fed to it.

    ``update`` releases the GIL for large buffers (hashlib does), so a Digester can run in a worker
    thread beside compression. ``digest`` and ``size`` are final only after :meth:`finish`.
    """

    def __init__(self, algorithm: str = "sha256") -> None:
        self._algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self._size = 0
        self._digest: Digest | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed ``data`` (any bytes-like object)."""
        self._hash.update(data)
        self._size += len(data)

    def finish(self) -> Digest:
        """Mark the stream as complete and return its digest."""
        self._digest = Digest(self._algorithm, self._hash.hexdigest())
        return self._digest

    @property
    def digest(self) -> Digest:
        """The digest of everything fed, once :meth:`finish` was called.

        Raises:
            StreamNotConsumedError: :meth:`finish` has not been called.
        """
        if self._digest is None:
            raise StreamNotConsumedError("digest: the stream has not been read to its end")
        return self._digest

    @property
    def size(self) -> int:
        """Bytes fed so far; the stream's size once :meth:`finish` was called."""
        return self._size
