"""HTTP helpers shared by the registry client and its auth flow: bounded reads, retries, redaction.

Nothing a server sends is trusted: bodies are read up to a limit (compressed ones decompressed with
a bounded output), ``Retry-After`` is clamped, and every text that may be printed is redacted.
"""

from __future__ import annotations

import math
import zlib

import httpx

from pyoci.errors import RegistryError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers worth another attempt (distribution-spec ``spec.md``; RFC 9110 for 429 and 5xx)."""
MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured, in seconds."""
MAX_ERROR_BODY = 64 << 10
"""Bytes of an error answer read (for its distribution-spec error codes)."""


class Transient(Exception):
    """A failure worth another attempt: a connection error, a 429 or 5xx, a cut upload (internal).

    Attributes:
        retry_after: seconds the server asked to wait (``Retry-After``), or None.
        status: the HTTP status, or None for a connection failure.
    """

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


def redact(text: str, secrets: set[str]) -> str:
    """``text`` with every secret of three characters or more replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """True when both URLs have the same scheme, host and port (RFC 6454 origin)."""
    return (a.scheme, a.host, _port(a)) == (b.scheme, b.host, _port(b))


def _port(url: httpx.URL) -> int:
    if url.port is not None:
        return url.port
    return 443 if url.scheme == "https" else 80


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` of ``response`` in seconds (RFC 9110 10.2.3, the delay-seconds form), clamped, or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value.isascii() or not value.isdigit():
        return None
    seconds = float(value[:6])
    return min(seconds, MAX_RETRY_AFTER) if math.isfinite(seconds) else None


def read_bounded(response: httpx.Response, limit: int, what: str, truncate: bool = False) -> bytes:
    """Read the body of a streamed ``response``, at most ``limit`` bytes after decompression.

    ``Content-Encoding`` gzip or deflate is decompressed here with a bounded output, so a small
    compressed answer cannot expand into gigabytes; other encodings are refused.

    Args:
        response: a response opened with ``stream=True``, body unread.
        limit: the most bytes kept.
        what: names the request in messages.
        truncate: keep the first ``limit`` bytes of a longer body (an error answer) instead of failing.

    Raises:
        RegistryError: the body is larger than ``limit`` (and not ``truncate``), or in an encoding
            pyoci does not read.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        message = f"{what}: answer in an unsupported content encoding {encoding!r}"
        raise RegistryError(message, status=response.status_code)
    inflate = None if encoding in ("", "identity") else zlib.decompressobj(zlib.MAX_WBITS | 32)
    body = bytearray()
    for chunk in response.iter_raw():
        data = chunk if inflate is None else inflate.decompress(chunk, limit + 1 - len(body))
        body += data
        if len(body) > limit or (inflate is not None and inflate.unconsumed_tail):
            if truncate:
                return bytes(body[:limit])
            raise RegistryError(f"{what}: answer larger than {limit} bytes", status=response.status_code)
    return bytes(body)
