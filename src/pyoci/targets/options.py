"""How to reach registries: the options every registry command takes (no network code: cheap to import)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pyoci.errors import FormatError

DEFAULT_CHUNK_SIZE = 64 << 20
DEFAULT_JOBS = 3
"""Blobs transferred at once by default (benchmarks/README.md: push of a 10-layer image)."""
MAX_RETRIES = 100
"""Most retries accepted for ``retry_times``."""
MAX_BACKOFF = 30.0
"""Longest wait between two attempts, in seconds (a ``Retry-After`` may ask for up to 60)."""


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach and authenticate to registries.

    Attributes:
        creds: ``USER:PASSWORD`` for every registry of the command (skopeo's ``--creds``).
        authfile: a containers-auth.json file to read instead of the default runtime one.
        cert_dir: a directory of ``*.crt`` CA certificates and ``*.cert``/``*.key`` client pairs
            (default: ``/etc/containers/certs.d/HOST`` and ``/etc/docker/certs.d/HOST`` when present).
        tls_verify: verify server certificates; when False, plain HTTP is also allowed.
        chunk_size: blobs larger than this many bytes are sent in ``PATCH`` chunks of this size; 0: never.
        retry_times: how many times a failed request or blob upload is retried (0 to 100).
        jobs: blobs transferred at once, for every destination (1 to 32).
        retry_delay: seconds before the first retry (0 to 30); doubled for each further one.
        timeout: seconds without progress on a connection before it counts as failed.
        environ: the environment for credential lookup (default ``os.environ``).

    Raises:
        FormatError: a value out of its range (negative, not finite, too many retries).
    """

    creds: str | None = field(default=None, repr=False)
    authfile: str | None = None
    cert_dir: str | None = None
    tls_verify: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    retry_times: int = 3
    retry_delay: float = 1.0
    timeout: float = 60.0
    jobs: int = DEFAULT_JOBS
    environ: Mapping[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.chunk_size < 0:
            raise FormatError(f"--chunk-size {self.chunk_size}: must not be negative")
        if not 0 <= self.retry_times <= MAX_RETRIES:
            raise FormatError(f"--retry-times {self.retry_times}: expected 0 to {MAX_RETRIES}")
        if not 0 <= self.retry_delay <= MAX_BACKOFF:  # also false for NaN
            raise FormatError(f"--retry-delay {self.retry_delay}: expected 0 to {MAX_BACKOFF:.0f} seconds")
        if not 1 <= self.jobs <= 32:
            raise FormatError(f"--jobs {self.jobs}: expected 1 to 32")
        if not 0 < self.timeout <= 3600:
            raise FormatError(f"timeout {self.timeout}: expected more than 0 and at most 3600 seconds")
