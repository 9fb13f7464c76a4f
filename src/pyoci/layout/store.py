"""The OCI image layout (image-spec ``image-layout.md``): blobs, ``oci-layout`` and ``index.json``.

Writes are atomic: every blob and index file is written to a temporary name inside the layout, then
fsynced and renamed into place, so a failed or interrupted run never leaves a corrupt file and never
damages what was there. Temporary names start with :data:`TEMP_PREFIX` and carry the writer's
process ID, so ``gc`` can tell a live writer's file from a leftover.

Concurrency between pyoci processes uses ``flock`` on the layout's own directories (no lock files):

* writers hold a shared lock on ``blobs/`` from their first blob to their index update, and ``gc``
  takes it exclusively, so ``gc`` never deletes a blob that a running writer has yet to reference;
* each read-modify-write of ``index.json`` holds an exclusive lock on the layout root, so two
  writers never lose each other's update. Locks are always taken in that order.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from pyoci import mediatype
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest, Digester
from pyoci.errors import BlobNotFoundError, DigestMismatchError, FormatError, LayoutError, TagError
from pyoci.fsutil import (
    TEMP_PREFIX,
    flock,
    fsync_dir,
    fsync_path,
    open_regular,
    read_regular,
    syncfs,
    temp_name,
    write_atomic,
)
from pyoci.jsonio import MAX_DOCUMENT_SIZE, dump_json, load_json
from pyoci.layout.drain import DrainingWriter
from pyoci.manifest import Index
from pyoci.streams import VerifyingReader

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"


class BlobWriter:
    """A blob being written: hashes and counts every byte on its way to a temporary file.

    Use ``write`` (a binary sink for compressors), then :meth:`commit` to rename it into
    ``blobs/<alg>/<encoded>`` or :meth:`abort` to remove it. Until committed, the layout is unchanged.

    Args:
        layout: the layout the blob belongs to.
        background: write on a background thread (see :mod:`pyoci.layout.drain`); for large
            streamed blobs. The bytes are still hashed by the thread that calls ``write``, so that
            thread and the writing one work side by side; ``write`` may raise the thread's earlier error.
    """

    def __init__(self, layout: ImageLayout, background: bool = False, algorithm: str = "sha256") -> None:
        self._layout = layout
        self.path = temp_name(layout.root)
        try:
            self._file: BinaryIO = open(self.path, "xb")  # noqa: SIM115 - closed by commit/abort
        except OSError as exc:
            raise self._failed(exc) from exc
        self._digester = Digester(algorithm)
        self._drain = DrainingWriter(self._file) if background else None
        self.closed = False
        self.committed = False
        self.durable = False

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Hash and write ``data``; returns its length in bytes.

        A background writer queues an immutable copy of a ``bytearray`` or ``memoryview`` (``bytes``
        as they are), and hashes exactly that object: the digest is of the bytes written even if the
        caller reuses its buffer at once.

        Raises:
            LayoutError: the file system refused the write (a full disk, a read-only layout).
        """
        try:
            if self._drain is not None:
                chunk = data if isinstance(data, bytes) else bytes(data)
                self._digester.update(chunk)
                return self._drain.write(chunk)
            self._digester.update(data)
            self._file.write(data)
        except OSError as exc:
            raise self._failed(exc) from exc
        return len(data)

    def _failed(self, exc: OSError) -> LayoutError:
        return LayoutError(f"{self._layout.root}: cannot write a blob: {exc.strerror or exc}")

    def flush(self) -> None:
        """Flush buffered bytes (a background writer flushes in :meth:`finish`)."""
        if self._drain is None:
            self._file.flush()

    @property
    def size(self) -> int:
        """Bytes written so far (all of them once :meth:`finish` returned)."""
        return self._digester.size

    def finish(self) -> Digest:
        """Write out and close the temporary file; return the digest of everything written.

        The file is made durable by :meth:`commit` (or by :meth:`ImageLayout.commit_blobs` for many
        blobs at once), so staging many small layers costs no fsync each.

        Raises:
            LayoutError: writing failed (the temporary file is removed).
        """
        if not self.closed:
            try:
                if self._drain is not None:
                    self._drain.close()
                self._file.close()
            except BaseException as exc:
                self.abort()
                if isinstance(exc, OSError):
                    raise self._failed(exc) from exc
                raise
            self.closed = True
            self._digester.finish()
        return self._digester.digest

    def commit(self, media_type: str, expected: Digest | None = None) -> Descriptor:
        """Make the blob durable, rename it into place, and return its descriptor.

        The digest and size come from the bytes written.

        Raises:
            DigestMismatchError: ``expected`` was given and differs from the digest of the bytes.
        """
        digest = self.finish()
        if expected is not None and expected != digest:
            self.abort()
            raise DigestMismatchError(
                f"blob {self.path.name}: digest: expected {expected}, got {digest}",
                expected=str(expected),
                actual=str(digest),
            )
        target = self._layout.blob_path(digest)
        try:
            if not self.durable:
                fsync_path(self.path)
                self.durable = True
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, target)
        except OSError as exc:
            self.abort()
            raise self._failed(exc) from exc
        self.committed = True
        return Descriptor(media_type, digest, self._digester.size)

    def abort(self) -> None:
        """Remove the temporary file; safe to call more than once, a no-op once committed."""
        if self.committed:
            return
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):  # the error that led here is the one to report
                if self._drain is not None:
                    self._drain.close()
                self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


class ImageLayout:
    """An OCI image layout directory.

    Args:
        root: the layout directory (holds ``oci-layout``, ``index.json`` and ``blobs/``).

    Construct with :meth:`open` (must exist) or :meth:`create` / :func:`writing` (created if needed).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def open(cls, root: Path | str) -> ImageLayout:
        """Open an existing layout.

        Raises:
            LayoutError: ``root`` has no ``oci-layout`` file with ``imageLayoutVersion`` 1.0.0, or no
                ``index.json``.
        """
        layout = cls(Path(root))
        marker = layout.root / LAYOUT_FILE
        try:
            data = read_regular(marker, MAX_DOCUMENT_SIZE)
        except FileNotFoundError:
            raise LayoutError(f"{layout.root}: not an OCI image layout (no {LAYOUT_FILE} file)") from None
        except OSError as exc:
            raise LayoutError(f"{layout.root}: cannot read {LAYOUT_FILE}: {exc.strerror or exc}") from exc
        except FormatError as exc:
            raise LayoutError(str(exc)) from exc
        try:
            version = load_json(data, str(marker)).get("imageLayoutVersion")
        except (FormatError, AttributeError):
            version = None
        if version != mediatype.OCI_LAYOUT_VERSION:
            raise LayoutError(f"{marker}: imageLayoutVersion is not {mediatype.OCI_LAYOUT_VERSION}")
        if not (layout.root / INDEX_FILE).is_file():
            raise LayoutError(f"{layout.root}: not an OCI image layout (no {INDEX_FILE})")
        return layout

    @classmethod
    def create(cls, root: Path | str) -> ImageLayout:
        """Open the layout at ``root``, creating it (and parent directories) when absent.

        Raises:
            LayoutError: ``root`` exists, is not empty and is not an OCI image layout, or cannot be written.
        """
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise LayoutError(f"{path}: exists and is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
            layout = cls(path)
            with layout.index_lock():
                if not (path / LAYOUT_FILE).exists():
                    strangers = [
                        p.name for p in path.iterdir() if p.name != "blobs" and not p.name.startswith(TEMP_PREFIX)
                    ]
                    if strangers:
                        raise LayoutError(f"{path}: directory is not empty and is not an OCI image layout")
                    (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
                    write_atomic(path / INDEX_FILE, Index.build([]).raw)
                    # oci-layout last: its presence means the layout is complete
                    write_atomic(path / LAYOUT_FILE, dump_json({"imageLayoutVersion": mediatype.OCI_LAYOUT_VERSION}))
                (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LayoutError(f"{path}: cannot create OCI image layout: {exc.strerror or exc}") from exc
        return cls.open(path)

    def blob_path(self, digest: Digest) -> Path:
        """Return ``blobs/<algorithm>/<encoded>`` for ``digest``."""
        return self.root / "blobs" / digest.algorithm / digest.encoded

    def has_blob(self, digest: Digest, size: int | None = None) -> bool:
        """True when the blob file exists (with ``size``: and holds that many bytes); its content is not checked."""
        try:
            found = os.stat(self.blob_path(digest))
        except (OSError, ValueError):
            return False
        return stat.S_ISREG(found.st_mode) and (size is None or found.st_size == size)

    def new_blob(self, background: bool = False, algorithm: str = "sha256") -> BlobWriter:
        """Start writing a blob under a temporary name (``background``: see :class:`BlobWriter`).

        ``algorithm`` (``sha256`` or ``sha512``) is the digest the blob is hashed and named by.
        """
        return BlobWriter(self, background, algorithm)

    def commit_blobs(self, blobs: Sequence[tuple[BlobWriter, str]]) -> list[Descriptor]:
        """Commit many finished blobs with one filesystem-wide flush instead of one fsync each.

        Args:
            blobs: (writer, media type) pairs; a writer listed twice is committed once.

        Returns:
            The descriptors, in the order given.
        """
        pending = [writer for writer, _ in blobs if not writer.committed]
        if len(pending) > 1 and syncfs(self.root):
            for writer in pending:
                writer.finish()
                writer.durable = True
        done: dict[int, Descriptor] = {}
        for writer, media_type in blobs:
            if id(writer) not in done:
                done[id(writer)] = writer.commit(media_type)
        self.sync()
        return [done[id(writer)] for writer, _ in blobs]

    def put_blob(self, data: bytes, media_type: str) -> Descriptor:
        """Write a small blob (a manifest, index or config) atomically and return its descriptor."""
        writer = self.new_blob()
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        return writer.commit(media_type)

    @contextlib.contextmanager
    def blob_file(self, descriptor: Descriptor) -> Iterator[VerifyingReader]:
        """Yield a :class:`VerifyingReader` over the blob of ``descriptor``.

        Raises:
            BlobNotFoundError: the blob file is absent (or a dangling link).
            LayoutError: it is not a readable regular file (a directory, a FIFO, a link loop).
            DigestMismatchError: (from ``read``) the bytes differ from the descriptor.
        """
        with open_blob_file(self.blob_path(descriptor.digest), descriptor, f"{self.root}: blob") as reader:
            yield reader

    def read_blob(self, descriptor: Descriptor) -> bytes:
        """Read a whole blob of at most :data:`MAX_DOCUMENT_SIZE` bytes, verified.

        Raises:
            BlobNotFoundError: the blob file is absent.
            DigestMismatchError: the bytes differ from the descriptor.
            LayoutError: the descriptor's size is beyond :data:`MAX_DOCUMENT_SIZE`.
        """
        if descriptor.size > MAX_DOCUMENT_SIZE:
            raise LayoutError(f"{self.root}: blob {descriptor.digest}: {descriptor.size} bytes is too large")
        with self.blob_file(descriptor) as reader:
            return reader.read_all()

    @property
    def name(self) -> str:
        """The layout directory, for messages (a :class:`~pyoci.walk.DocumentReader`)."""
        return str(self.root)

    def read_document(self, descriptor: Descriptor) -> bytes:
        """:meth:`read_blob` (a :class:`~pyoci.walk.DocumentReader`)."""
        return self.read_blob(descriptor)

    def entries(self, tag: str | None) -> list[Descriptor]:
        """Choose the index.json entries that make up one image (image-spec ``image-layout.md``).

        With ``tag``: the entry whose ``org.opencontainers.image.ref.name`` is ``tag``. Without: the
        only image of index.json, or, when no entry has a tag, all of them (a multi-platform layout
        written with its platform entries straight in index.json).

        Returns:
            One entry, or the untagged platform entries, in index.json order.

        Raises:
            TagError: the tag is absent or names different images; or no tag was given and the
                layout holds several tagged images, or none.
            LayoutError: index.json cannot be read.
        """
        entries = self.read_index().manifests
        if tag is not None:
            chosen = [d for d in entries if d.ref_name == tag]
            if not chosen:
                raise TagError(f"{self.root}: no image tagged {tag!r} in {INDEX_FILE} (tags: {_tag_listing(entries)})")
            if len({d.digest for d in chosen}) > 1:
                raise TagError(f"{self.root}: tag {tag!r} is ambiguous: {len(chosen)} {INDEX_FILE} entries hold it")
            return chosen[:1]
        if not entries:
            raise TagError(f"{self.root}: {INDEX_FILE} lists no images")
        if len({d.digest for d in entries}) == 1:
            return list(entries[:1])
        if all(d.ref_name is None for d in entries):
            return list(entries)
        raise TagError(
            f"{self.root}: holds several images (tags: {_tag_listing(entries)}); name one with oci:{self.root}:TAG"
        )

    def resolve(self, tag: str | None) -> Descriptor:
        """The one index.json entry of :meth:`entries` (a single image to copy or push).

        Raises:
            TagError: as :meth:`entries`, or the layout holds several untagged images (a flat
                multi-platform layout: merge them into a tag first).
        """
        entries = self.entries(tag)
        if len(entries) != 1:
            raise TagError(
                f"{self.root}: {INDEX_FILE} holds {len(entries)} untagged images and no tag;"
                f" make them one image with 'pyoci merge {self.root} oci:NEW:TAG'"
            )
        return entries[0]

    def read_index(self) -> Index:
        """Read and parse ``index.json``.

        Raises:
            LayoutError: it is missing, unreadable, not a regular file, larger than
                :data:`~pyoci.jsonio.MAX_DOCUMENT_SIZE` or not an image index.
        """
        path = self.root / INDEX_FILE
        try:
            return Index.parse(read_regular(path, MAX_DOCUMENT_SIZE), str(path))
        except OSError as exc:
            raise LayoutError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except FormatError as exc:
            raise LayoutError(str(exc)) from exc

    def update_index(self, change: Callable[[list[Descriptor]], Sequence[Descriptor]]) -> Index:
        """Replace ``index.json`` by ``change(current entries)``, under the index lock, atomically.

        The index's own annotations are kept. Returns the index written.
        """
        with self.index_lock():
            current = self.read_index()
            new = Index.build(change(list(current.manifests)), current.annotations)
            write_atomic(self.root / INDEX_FILE, new.raw)
            fsync_dir(self.root)
            return new

    def sync(self) -> None:
        """Make blob renames durable (fsync of the blob directory)."""
        fsync_dir(self.root / "blobs" / "sha256")

    @contextlib.contextmanager
    def index_lock(self) -> Iterator[None]:
        """Hold the exclusive lock that guards the read-modify-write of ``index.json``."""
        with flock(self.root, fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the shared lock of a writer, which keeps ``gc`` from running meanwhile."""
        with flock(self.root / "blobs", fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def gc_lock(self) -> Iterator[None]:
        """Hold the exclusive lock of ``gc``: no writer is between its first blob and its index update."""
        with flock(self.root / "blobs", fcntl.LOCK_EX):
            yield

    def temp_files(self) -> list[Path]:
        """Return pyoci temporary files left in the layout root, sorted."""
        return sorted(p for p in self.root.glob(TEMP_PREFIX + "*"))


@contextlib.contextmanager
def open_blob_file(path: Path, descriptor: Descriptor, name: str) -> Iterator[VerifyingReader]:
    """Yield a :class:`VerifyingReader` over the blob file ``path`` of ``descriptor`` (a layout's or a static tree's).

    Args:
        path: the file; a symbolic link is followed, but the file must be a regular one.
        descriptor: what the bytes must match.
        name: how a "missing" message names the blob's store, e.g. ``"DIR: blob"``.

    Raises:
        BlobNotFoundError: the file is absent (or a dangling link): ``NAME DIGEST is missing``.
        LayoutError: it is not a readable regular file (a directory, a FIFO, a link loop).
        DigestMismatchError: (from ``read``) the bytes differ from the descriptor.
    """
    try:
        f = open_regular(path)
    except (FileNotFoundError, NotADirectoryError):
        raise BlobNotFoundError(f"{name} {descriptor.digest} is missing") from None
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with f:
        yield VerifyingReader(f, descriptor.digest, descriptor.size, str(path))


def _tag_listing(entries: Sequence[Descriptor]) -> str:
    tags = sorted({d.ref_name for d in entries if d.ref_name is not None})
    return ", ".join(tags) if tags else "none"


@contextlib.contextmanager
def writing(root: Path | str) -> Iterator[ImageLayout]:
    """Open or create the layout at ``root`` for a writer, holding the writer lock.

    If the body raises and this call created the directory (or a parent of it), everything it
    created is removed again, so a failed run leaves nothing behind (unless another process has
    started writing into the new layout meanwhile).

    Raises:
        LayoutError: as :meth:`ImageLayout.create`.
    """
    path = Path(root).absolute()
    top = path
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    created = top if not top.exists() else None
    try:
        layout = ImageLayout.create(path)
        with layout.writer_lock():
            yield layout
    except BaseException:
        if created is not None and _unused(path):
            shutil.rmtree(created, ignore_errors=True)
        raise


def _unused(path: Path) -> bool:
    """True when the layout at ``path`` holds no image and no other process's temporary file."""
    try:
        layout = ImageLayout(path)
        mine = f"{TEMP_PREFIX}{os.getpid()}-"
        others = [p for p in layout.temp_files() if not p.name.startswith(mine)]
        return not others and not layout.read_index().manifests
    except (OSError, LayoutError):
        return True
