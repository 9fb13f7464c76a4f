"""An OCI image layout as a source and as a target (image-spec ``image-layout.md``).

The target is transactional: every blob and manifest it is given is staged under a temporary name
inside the layout (hard-linked from a source file on the same filesystem and hash-checked, or
copied through the hashing blob writer) and renamed into ``blobs/`` only by :meth:`LayoutTarget.commit`,
which runs just before index.json changes; a copy that fails midway leaves the layout as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from pyoci import mediatype, walk
from pyoci.descriptor import CONTAINERD_IMAGE_NAME, REF_NAME, Descriptor
from pyoci.digest import Digest
from pyoci.errors import BlobNotFoundError, DigestMismatchError, FormatError, LayoutError, TagError
from pyoci.fsutil import read_regular, temp_name
from pyoci.jsonio import MAX_DOCUMENT_SIZE
from pyoci.layout.store import BlobWriter, ImageLayout, writing
from pyoci.manifest import document_media_type
from pyoci.progress import Progress
from pyoci.streams import Readable, VerifyingReader
from pyoci.targets import BlobSource
from pyoci.targets.referrers import referrer_subject

_CHUNK = 1 << 20
SOURCE_ONLY_ANNOTATIONS = (REF_NAME, CONTAINERD_IMAGE_NAME)
"""index.json annotations that name a tag of the source layout; never carried to another place."""


class LayoutSource:
    """An OCI image layout opened for reading one image (or its untagged platform entries).

    Args:
        layout: the layout.
        tag: the tag to read, or None (the only image, or every untagged entry).
        digest: read the manifest or index with this digest instead of a tag.
        verified: every blob was written by this process under its own digest (a docker-archive
            converted on the fly): a target that hard-links them need not hash them again.
    """

    def __init__(
        self, layout: ImageLayout, tag: str | None = None, digest: Digest | None = None, verified: bool = False
    ) -> None:
        self.layout = layout
        self.tag = tag
        self.digest = digest
        self._verified = verified

    @property
    def name(self) -> str:
        """The layout directory."""
        return str(self.layout.root)

    @property
    def verified(self) -> bool:
        """True for a layout this process wrote (see the class docstring)."""
        return self._verified

    def roots(self) -> list[tuple[Descriptor, str | None]]:
        """The entries the reference names: by digest, by tag, or the only image (see :meth:`ImageLayout.entries`).

        Raises:
            TagError: the tag is absent or ambiguous, or the digest is not in the layout.
        """
        if self.digest is not None:
            return [(self._by_digest(self.digest), None)]
        return [(entry, self.tag or entry.ref_name) for entry in self.layout.entries(self.tag)]

    def _by_digest(self, digest: Digest) -> Descriptor:
        for entry in self.layout.read_index().manifests:
            if entry.digest == digest:
                return Descriptor(entry.media_type, entry.digest, entry.size, platform=entry.platform)
        path = self.layout.blob_path(digest)
        try:
            raw = read_regular(path, MAX_DOCUMENT_SIZE)
        except (FileNotFoundError, NotADirectoryError):
            raise TagError(f"{self.layout.root}: no manifest {digest} in the layout") from None
        except OSError as exc:
            raise LayoutError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except FormatError as exc:
            raise LayoutError(str(exc)) from exc
        if Digest.of_bytes(raw, digest.algorithm) != digest:
            raise DigestMismatchError(f"{path}: digest: expected {digest}, got {Digest.of_bytes(raw)}")
        return Descriptor(document_media_type(raw, str(path)), digest, len(raw))

    def read_document(self, descriptor: Descriptor) -> bytes:
        """The verified bytes of a small blob (see :meth:`ImageLayout.read_blob`)."""
        return self.layout.read_blob(descriptor)

    def referrers(self, subject: Digest) -> list[tuple[Descriptor, str | None]]:
        """index.json entries that refer to ``subject``: by their document's ``subject``, or by a referrers-schema tag.

        Raises:
            LayoutError: index.json or an entry's document cannot be read.
        """
        found: dict[Digest, tuple[Descriptor, str | None]] = {}
        for entry in self.layout.read_index().manifests:
            bare = dataclasses.replace(entry, annotations={})
            tag = entry.ref_name
            if tag is not None and referrer_subject(tag) == subject:
                found[entry.digest] = (bare, tag)
            elif entry.digest not in found and entry.media_type in mediatype.MANIFEST_TYPES | mediatype.INDEX_TYPES:
                document = walk.read_node(self.layout, entry).document
                if document is not None and document.subject is not None and document.subject.digest == subject:
                    found[entry.digest] = (bare, None)
        return list(found.values())

    def open_blob(self, descriptor: Descriptor) -> AbstractContextManager[Readable]:
        """A verifying reader over the blob (see :meth:`ImageLayout.blob_file`)."""
        return self.layout.blob_file(descriptor)

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the blob file exists."""
        return self.layout.has_blob(descriptor.digest)

    def blob_path(self, descriptor: Descriptor) -> Path | None:
        """The blob's file in the layout, when it is a regular file (not a symbolic link) that may be hard-linked.

        None otherwise: a link would be linked as a link (``link(2)`` does not follow it), so such a
        blob is copied through :meth:`open_blob` instead.
        """
        path = self.layout.blob_path(descriptor.digest)
        try:
            return path if stat.S_ISREG(os.lstat(path).st_mode) else None
        except OSError:
            return None


class LayoutTarget:
    """Writes images into an OCI image layout; blobs are staged until :meth:`commit` (see the module docstring).

    Args:
        layout: the layout, opened by :func:`~pyoci.layout.store.writing` (the writer lock held).

    Use :func:`layout_target` to open one; staged files are removed by :meth:`abort`.
    """

    def __init__(self, layout: ImageLayout) -> None:
        self.layout = layout
        self.staged: dict[Digest, tuple[Path | BlobWriter, str]] = {}

    @property
    def name(self) -> str:
        """``oci:DIR``."""
        return f"oci:{self.layout.root}"

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the blob is staged, or in the layout with the descriptor's size (its content is not re-read)."""
        return descriptor.digest in self.staged or self.layout.has_blob(descriptor.digest, descriptor.size)

    def has_manifest(self, descriptor: Descriptor, tag: str | None = None) -> bool:
        """True when the document is in the layout or staged (with ``tag``: and index.json tags it so).

        A staged document is not tagged yet, so with ``tag`` it is always False until committed.
        """
        if tag is None:
            return self.has_blob(descriptor)
        return self.layout.has_blob(descriptor.digest) and any(
            entry.ref_name == tag and entry.digest == descriptor.digest for entry in self.layout.read_index().manifests
        )

    def put_blob(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        """Stage the blob: a hard link to the source's file (hash-checked unless the source is verified), or a copy.

        Raises:
            BlobNotFoundError: the source lacks the blob.
            DigestMismatchError: its bytes differ from ``descriptor``.
            LayoutError: the layout cannot be written.
        """
        if self.has_blob(descriptor):
            return
        path = source.blob_path(descriptor)
        staged: Path | BlobWriter | None = self._link(path, descriptor, source) if path is not None else None
        if staged is None:
            staged = self._copy(descriptor, source, progress)
        self.staged[descriptor.digest] = (staged, descriptor.media_type)

    def _link(self, path: Path, descriptor: Descriptor, source: BlobSource) -> Path | None:
        tmp = temp_name(self.layout.root)
        try:
            os.link(path, tmp)
        except FileNotFoundError:
            raise BlobNotFoundError(f"{source.name}: blob {descriptor.digest} is missing") from None
        except OSError:
            return None  # another filesystem, or links not allowed: copy instead
        if source.verified:
            return tmp
        try:
            with open(tmp, "rb") as f:
                VerifyingReader(f, descriptor.digest, descriptor.size, str(path)).drain()
        except OSError as exc:  # the link is new, its file the source's: name the source's blob
            tmp.unlink(missing_ok=True)
            raise LayoutError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _copy(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> BlobWriter:
        writer = self.layout.new_blob(algorithm=descriptor.digest.algorithm)
        progress.start(f"{descriptor.digest.encoded[:12]}", descriptor.size)
        try:
            with source.open_blob(descriptor) as reader:
                while chunk := reader.read(_CHUNK):
                    writer.write(chunk)
                    progress.advance(len(chunk))
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        finally:
            progress.finish()
        return writer

    def put_manifest(self, descriptor: Descriptor, raw: bytes, tag: str | None) -> None:
        """Stage the document; with ``tag``, commit everything staged and point the tag at it in index.json.

        The index.json entry is ``descriptor`` (its ``platform`` kept) with the source's tag
        annotations replaced by ``org.opencontainers.image.ref.name`` = ``tag``; an entry that held
        the tag before is replaced.
        """
        if not self.has_blob(descriptor):
            writer = self.layout.new_blob(algorithm=descriptor.digest.algorithm)
            try:
                writer.write(raw)
                if writer.finish() != descriptor.digest:
                    raise DigestMismatchError(f"{self.name}: manifest {descriptor.digest}: bytes differ")
            except BaseException:
                writer.abort()
                raise
            self.staged[descriptor.digest] = (writer, descriptor.media_type)
        if tag is not None:
            self.commit()
            annotations = {k: v for k, v in descriptor.annotations.items() if k not in SOURCE_ONLY_ANNOTATIONS}
            entry = dataclasses.replace(descriptor, annotations={**annotations, REF_NAME: tag})
            self.layout.update_index(lambda current: [d for d in current if d.ref_name != tag] + [entry])

    def add_untagged(self, descriptor: Descriptor) -> None:
        """Commit what is staged and list ``descriptor`` in index.json without a tag, once.

        For referrers (signatures, SBOMs) copied without a tag: an untagged index.json entry keeps
        them reachable, as image-spec ``image-layout.md`` allows and oras and regclient write them.
        """
        self.commit()
        bare = dataclasses.replace(descriptor, annotations={}, platform=None)
        self.layout.update_index(
            lambda current: current if bare.digest in {d.digest for d in current} else [*current, bare]
        )

    def commit(self) -> None:
        """Rename every staged blob into place (all before index.json changes), then sync the directory.

        Raises:
            LayoutError: a blob cannot be renamed into place (e.g. a directory holds its name).
        """
        copies = [(staged, media_type) for staged, media_type in self.staged.values() if isinstance(staged, BlobWriter)]
        self.layout.commit_blobs(copies)  # one filesystem flush for all copies; their digests were checked
        for digest, (staged, _) in self.staged.items():
            if isinstance(staged, Path):
                target = self.layout.blob_path(digest)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, target)
                except OSError as exc:
                    raise LayoutError(f"{target}: cannot write a blob: {exc.strerror or exc}") from exc
                staged.unlink(missing_ok=True)  # rename(2) is a no-op when both names are links to one file
        self.staged.clear()
        self.layout.sync()

    def abort(self) -> None:
        """Remove every staged temporary file (nothing committed is touched)."""
        for staged, _ in self.staged.values():
            if isinstance(staged, BlobWriter):
                staged.abort()
            else:
                staged.unlink(missing_ok=True)
        self.staged.clear()


@contextlib.contextmanager
def layout_target(path: str | Path) -> Iterator[LayoutTarget]:
    """Open (or create) the layout at ``path`` as a target, holding the writer lock.

    On leaving, whatever is still staged is removed; when the body raised and this call created the
    layout, the layout is removed again (see :func:`~pyoci.layout.store.writing`).

    Raises:
        LayoutError: ``path`` is not a layout and cannot become one.
    """
    with writing(path) as layout:
        target = LayoutTarget(layout)
        try:
            yield target
        finally:
            target.abort()
