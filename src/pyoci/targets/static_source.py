"""A repository of a static registry tree, read: a :class:`~pyoci.targets.Source` over its files.

The tree is the one :mod:`pyoci.targets.static` writes (``v2/REPO/manifests/REF.KIND``, ``v2/REPO/blobs/DIGEST``;
a tree of the earlier layout, ``manifests/REF``, is read too). Every file is verified against its
descriptor when it is read, as a pull from the tree's web host would be.
"""

from __future__ import annotations

from pyoci import walk
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import DigestMismatchError, FormatError, PyociError, RegistryError, TagError
from pyoci.reference import StaticReference
from pyoci.targets.referrers import referrer_subject
from pyoci.targets.static import StaticRepository, StaticTree, read_small


class StaticSource(StaticRepository):
    """One image of a static tree's repository (``static:DIR:REPO[:TAG|@DIGEST]``; no tag: ``latest``).

    Args:
        ref: the reference; it must name a repository.

    Raises:
        FormatError: the reference names the whole tree.
    """

    def __init__(self, ref: StaticReference) -> None:
        super().__init__(StaticTree(ref.root), ref.repo())
        self.ref = ref

    @property
    def name(self) -> str:
        """``static:DIR:REPO[:TAG]``."""
        return str(self.ref)

    def roots(self) -> list[tuple[Descriptor, str | None]]:
        """The manifest or index under the tag (or digest), its media type the one its file stores.

        Raises:
            TagError: no such tag or digest in the repository.
            DigestMismatchError: a file named by a digest holds other bytes.
            RegistryError: the file is too large for a manifest.
        """
        tag = self.ref.tag if self.ref.tag is not None or self.ref.digest is not None else "latest"
        reference = str(self.ref.digest) if self.ref.digest is not None else str(tag)
        file = self.manifest_file(reference)
        if file is None:
            raise TagError(f"{self.name}: no manifest {reference!r} in the tree")
        try:
            raw = read_small(file.path)
        except FormatError as exc:
            raise RegistryError(f"{file.path}: too large for a manifest") from exc
        digest = Digest.of_bytes(raw)
        if self.ref.digest is not None and Digest.of_bytes(raw, self.ref.digest.algorithm) != self.ref.digest:
            raise DigestMismatchError(
                f"{file.path}: the bytes do not match the digest", expected=str(self.ref.digest), actual=str(digest)
            )
        return [(Descriptor(file.media_type, self.ref.digest or digest, len(raw)), tag)]

    def referrers(self, subject: Digest) -> list[tuple[Descriptor, str | None]]:
        """Manifests of the repository that refer to ``subject``: by their ``subject``, or by a referrers-schema tag.

        Raises:
            FormatError: a manifest file of the earlier layout that is not JSON.
        """
        found: dict[Digest, tuple[Descriptor, str | None]] = {}
        for reference, file in sorted(self.manifests().items()):
            tag = reference if file.is_tag else None
            if tag is not None and referrer_subject(tag) != subject:
                continue
            raw = read_small(file.path)
            descriptor = Descriptor(file.media_type, Digest.of_bytes(raw), len(raw))
            if tag is not None:
                found[descriptor.digest] = (descriptor, tag)
                continue
            try:
                document = walk.read_node(self, descriptor).document
            except PyociError:
                continue  # not a readable manifest: not a referrer to copy
            if document is not None and document.subject is not None and document.subject.digest == subject:
                found.setdefault(descriptor.digest, (descriptor, None))
        return list(found.values())
