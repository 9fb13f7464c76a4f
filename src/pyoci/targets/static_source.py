"""A repository of a static registry tree, read: a :class:`~pyoci.targets.Source` over its files.

The tree is the one :mod:`pyoci.targets.static` writes: ``v2/REPO/manifests/<tag or digest>`` hold
the manifest bytes and ``v2/REPO/blobs/<digest>`` the blobs. Every file is verified against its
descriptor when it is read, as a pull from the tree's web host would be.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import BlobNotFoundError, DigestMismatchError, RegistryError, TagError
from pyoci.jsonio import MAX_DOCUMENT_SIZE
from pyoci.manifest import document_media_type
from pyoci.reference import StaticReference
from pyoci.streams import Readable, VerifyingReader


class StaticSource:
    """One image of a static tree's repository (``static:DIR:REPO[:TAG|@DIGEST]``; no tag: ``latest``).

    Args:
        ref: the reference; it must name a repository.

    Raises:
        FormatError: the reference names the whole tree.
    """

    def __init__(self, ref: StaticReference) -> None:
        self.ref = ref
        self.directory = ref.root / "v2" / ref.repo()

    @property
    def name(self) -> str:
        """``static:DIR:REPO[:TAG]``."""
        return str(self.ref)

    @property
    def verified(self) -> bool:
        """False: a tree's files are hashed when read."""
        return False

    def roots(self) -> list[tuple[Descriptor, str | None]]:
        """The manifest or index under the tag (or digest), its media type read from the document.

        Raises:
            TagError: no such tag or digest in the repository.
            DigestMismatchError: a file named by a digest holds other bytes.
        """
        tag = self.ref.tag if self.ref.tag is not None or self.ref.digest is not None else "latest"
        reference = str(self.ref.digest) if self.ref.digest is not None else str(tag)
        path = self.directory / "manifests" / reference
        try:
            if path.stat().st_size > MAX_DOCUMENT_SIZE:
                raise RegistryError(f"{path}: too large for a manifest")
            raw = path.read_bytes()
        except FileNotFoundError:
            raise TagError(f"{self.name}: no manifest {reference!r} in the tree") from None
        digest = Digest.of_bytes(raw)
        if self.ref.digest is not None and Digest.of_bytes(raw, self.ref.digest.algorithm) != self.ref.digest:
            raise DigestMismatchError(f"{path}: the bytes do not match the digest", expected=str(self.ref.digest))
        descriptor = Descriptor(document_media_type(raw, str(path)), self.ref.digest or digest, len(raw))
        return [(descriptor, tag)]

    def _path(self, descriptor: Descriptor) -> Path:
        kind = "manifests" if (self.directory / "manifests" / str(descriptor.digest)).is_file() else "blobs"
        return self.directory / kind / str(descriptor.digest)

    def read_document(self, descriptor: Descriptor) -> bytes:
        """A manifest, index or config of the repository, verified.

        Raises:
            BlobNotFoundError: absent; DigestMismatchError: other bytes; RegistryError: too large.
        """
        if descriptor.size > MAX_DOCUMENT_SIZE:
            raise RegistryError(f"{self.name}: {descriptor.digest}: {descriptor.size} bytes is too large a document")
        with self.open_blob(descriptor) as reader:
            return b"".join(iter(lambda: reader.read(1 << 20), b""))

    @contextlib.contextmanager
    def open_blob(self, descriptor: Descriptor) -> Iterator[Readable]:
        """A verifying reader over the file of ``descriptor`` (a blob, or a manifest by digest).

        Raises:
            BlobNotFoundError: the file is absent.
            DigestMismatchError: (from ``read``) the bytes differ from ``descriptor``.
        """
        path = self._path(descriptor)
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise BlobNotFoundError(f"{self.name}: blob {descriptor.digest} is missing") from None
        with file:
            yield VerifyingReader(file, descriptor.digest, descriptor.size, str(path))

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the file exists."""
        return self._path(descriptor).is_file()

    def blob_path(self, descriptor: Descriptor) -> Path | None:
        """The blob's file in the tree."""
        return self._path(descriptor)
