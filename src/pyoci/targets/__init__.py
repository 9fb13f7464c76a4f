"""The small protocols every push destination implements (a registry repository, a static tree).

:class:`Target` is what :func:`pyoci.push` needs: ask for a blob, send a blob, send a manifest.
:class:`Mount` is an optional capability: make a blob that another repository of the same
destination holds appear in this one without sending its bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.progress import Progress
from pyoci.streams import Readable

BlobOpener = Callable[[], AbstractContextManager[Readable]]
"""Opens a blob's bytes from the start, verified against its descriptor at the end of the stream
(:class:`pyoci.streams.VerifyingReader`); called again for each attempt of an upload."""


class Target(Protocol):
    """One repository of a push destination."""

    @property
    def name(self) -> str:
        """The destination as the user wrote it (for messages), e.g. ``docker://host/repo``."""
        ...

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the repository already holds the blob."""
        ...

    def put_blob(self, descriptor: Descriptor, opener: BlobOpener, progress: Progress) -> None:
        """Store the blob read from ``opener()`` (verified against ``descriptor``), reporting bytes sent."""
        ...

    def put_manifest(self, descriptor: Descriptor, raw: bytes, reference: str) -> Digest:
        """Store the manifest or index ``raw`` under ``reference`` (a tag or its digest); return its digest."""
        ...


@runtime_checkable
class Mount(Protocol):
    """A target that can link a blob from another repository of the same destination."""

    def mount_blob(self, descriptor: Descriptor, from_repository: str) -> bool:
        """Make the blob held by ``from_repository`` appear here; False when that is not possible."""
        ...
