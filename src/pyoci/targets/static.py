"""A static registry: the file tree a plain web host (nginx, S3, Garage) serves as a read-only registry.

A pull (distribution-spec ``spec.md`` "Pulling manifests", "Pulling blobs", "Content discovery")
only needs GET and HEAD on fixed URLs, so files can answer them::

    ROOT/v2/index.html                        {}: the /v2/ answer (S3 website hosting's index document)
    ROOT/v2/_catalog                          {"repositories": [...]}
    ROOT/v2/REPO/tags/list                    {"name": REPO, "tags": [...]}
    ROOT/v2/REPO/manifests/TAG.KIND           the tag's manifest or index, its exact bytes
    ROOT/v2/REPO/manifests/sha256:HEX.KIND    every manifest and index by digest (children included)
    ROOT/v2/REPO/blobs/sha256:HEX             configs and layers
    ROOT/.pyoci/nginx.conf                    fixed nginx directives: root + the locations (:func:`nginx_config`)
    ROOT/.pyoci/nginx-locations.conf          the same without ``root``, for a server that sets its own

``KIND`` names the document's media type (:data:`MANIFEST_KINDS`: ``oci-index``, ``oci-manifest``,
``docker-list``, ``docker-manifest``), so a host derives the ``Content-Type`` of a manifest URL from
the file it finds, and ``Docker-Content-Digest`` from a by-digest URL: the host's configuration
never depends on what the tree holds, and every export is served at once, with no reload. Trees
written by earlier pyoci versions stored ``manifests/REF`` with no kind; they are read as they are
and upgraded by the next writer or ``gc`` (:meth:`StaticTree.upgrade`).

Writing order (children before parents, so a reader at any moment sees a tag's old image or its
complete new one): blobs, manifests by digest, indexes by digest, the tag file, then ``tags/list``
and ``_catalog`` (:meth:`StaticTree.finish`). Every file is written to a temporary name
(``.pyoci-tmp-<pid>-...``) and renamed; blobs already present are never rewritten, and a blob another
repository of the tree holds is hard-linked (the tree's "mount"). A tag that changes kind (a single
image becoming an index) gets its new file before its old one is removed; the host's lookup order
(:data:`KIND_ORDER`) serves exactly one of them at any moment.

Concurrency between processes, with ``flock`` on the tree's own directories (no lock files), always
taken in this order:

* ``ROOT/.pyoci``: every writer (an export) and every sync holds it shared for its whole run; ``gc``
  holds it exclusively, so it never removes what a running export is adding or a sync is uploading;
* ``ROOT/v2``: held exclusively around each tag write and each rewrite of the listings, so two
  exports never lose each other's tag (each rewrites the listings from the files, under the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyoci import mediatype
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import BlobNotFoundError, FormatError, LayoutError, RegistryError
from pyoci.fsutil import TEMP_PREFIX, atomic_file, flock, fsync_dir, read_regular, temp_name, write_atomic
from pyoci.jsonio import MAX_DOCUMENT_SIZE, dump_json
from pyoci.layout.store import open_blob_file
from pyoci.manifest import document_media_type
from pyoci.progress import Progress
from pyoci.reference import check_registry_tag
from pyoci.streams import VerifyingReader
from pyoci.targets import BlobSource

CONFIG_DIR = ".pyoci"
NGINX_CONF = "nginx.conf"
NGINX_LOCATIONS = "nginx-locations.conf"
LEGACY_FILES = ("s3-content-types.tsv", "s3-upload.sh")
"""Files of ``.pyoci`` that earlier versions wrote per export; they named the old layout: removed by an upgrade."""
RESERVED_COMPONENTS = frozenset({"manifests", "blobs", "tags"})
"""Repository path components a tree cannot hold (they would collide with a repository's own folders)."""

MANIFEST_KINDS = {
    mediatype.IMAGE_INDEX: "oci-index",
    mediatype.DOCKER_MANIFEST_LIST: "docker-list",
    mediatype.IMAGE_MANIFEST: "oci-manifest",
    mediatype.DOCKER_MANIFEST: "docker-manifest",
}
"""Media type -> the KIND suffix of a manifest file (the nginx ``types`` table maps it back)."""
KIND_ORDER = tuple(MANIFEST_KINDS.values())
"""The order a host looks up ``REF.KIND`` in (indexes first); a file without a kind (legacy) comes last."""
KIND_TYPES = {kind: media_type for media_type, kind in MANIFEST_KINDS.items()}
_READ_SIZE = 1 << 20


@dataclass(frozen=True)
class ManifestFile:
    """One manifest file of a repository.

    Attributes:
        repository: the repository path.
        reference: the tag or the digest text (``sha256:HEX``) it is served under.
        media_type: the media type its file name gives (a legacy file: the document's own).
        path: the file.
        legacy: True for a file of the earlier layout (``manifests/REF``, no kind).
    """

    repository: str
    reference: str
    media_type: str
    path: Path
    legacy: bool = False

    @property
    def is_tag(self) -> bool:
        """True for a tag (a digest reference holds a colon, a tag never does)."""
        return ":" not in self.reference

    @property
    def key(self) -> str:
        """The URL path it answers, relative to the tree root: ``v2/REPO/manifests/REF``."""
        return f"v2/{self.repository}/manifests/{self.reference}"


def manifest_file_name(reference: str, media_type: str, where: str) -> str:
    """``REF.KIND`` for a manifest of ``media_type``.

    Raises:
        RegistryError: a media type a static tree cannot serve (not an image manifest or index).
    """
    kind = MANIFEST_KINDS.get(media_type)
    if kind is None:
        raise RegistryError(f"{where}: a static tree serves image manifests and indexes, not {media_type!r}")
    return f"{reference}.{kind}"


class StaticRepository:
    """One repository of a static tree, read: its manifest files and blobs (a :class:`~pyoci.targets.BlobSource`).

    Args:
        tree: the tree.
        repository: the repository path, e.g. ``team/app``.
    """

    def __init__(self, tree: StaticTree, repository: str) -> None:
        self.tree = tree
        self.repository = repository
        self.directory = tree.v2 / repository
        self.manifests_dir = self.directory / "manifests"
        self.blobs_dir = self.directory / "blobs"

    @property
    def name(self) -> str:
        """``static:ROOT:REPO``."""
        return f"static:{self.tree.root}:{self.repository}"

    @property
    def verified(self) -> bool:
        """False: the files' contents are checked as they are read."""
        return False

    def scan(self) -> tuple[dict[str, ManifestFile], list[ManifestFile]]:
        """Every manifest file: ``({reference: the file a host serves}, [files shadowed by it])``.

        A reference with several files (a crash between a tag's new kind and the removal of its old
        one) is served from the first in :data:`KIND_ORDER`, a legacy file last. Temporary files and
        names that are neither a tag nor a digest are not listed.

        Raises:
            FormatError: a legacy file (no kind) that is not a JSON manifest.
        """
        found: dict[str, list[tuple[int, ManifestFile]]] = {}
        try:
            names = sorted(os.listdir(self.manifests_dir))
        except (FileNotFoundError, NotADirectoryError):
            return {}, []
        for name in names:
            path = self.manifests_dir / name
            if name.startswith(TEMP_PREFIX) or not path.is_file():
                continue
            reference, dot, kind = name.rpartition(".")
            if dot and kind in KIND_TYPES:
                entry = (KIND_ORDER.index(kind), ManifestFile(self.repository, reference, KIND_TYPES[kind], path))
            else:
                reference = name
                media_type = document_media_type(read_small(path), str(path))
                entry = (len(KIND_ORDER), ManifestFile(self.repository, reference, media_type, path, legacy=True))
            if _valid_reference(reference):
                found.setdefault(reference, []).append(entry)
        served: dict[str, ManifestFile] = {}
        shadowed: list[ManifestFile] = []
        for reference, entries in found.items():
            entries.sort(key=lambda e: e[0])
            served[reference] = entries[0][1]
            shadowed.extend(file for _, file in entries[1:])
        return served, shadowed

    def manifests(self) -> dict[str, ManifestFile]:
        """``{reference: file}`` of every tag and digest a host serves (see :meth:`scan`)."""
        return self.scan()[0]

    def tags(self) -> dict[str, ManifestFile]:
        """``{tag: file}``, sorted by tag."""
        return {ref: file for ref, file in sorted(self.manifests().items()) if file.is_tag}

    def manifest_file(self, reference: str) -> ManifestFile | None:
        """The file a host serves for ``reference`` (a tag or digest text), or None."""
        for kind in KIND_ORDER:
            path = self.manifests_dir / f"{reference}.{kind}"
            if path.is_file():
                return ManifestFile(self.repository, reference, KIND_TYPES[kind], path)
        legacy = self.manifests_dir / reference
        if _valid_reference(reference) and legacy.is_file():
            media_type = document_media_type(read_small(legacy), str(legacy))
            return ManifestFile(self.repository, reference, media_type, legacy, True)
        return None

    def resolve(self, tag: str) -> Descriptor:
        """The descriptor of what ``tag`` serves: its media type, and the digest and size of its bytes.

        Raises:
            BlobNotFoundError: no such tag.
        """
        file = self.manifest_file(tag)
        if file is None:
            raise BlobNotFoundError(f"{self.name}: no tag {tag!r}")
        raw = read_small(file.path)
        return Descriptor(file.media_type, Digest.of_bytes(raw), len(raw))

    def blob_file(self, digest: Digest) -> Path:
        """``blobs/DIGEST`` of this repository (it may be absent)."""
        return self.blobs_dir / str(digest)

    def _path(self, descriptor: Descriptor) -> Path:
        if descriptor.media_type in mediatype.MANIFEST_TYPES | mediatype.INDEX_TYPES:
            file = self.manifest_file(str(descriptor.digest))
            if file is None:
                raise BlobNotFoundError(f"{self.name}: manifest {descriptor.digest} is missing")
            return file.path
        return self.blob_file(descriptor.digest)

    def read_document(self, descriptor: Descriptor) -> bytes:
        """A manifest or index (from ``manifests/``) or a config (from ``blobs/``), verified.

        Raises:
            BlobNotFoundError: the file is absent.
            DigestMismatchError: its bytes differ from ``descriptor``.
            LayoutError: ``descriptor`` is larger than :data:`~pyoci.jsonio.MAX_DOCUMENT_SIZE`.
        """
        if descriptor.size > MAX_DOCUMENT_SIZE:
            raise LayoutError(f"{self.name}: {descriptor.digest}: {descriptor.size} bytes is too large")
        with self._open(self._path(descriptor), descriptor) as reader:
            return reader.read_all()

    def open_blob(self, descriptor: Descriptor) -> contextlib.AbstractContextManager[VerifyingReader]:
        """A reader over ``blobs/DIGEST`` (a manifest's media type: its file) checking digest and size at the end.

        Raises:
            BlobNotFoundError: the file is absent (on open); DigestMismatchError (from ``read``).
        """
        return self._open(self._path(descriptor), descriptor)

    def _open(self, path: Path, descriptor: Descriptor) -> contextlib.AbstractContextManager[VerifyingReader]:
        return open_blob_file(path, descriptor, f"{self.name}:")

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when ``blobs/DIGEST`` exists (its content is not checked)."""
        return self.blob_file(descriptor.digest).is_file()

    def blob_path(self, descriptor: Descriptor) -> Path | None:
        """The blob's file, when present."""
        path = self.blob_file(descriptor.digest)
        return path if path.is_file() else None

    def blobs(self) -> list[Path]:
        """Every blob file of the repository (names that are digests), sorted."""
        try:
            names = sorted(os.listdir(self.blobs_dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for name in names:
            try:
                Digest.parse(name)
            except FormatError:
                continue
            out.append(self.blobs_dir / name)
        return out


class StaticTree:
    """A static registry tree (see the module docstring).

    Args:
        root: the tree's directory. Nothing is created until :meth:`create`.

    Writers open it with :func:`tree_writer`, take a :meth:`target` per repository, then call
    :meth:`finish`; readers use :meth:`repositories` and :meth:`repository`.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.v2 = self.root / "v2"
        self.config = self.root / CONFIG_DIR
        self._holders: dict[str, Path] | None = None
        self._holders_lock = threading.Lock()

    def create(self) -> None:
        """Create ``v2/`` and ``.pyoci/`` when absent.

        Raises:
            RegistryError: they cannot be created.
        """
        try:
            self.v2.mkdir(parents=True, exist_ok=True)
            self.config.mkdir(exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"{self.root}: cannot create the static tree: {exc.strerror}") from exc

    def check_exists(self) -> None:
        """Raise LayoutError unless ``ROOT/v2`` is a directory (a tree pyoci wrote)."""
        if not self.v2.is_dir():
            raise LayoutError(f"{self.root}: not a static registry tree (no v2/ directory)")

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the shared lock of an export or a sync (``gc`` waits for it); ``ROOT`` must exist."""
        self.config.mkdir(exist_ok=True)
        with flock(self.config, fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def reader_lock(self) -> Iterator[None]:
        """Hold the shared lock while the tree is read (``gc`` waits); no lock on a tree without ``.pyoci``."""
        if not self.config.is_dir():
            yield
            return
        with flock(self.config, fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def gc_lock(self) -> Iterator[None]:
        """Hold the exclusive lock of ``gc``: no export or sync runs meanwhile."""
        self.config.mkdir(exist_ok=True)
        with flock(self.config, fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def listing_lock(self) -> Iterator[None]:
        """Hold the exclusive lock around a tag write or a rewrite of the listings."""
        with flock(self.v2, fcntl.LOCK_EX):
            yield

    def target(self, repository: str) -> StaticTarget:
        """The target (push, copy, merge, build) for ``repository``.

        Raises:
            RegistryError: a repository path with a component the tree's own folders use.
        """
        reserved = RESERVED_COMPONENTS.intersection(repository.split("/"))
        if reserved:
            raise RegistryError(
                f"static:{self.root}:{repository}: a static tree cannot hold a repository path "
                f"with a component named {sorted(reserved)[0]!r}"
            )
        return StaticTarget(self, repository)

    def repository(self, repository: str) -> StaticRepository:
        """The repository ``repository`` of the tree, for reading."""
        return StaticRepository(self, repository)

    def repositories(self) -> list[str]:
        """The repositories of the tree (directories holding a ``manifests`` folder), sorted."""
        found = []
        for directory, dirs, _ in os.walk(self.v2):
            if "manifests" in dirs:
                found.append(Path(directory).relative_to(self.v2).as_posix())
            dirs[:] = sorted(d for d in dirs if d not in RESERVED_COMPONENTS and not d.startswith(TEMP_PREFIX))
        return sorted(r for r in found if r != ".")

    def temp_files(self) -> list[Path]:
        """Every pyoci temporary file or directory in the tree (not looked into), sorted."""
        found = []
        for base in (self.v2, self.config):
            for directory, dirs, files in os.walk(base):
                for name in [*dirs, *files]:
                    if name.startswith(TEMP_PREFIX):
                        found.append(Path(directory) / name)
                dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]
        return sorted(found)

    def holder(self, digest: Digest) -> Path | None:
        """A repository directory of the tree that already holds the blob ``digest``, or None.

        The tree is listed once per :class:`StaticTree`; blobs written since are recorded by :meth:`record`.
        """
        with self._holders_lock:  # blobs are written by parallel threads: list the tree once, whole
            if self._holders is None:
                holders: dict[str, Path] = {}
                for repo in self.repositories():
                    for blob in self.repository(repo).blobs():
                        holders.setdefault(blob.name, blob.parent.parent)
                self._holders = holders
            return self._holders.get(str(digest))

    def record(self, digest: Digest, repository: Path) -> None:
        """Note that ``repository`` now holds the blob ``digest``."""
        with self._holders_lock:
            if self._holders is not None:
                self._holders.setdefault(str(digest), repository)

    def upgrade(self) -> int:
        """Give every legacy manifest file (``manifests/REF``) its kind; returns how many were upgraded.

        Each file served is written as ``REF.KIND`` (atomically) before the legacy name is removed;
        a legacy file shadowed by a newer one is removed. The per-export S3 files of the earlier
        layout go too. Call with the listing lock held (writers) or the gc lock.

        Raises:
            FormatError: a legacy file that is not a JSON manifest.
            RegistryError: a file cannot be written.
        """
        count = 0
        for repo in self.repositories():
            served, shadowed = self.repository(repo).scan()
            legacy = [f for f in served.values() if f.legacy]
            for file in legacy:
                name = manifest_file_name(file.reference, file.media_type, str(file.path))
                self.write_file(file.path.parent / name, read_small(file.path))
            for file in [*legacy, *(f for f in shadowed if f.legacy)]:
                file.path.unlink(missing_ok=True)
                count += 1
            if count:
                fsync_dir(self.v2 / repo / "manifests")
        for name in LEGACY_FILES:
            (self.config / name).unlink(missing_ok=True)
        return count

    def finish(self) -> None:
        """Rewrite ``/v2/``, every ``tags/list``, ``_catalog`` and the nginx files from the tree, under the lock.

        The nginx files depend only on where the tree is: they change when the tree moves (or
        pyoci's layout changes), never because of what an export added.
        """
        with self.listing_lock():
            self.write_listings()
            self.write_file(self.config / NGINX_CONF, nginx_config(self.root).encode())
            self.write_file(self.config / NGINX_LOCATIONS, nginx_locations().encode())

    def write_listings(self, tags: dict[str, list[str]] | None = None) -> None:
        """Write ``v2/index.html``, each repository's ``tags/list``, then ``_catalog``.

        Args:
            tags: ``{repository: tags}`` to write; by default every repository and tag of the tree.
        """
        if tags is None:
            tags = {repo: list(self.repository(repo).tags()) for repo in self.repositories()}
        self.write_file(self.v2 / "index.html", b"{}")
        for repo, names in tags.items():
            (self.v2 / repo / "tags").mkdir(parents=True, exist_ok=True)
            self.write_file(self.v2 / repo / "tags" / "list", dump_json({"name": repo, "tags": sorted(names)}))
        self.write_file(self.v2 / "_catalog", dump_json({"repositories": sorted(tags)}))

    def write_file(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically unless it already holds exactly those bytes.

        Raises:
            RegistryError: the file cannot be written.
        """
        try:
            if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
                return
            write_atomic(path, data)
        except OSError as exc:
            raise RegistryError(f"{path}: cannot write: {exc.strerror}") from exc


@contextlib.contextmanager
def tree_writer(root: Path | str) -> Iterator[StaticTree]:
    """Open (creating) the tree at ``root`` for an export: the writer lock held, a legacy tree upgraded.

    The caller writes through :meth:`StaticTree.target` and calls :meth:`StaticTree.finish` on
    success, before the block ends.

    Raises:
        RegistryError: the tree cannot be created or upgraded.
    """
    tree = StaticTree(root)
    if "$" in str(tree.root):
        raise RegistryError(f"{tree.root}: nginx cannot name a directory whose path holds '$'; use another directory")
    tree.create()
    with tree.writer_lock():
        with tree.listing_lock():
            try:
                tree.upgrade()
            except FormatError as exc:
                raise RegistryError(f"{exc}; the tree cannot be upgraded") from exc
        yield tree


class StaticTarget:
    """One repository of a :class:`StaticTree`, as a push Target and Mount."""

    def __init__(self, tree: StaticTree, repository: str) -> None:
        self.tree = tree
        self.repository = repository
        self.reader = tree.repository(repository)
        self.directory = self.reader.directory

    @property
    def name(self) -> str:
        """``static:ROOT:REPO``."""
        return self.reader.name

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the blob file exists with the descriptor's size (blobs are never rewritten)."""
        path = self.reader.blob_file(descriptor.digest)
        return path.is_file() and path.stat().st_size == descriptor.size

    def put_blob(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        """Hard-link the blob from another repository of the tree, or copy it (verified), fsync and rename.

        Raises:
            DigestMismatchError: the bytes do not match ``descriptor``.
            RegistryError: the file cannot be written.
        """
        holder = self.tree.holder(descriptor.digest)
        if holder not in (None, self.directory) and self.mount_blob(
            descriptor, holder.relative_to(self.tree.v2).as_posix()
        ):
            return
        path = self.reader.blob_file(descriptor.digest)
        progress.start(str(descriptor.digest)[7:19], descriptor.size)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # the source's reader checks digest and size at the end of the stream (DigestMismatchError)
            with source.open_blob(descriptor) as reader, atomic_file(path) as out:
                while data := reader.read(_READ_SIZE):
                    out.write(data)
                    progress.advance(len(data))
            fsync_dir(path.parent)
        except OSError as exc:
            raise RegistryError(f"{path}: cannot write: {exc.strerror}") from exc
        finally:
            progress.finish()
        self.tree.record(descriptor.digest, self.directory)

    def mount_blob(self, descriptor: Descriptor, from_repository: str) -> bool:
        """Hard-link the blob from another repository of the tree; False when it has none or linking fails."""
        source = self.tree.repository(from_repository).blob_file(descriptor.digest)
        if not source.is_file() or source.stat().st_size != descriptor.size:
            return False
        path = self.reader.blob_file(descriptor.digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(path.parent)
        try:
            os.link(source, tmp)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        # rename(2) is a no-op when both names are links to one file: a concurrent export linked it first
        tmp.unlink(missing_ok=True)
        self.tree.record(descriptor.digest, self.directory)
        return True

    def has_manifest(self, descriptor: Descriptor, tag: str | None = None) -> bool:
        """True when ``DIGEST.KIND`` exists; with ``tag``, also ``TAG.KIND`` served with those bytes and that kind.

        A legacy file (no kind) does not count: writing it again gives it its kind.
        """
        by_digest = self.reader.manifest_file(str(descriptor.digest))
        if by_digest is None or by_digest.legacy or by_digest.media_type != descriptor.media_type:
            return False
        if tag is None:
            return True
        file = self.reader.manifest_file(tag)
        if file is None or file.legacy or file.media_type != descriptor.media_type:
            return False
        try:
            return Digest.of_bytes(read_small(file.path), descriptor.digest.algorithm) == descriptor.digest
        except (OSError, FormatError):
            return False

    def put_manifest(self, descriptor: Descriptor, raw: bytes, tag: str | None) -> None:
        """Write ``DIGEST.KIND``, then (with ``tag``) ``TAG.KIND`` and remove the tag's files of other kinds.

        The tag is written under the listing lock, so two exports of one tag leave exactly one file.

        Raises:
            RegistryError: a media type the tree cannot serve, or a file that cannot be written.
        """
        manifests = self.reader.manifests_dir
        try:
            manifests.mkdir(parents=True, exist_ok=True)
            self.reader.blobs_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"{manifests}: cannot write: {exc.strerror}") from exc
        by_digest = manifests / manifest_file_name(str(descriptor.digest), descriptor.media_type, self.name)
        if not by_digest.is_file():
            self.tree.write_file(by_digest, raw)
        if tag is not None:
            name = manifest_file_name(tag, descriptor.media_type, self.name)
            with self.tree.listing_lock():
                self.tree.write_file(manifests / name, raw)
                for other in [*(f"{tag}.{kind}" for kind in KIND_ORDER), tag]:
                    if other != name:
                        (manifests / other).unlink(missing_ok=True)
        fsync_dir(manifests)


_HEADER = "add_header Docker-Distribution-API-Version registry/2.0 always;"
_REPO = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_DIGEST = r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_IMMUTABLE = 'add_header Cache-Control "public, max-age=31536000, immutable";'
_MUTABLE = "etag off; if_modified_since off; add_header Cache-Control no-cache;"


def nginx_locations() -> str:
    """Server-level nginx directives that serve a tree as a read-only registry, whatever it holds.

    The text is fixed: answers derive from the files. A manifest URL (distribution-spec ``spec.md``
    "Pulling manifests") is looked up as ``REF.KIND`` in :data:`KIND_ORDER` (``try_files``) and
    answered with the ``Content-Type`` its KIND maps to (a ``types`` table); a by-digest URL
    also gets ``Docker-Content-Digest`` from the URL, as blobs do (a tag's digest cannot be known
    from the URL: clients hash what they receive). Tags and listings are sent with
    ``Cache-Control: no-cache`` and no validators (they change in place); digests are immutable.
    Only GET and HEAD are answered; everything else is 403, anything outside the API 404.
    Relative to the server's ``root`` (see :func:`nginx_config`).
    """
    types = " ".join(f"{media_type} {kind};" for media_type, kind in MANIFEST_KINDS.items())

    def lookup(variable: str) -> str:
        files = " ".join(f"/v2/$pyoci_repo/manifests/${variable}.{kind}" for kind in KIND_ORDER)
        return f"try_files {files} =404;"

    get = "limit_except GET { deny all; }"
    lines = [
        "# Generated by pyoci for a static registry tree. Fixed: every answer derives from the files,",
        "# so exports never need a change of this file or a reload of nginx.",
        "location / { return 404; }",
        f"location = /v2/ {{ types {{ }} default_type application/json; {_HEADER} return 200 '{{}}'; }}",
        f"location = /v2/_catalog {{ {get} types {{ }} default_type application/json; {_MUTABLE} {_HEADER} }}",
        f'location ~ "^/v2/(?:{_REPO})/tags/list$" {{ {get} types {{ }} default_type application/json; '
        f"{_MUTABLE} {_HEADER} }}",
        f'location ~ "^/v2/(?:{_REPO})/blobs/(?<pyoci_digest>{_DIGEST})$" {{ {get} types {{ }} '
        f"default_type application/octet-stream; add_header Docker-Content-Digest $pyoci_digest; {_IMMUTABLE} "
        f"{_HEADER} }}",
        f'location ~ "^/v2/(?<pyoci_repo>{_REPO})/manifests/(?<pyoci_digest>{_DIGEST})$" {{ {get} '
        f"types {{ {types} }} default_type application/octet-stream; "
        f"add_header Docker-Content-Digest $pyoci_digest; {_IMMUTABLE} {_HEADER} {lookup('pyoci_digest')} }}",
        f'location ~ "^/v2/(?<pyoci_repo>{_REPO})/manifests/(?<pyoci_tag>{_TAG})$" {{ {get} '
        f"types {{ {types} }} default_type application/octet-stream; {_MUTABLE} {_HEADER} {lookup('pyoci_tag')} }}",
    ]
    return "\n".join(lines) + "\n"


def nginx_config(root: Path) -> str:
    """``root "ROOT";`` and :func:`nginx_locations`: ``server { listen 8080; include ROOT/.pyoci/nginx.conf; }``.

    It names only the tree's directory, so it changes only when the tree moves.
    """
    quoted = '"' + str(root).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"root {quoted};\n" + nginx_locations()


def _valid_reference(reference: str) -> bool:
    """True for a registry tag or a digest (the names a host serves; nginx matches the same grammar)."""
    try:
        if ":" in reference:
            Digest.parse(reference)
        else:
            check_registry_tag(reference, reference)
    except FormatError:
        return False
    return True


def read_small(path: Path) -> bytes:
    """Read a manifest or listing file of at most :data:`~pyoci.jsonio.MAX_DOCUMENT_SIZE` bytes.

    Raises:
        OSError: it cannot be opened or is not a regular file (see :func:`~pyoci.fsutil.open_regular`).
        FormatError: the file is larger.
    """
    return read_regular(path, MAX_DOCUMENT_SIZE)
