"""Where images come from and go to: the small read and write protocols every store implements.

A **source** reads an image: the descriptors its reference names (:meth:`Source.roots`), documents
and blobs by descriptor, each verified against its digest and size. A **target** receives one: it
is asked whether it has a blob or manifest, given blobs to store, then manifests, children before
parents (:mod:`pyoci.targets.copy` drives it). Optional capabilities are protocols of their own:
:class:`Mount` (make a blob another repository of the same destination holds appear without sending
its bytes).

Implementations: an OCI image layout (:mod:`.layout`), a registry repository (:mod:`.registry`), a
static registry tree (:mod:`.static`); a docker-archive or oci-archive source is imported into a
staging layout first (:mod:`pyoci.sources`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

from pyoci.descriptor import Descriptor
from pyoci.progress import Progress
from pyoci.streams import Readable


class BlobSource(Protocol):
    """Reads documents and blobs by descriptor (a :class:`~pyoci.walk.DocumentReader` that also streams blobs)."""

    @property
    def name(self) -> str:
        """The store as the user named it, for messages."""
        ...

    def read_document(self, descriptor: Descriptor) -> bytes:
        """Return a manifest, index or config, verified against ``descriptor`` (bounded size).

        Raises:
            PyociError: missing (``BlobNotFoundError``), corrupt (``DigestMismatchError``), too large,
                or unreachable.
        """
        ...

    def open_blob(self, descriptor: Descriptor) -> AbstractContextManager[Readable]:
        """Open a blob's bytes from the start; the reader checks digest and size at the end of the stream.

        Raises:
            PyociError: the blob is missing or unreachable (on open), or differs from ``descriptor``
                (``DigestMismatchError``, from ``read``).
        """
        ...

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the store holds the blob (its content is not checked)."""
        ...

    def blob_path(self, descriptor: Descriptor) -> Path | None:
        """A file on this machine holding the blob (a target may hard-link it), or None.

        The file's content is the source's claim: a target that links it must still verify it,
        unless :attr:`verified` says this process wrote and named it by its digest itself.
        """
        ...

    @property
    def verified(self) -> bool:
        """True when every blob was written by this process and named by its own digest (no re-hash needed)."""
        ...


class Source(BlobSource, Protocol):
    """A :class:`BlobSource` opened on one reference: the image (or images) it names."""

    def roots(self) -> list[tuple[Descriptor, str | None]]:
        """The descriptors the reference names, each with its tag (None when untagged).

        One entry for a tag or digest; several for an untagged layout holding platform entries
        straight in index.json, or for an archive opened with every image.

        Raises:
            TagError: the tag is absent or ambiguous; PyociError: the reference cannot be read.
        """
        ...


class Target(Protocol):
    """Where a copy writes: one repository of a registry or static tree, or an OCI image layout."""

    @property
    def name(self) -> str:
        """The destination as the user wrote it (for messages), e.g. ``docker://host/repo``."""
        ...

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the target already holds the blob."""
        ...

    def put_blob(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        """Store the blob of ``descriptor`` read from ``source`` (verified on the way), reporting bytes sent.

        Raises:
            DigestMismatchError: the source's bytes differ from ``descriptor``.
            PyociError: the target refused or failed the write.
        """
        ...

    def has_manifest(self, descriptor: Descriptor, tag: str | None = None) -> bool:
        """True when the target holds the manifest or index by digest (with ``tag``: and the tag points at it)."""
        ...

    def put_manifest(self, descriptor: Descriptor, raw: bytes, tag: str | None) -> None:
        """Store the manifest or index ``raw`` by its digest and, when ``tag`` is given, under that tag.

        Raises:
            PyociError: the target refused it (a registry computing another digest included).
        """
        ...


@runtime_checkable
class Mount(Protocol):
    """A target that can link a blob from another repository of the same destination."""

    def mount_blob(self, descriptor: Descriptor, from_repository: str) -> bool:
        """Make the blob held by ``from_repository`` appear here; False when that is not possible."""
        ...


@runtime_checkable
class RegistryRepository(Protocol):
    """A source or target that is one repository of a registry, reached through ``client``."""

    client: object
    repository: str
