"""One streaming pass over a docker-archive: every layer is hashed and compressed as it goes past.

``manifest.json`` may come first or last (``docker save`` and Nix put it last), so each member that
may be a layer is staged through the layer pipeline into a temporary blob the moment it streams
past, and matched to the manifest at the end; members nothing references are discarded.

Shapes read (Docker's ``image/spec/v1.2`` save format and what other tools write):

* legacy ``docker save``: ``<id>/layer.tar``, ``<id>/json``, ``VERSION``, ``repositories``, with
  duplicate layers as tar symlinks or hard links, possibly before their target;
* skopeo/podman: ``<digest>.tar`` layers, ``<digest>.json`` config;
* Docker 25+: an OCI layout beside ``manifest.json`` (``manifest.json`` and the config are the truth);
* containerd-store archives whose layer blobs are gzip or zstd compressed;
* member names with a ``./`` prefix; PAX and GNU headers, long names, base-256 sizes (:mod:`pyoci.tarstream`).

Everything kept in memory (JSON documents and small members, names, link targets, directories, the
bookkeeping of each staged layer) is charged to one budget of :data:`MEMORY_BUDGET` bytes per archive;
a JSON document may have :data:`DOCUMENT_LIMIT` bytes and about :data:`MAX_JSON_VALUES` values, so that
parsing it stays small too. Past a bound the scan stops with an :class:`~pyoci.errors.ArchiveError`
("too large"); :mod:`pyoci.tarstream` bounds the member count ("too many members").
"""

from __future__ import annotations

import contextlib
import io
import posixpath
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pyoci import compression
from pyoci.errors import ArchiveError, FormatError
from pyoci.jsonio import load_json, value_bound
from pyoci.mediatype import LayerOptions
from pyoci.progress import NoProgress, Progress
from pyoci.streams import BlobSink, PrefixedReader, Readable, read_exactly_head
from pyoci.tarstream import BLOCK, DIRECTORY, TarMember, TarReader
from pyoci.transcode import LayerResult, feed_layer

MANIFEST_FILE = "manifest.json"
IN_FLIGHT = 2
"""Layers whose codec may still be finishing while the next layer streams in."""
BACKGROUND_WRITE_MIN = 8 << 20
"""Layers above this many bytes are hashed and written on a thread of their own."""
SMALL_MEMBER = 4096
"""Members up to this many bytes are kept in memory and staged only if referenced."""
DOCUMENT_LIMIT = 4 << 20
"""Largest member kept in memory as a JSON document (``manifest.json``, a config), in bytes."""
MAX_JSON_VALUES = 1 << 18
"""JSON values and keys a document may hold (counted from its ``[{,:`` bytes, an upper bound): parsed,
each costs up to about 80 bytes, so a document costs at most about 20 MiB of objects."""
MEMORY_BUDGET = 32 << 20
"""Bytes one archive may keep in memory: kept members' data and names, link targets, directory names,
plus :data:`_ENTRY_COST` per kept entry and :data:`_STAGED_COST` per staged layer."""

TRAILER_LIMIT = 1 << 20
"""Bytes that may follow the tar end-of-archive marker (record padding; any blocking factor up to 2048)."""

_SNIFF = 512
_MAX_LINKS = 40
_ENTRY_COST = 256
"""Bookkeeping of one member kept in memory (dictionary slot, string and bytes headers), in bytes."""
_STAGED_COST = 4096
"""Bookkeeping of one staged layer (its sink, future and result; measured at about 3.6 KiB), in bytes."""

S = TypeVar("S", bound=BlobSink)
SinkFactory = Callable[[int], S]
"""Makes the sink for one layer, given its stored size in bytes (a layout's blob writer, or a hash only)."""


@dataclass(frozen=True)
class ArchiveImage:
    """One entry of ``manifest.json``.

    Attributes:
        position: the entry's index (what ``docker-archive:PATH:@N`` selects).
        config: the archive path of the config member.
        layers: archive paths of the layer members, base layer first.
        repo_tags: the ``RepoTags`` (possibly empty).
    """

    position: int
    config: str
    layers: tuple[str, ...]
    repo_tags: tuple[str, ...]

    def label(self) -> str:
        """``@N`` followed by the tags, for listings in messages."""
        tags = ", ".join(self.repo_tags) if self.repo_tags else "untagged"
        return f"@{self.position} ({tags})"


@dataclass
class StagedLayer(Generic[S]):
    """A layer streamed into its sink (for a layout: a temporary blob, not yet in the layout).

    Attributes:
        writer: the sink (a layout's blob writer: commit it to add the blob to the layout).
        completion: finishes while the next layers stream in; gives the diff_id and media type.
        size: the member's size in the archive, in bytes.
    """

    writer: S
    completion: Future[LayerResult]
    size: int

    @property
    def result(self) -> LayerResult:
        """The layer's diff_id and media type (waits for the codec to finish).

        Raises:
            LayoutError: the blob could not be written.
        """
        return self.completion.result()


def normalize_member(name: str, where: str) -> str:
    """Return an archive member path without ``./``, duplicate or trailing slashes.

    Raises:
        ArchiveError: the path climbs out of the archive with ``..``.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ArchiveError(f"{where}: member {name!r} escapes the archive")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


@dataclass
class ScannedArchive(Generic[S]):
    """The result of one pass: small documents in memory, staged layers, and links.

    Attributes:
        name: the archive's display name (a path, or ``stdin``).
        documents: member path -> bytes, for members kept in memory (JSON and tiny files).
        staged: member path -> staged layer, for members streamed through the pipeline.
        new_sink: makes each layer's sink.
        options: layer output options.
        links: member path -> target member path (symlinks resolved against their directory).
        directories: member paths of directories (for messages).
        labels: progress labels of layer members (``layer 2/3``), once ``manifest.json`` has been read.
        kept: bytes charged to :data:`MEMORY_BUDGET` so far.
    """

    name: str
    new_sink: SinkFactory[S]
    options: LayerOptions
    documents: dict[str, bytes] = field(default_factory=dict)
    staged: dict[str, StagedLayer[S]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)
    completions: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="pyoci-layer")
    )
    in_flight: deque[Future[LayerResult]] = field(default_factory=deque)
    labels: dict[str, str] | None = None
    kept: int = 0

    def charge(self, cost: int) -> None:
        """Count ``cost`` more bytes kept in memory (negative: released).

        Raises:
            ArchiveError: the total passes :data:`MEMORY_BUDGET`.
        """
        self.kept += cost
        if self.kept > MEMORY_BUDGET:
            raise ArchiveError(
                f"{self.name}: too large: its members need more than {MEMORY_BUDGET >> 20} MiB of memory"
                " (JSON documents, small members, names, links, layer entries)"
            )

    def forget(self, member: str) -> None:
        """Drop what is kept of ``member`` (a later member of the same name replaces it, as tar extraction does)."""
        previous = self.staged.pop(member, None)
        if previous is not None:
            with contextlib.suppress(Exception):
                previous.completion.result()
            previous.writer.abort()
            self.charge(-_STAGED_COST - len(member))
        data = self.documents.pop(member, None)
        if data is not None:
            self.charge(-_ENTRY_COST - len(member) - len(data))
        target = self.links.pop(member, None)
        if target is not None:
            self.charge(-_ENTRY_COST - len(member) - len(target))

    def resolve(self, path: str) -> str:
        """Follow links from ``path`` to a regular member.

        Raises:
            ArchiveError: the member is absent, a link dangles, loops, or escapes the archive.
        """
        current = normalize_member(path, self.name)
        for _ in range(_MAX_LINKS):
            if current in self.documents or current in self.staged:
                return current
            target = self.links.get(current)
            if target is None and current in self.directories:
                raise ArchiveError(f"{self.name}: member {path!r} is a directory, not a file")
            if target is None:
                if current == normalize_member(path, self.name):
                    raise ArchiveError(f"{self.name}: member {path!r} is missing from the archive")
                raise ArchiveError(f"{self.name}: link {path!r} points to missing member {current!r}")
            current = target
        raise ArchiveError(f"{self.name}: link {path!r} loops")

    def document(self, path: str) -> bytes:
        """Return the bytes of a small member (a config or ``manifest.json``).

        Raises:
            ArchiveError: the member is absent, not JSON, or too large: over :data:`DOCUMENT_LIMIT`
                bytes or :data:`MAX_JSON_VALUES` values.
        """
        member = self.resolve(path)
        data = self.documents.get(member)
        if data is None:
            size = self.staged[member].size
            if size > DOCUMENT_LIMIT:
                raise ArchiveError(
                    f"{self.name}: member {path!r}: too large: {size} bytes, a JSON document may have {DOCUMENT_LIMIT}"
                )
            raise ArchiveError(f"{self.name}: member {path!r} is not a JSON document")
        values = value_bound(data)
        if values > MAX_JSON_VALUES:
            raise ArchiveError(
                f"{self.name}: member {path!r}: too large: up to {values} JSON values, a document may have"
                f" {MAX_JSON_VALUES}"
            )
        return data

    def layer(self, path: str, progress: Progress | None = None) -> StagedLayer[S]:
        """Return the staged layer of ``path``, staging a small in-memory member now.

        Raises:
            ArchiveError: as :meth:`resolve`, or the layer data is corrupt.
        """
        member = self.resolve(path)
        staged = self.staged.get(member)
        if staged is None:
            data = self.documents[member]
            staged = _stage(io.BytesIO(data), len(data), member, self, progress)
            self.staged[member] = staged
        return staged

    def layer_label(self, member: str) -> str:
        """A progress label for a layer member: ``layer 2/3`` of its image when ``manifest.json`` came first.

        Docker and Nix write ``manifest.json`` last, so a label made while the archive streams may
        only name the member: ``layer`` and the first 12 characters of its file name.
        """
        if self.labels is None and MANIFEST_FILE in self.documents:
            self.labels = {}
            try:
                for image in self.images():
                    layers = [normalize_member(layer, self.name) for layer in image.layers]
                    for position, layer in enumerate(layers, 1):
                        self.labels.setdefault(layer, f"layer {position}/{len(layers)}")
            except ArchiveError:
                pass  # reported when the images are asked for; a label is no place for it
        known = self.labels.get(member) if self.labels is not None else None
        return known or f"layer {posixpath.basename(posixpath.dirname(member)) or member}"[:18]

    def images(self) -> list[ArchiveImage]:
        """Parse ``manifest.json``.

        Raises:
            ArchiveError: it is absent, not valid JSON, or not a list of ``{Config, Layers, RepoTags}``.
        """
        if all(MANIFEST_FILE not in kept for kept in (self.documents, self.links, self.staged)):
            raise ArchiveError(f"{self.name}: no {MANIFEST_FILE}: not a docker-archive")
        where = f"{self.name}: {MANIFEST_FILE}"
        try:
            entries = load_json(self.document(MANIFEST_FILE), where)
        except FormatError as exc:
            raise ArchiveError(str(exc)) from exc
        if not isinstance(entries, list) or not entries:
            raise ArchiveError(f"{where}: expected a non-empty list of images")
        return [_parse_entry(i, entry, where) for i, entry in enumerate(entries)]

    def discard(self) -> None:
        """Wait for every layer in flight, then abort every sink (a no-op for a blob committed to a layout)."""
        self.completions.shutdown(wait=True)
        for staged in self.staged.values():
            staged.writer.abort()  # a no-op for a committed blob


def _parse_entry(position: int, entry: Any, where: str) -> ArchiveImage:
    if not isinstance(entry, Mapping):
        raise ArchiveError(f"{where}: entry {position} is not an object")
    config, layers, tags = entry.get("Config"), entry.get("Layers") or [], entry.get("RepoTags") or []
    if not isinstance(config, str) or not config:
        raise ArchiveError(f"{where}: entry {position} has no 'Config' path")
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        raise ArchiveError(f"{where}: entry {position}: 'Layers' is not a list of paths")
    if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
        raise ArchiveError(f"{where}: entry {position}: 'RepoTags' is not a list of names")
    return ArchiveImage(position, config, tuple(layers), tuple(tags))


def _stage(
    source: Readable,
    size: int,
    member: str,
    archive: ScannedArchive[S],
    progress: Progress | None,
) -> StagedLayer[S]:
    while len(archive.in_flight) >= IN_FLIGHT:
        with contextlib.suppress(Exception):  # its error is raised where its result is asked for
            archive.in_flight.popleft().result()
    progress = progress or NoProgress()
    archive.charge(_STAGED_COST + len(member))
    writer = archive.new_sink(size)
    progress.start(archive.layer_label(member), size)
    try:
        complete = feed_layer(source, writer, archive.options, f"{archive.name}: {member}", progress, size)
    finally:
        progress.finish()
    completion = archive.completions.submit(complete)
    archive.in_flight.append(completion)
    return StagedLayer(writer, completion, size)


def _is_document(head: bytes, size: int) -> bool:
    return size <= SMALL_MEMBER or (size <= DOCUMENT_LIMIT and head.lstrip()[:1] in (b"{", b"["))


@contextlib.contextmanager
def scan(
    stream: Readable,
    name: str,
    new_sink: SinkFactory[S],
    options: LayerOptions,
    progress: Progress | None = None,
) -> Iterator[ScannedArchive[S]]:
    """Read the whole archive ``stream`` once; yield what it holds.

    Each layer streams into a sink made by ``new_sink`` (for a layout: a temporary blob); on leaving
    the context every sink the caller did not commit is aborted.

    Args:
        stream: the decompressed archive bytes (see :func:`pyoci.archive.source.open_archive`).
        name: the archive's name for messages.
        new_sink: makes each layer's sink from its stored size (see :data:`SinkFactory`).
        options: layer output options.
        progress: receives per-layer byte counts.

    Raises:
        ArchiveError: the stream is not a tar archive, is truncated, or holds a member that escapes;
            it passes a bound ("too many members", "too large": :data:`MEMORY_BUDGET`,
            :mod:`pyoci.tarstream`); more than :data:`TRAILER_LIMIT` bytes follow its end.
    """
    archive = ScannedArchive(name, new_sink, options)
    try:
        tar = TarReader(stream, name)
        try:
            for member in tar:
                _take(archive, tar, member, progress)
            _read_trailer(stream, name, tar.offset - BLOCK)
            for completion in archive.in_flight:
                completion.result()
        except compression.DECODE_ERRORS as exc:
            if (failed := compression.io_error(exc)) is not None:
                raise ArchiveError(f"{name}: cannot read: {failed.strerror}") from exc
            raise ArchiveError(f"{name}: truncated or corrupt compressed archive: {exc}") from exc
        yield archive
    finally:
        archive.discard()


def _read_trailer(stream: Readable, name: str, end: int) -> None:
    """Read what follows the end-of-archive marker (at byte ``end``) to the end of the input.

    A producer writing the tar's record padding into a pipe so gets no EPIPE, and a gzip or zstd
    trailer is checked. Up to :data:`TRAILER_LIMIT` bytes are read and ignored, whatever they are, as
    tar(1) ignores them; more is an error rather than an endless read (``cat image.tar /dev/zero``).

    Raises:
        ArchiveError: more than :data:`TRAILER_LIMIT` bytes follow the marker.
    """
    seen = 0
    while chunk := stream.read(TRAILER_LIMIT + 1 - seen):
        seen += len(chunk)
        if seen > TRAILER_LIMIT:
            raise ArchiveError(
                f"{name}: more than {TRAILER_LIMIT} bytes follow the tar end-of-archive marker at byte {end}"
            )


def _take(archive: ScannedArchive[S], tar: TarReader, member: TarMember, progress: Progress | None) -> None:
    name = normalize_member(member.name, archive.name)
    if not name:
        return
    archive.forget(name)
    if member.issym() or member.islnk():
        if member.issym() and member.linkname.startswith("/"):
            raise ArchiveError(f"{archive.name}: symlink {member.name!r} points outside the archive")
        target = posixpath.join(posixpath.dirname(name), member.linkname) if member.issym() else member.linkname
        archive.links[name] = normalize_member(target, archive.name)
        archive.charge(_ENTRY_COST + len(name) + len(archive.links[name]))
    elif member.type == DIRECTORY:
        if name not in archive.directories:
            archive.charge(_ENTRY_COST + len(name))
            archive.directories.add(name)
    elif member.isfile():
        data = tar.member_data()
        head = read_exactly_head(data, min(member.size, _SNIFF))
        if _is_document(head, member.size):
            archive.charge(_ENTRY_COST + len(name) + member.size)
            archive.documents[name] = head + data.read()
        else:
            reader = PrefixedReader(head, data)
            archive.staged[name] = _stage(reader, member.size, name, archive, progress)
