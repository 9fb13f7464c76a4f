"""The one walk of the image graph: indexes, manifests, configs, layers and ``subject`` referrers.

Every command that follows an image (verify, gc, inspect, merge, push, copy) walks it here, over
anything that can read a document by descriptor (:class:`DocumentReader`: a layout, a registry, a
static tree), so they agree on what an image holds. The rules, decided once:

* **What is followed** (image-spec ``image-index.md``, ``manifest.md``): an image index (OCI or
  Docker manifest list) reaches its ``manifests``; an image manifest (OCI or Docker schema 2) its
  ``config`` and ``layers``; with ``subjects``, both also reach their ``subject``. A root or an
  index entry of any other media type is a node of kind :data:`UNKNOWN`: listed, not looked into.
* **Depth**: image indexes may nest :data:`MAX_INDEX_DEPTH` deep in all, the root index counting as
  the first; a deeper one is refused (real images nest one or two levels). Configs, layers and
  subjects do not count as levels.
* **Media types agree**: a manifest or index whose ``mediaType`` field differs from the media type
  of the descriptor that pointed at it is refused: it is not the document its parent says.
* **Non-distributable layers**: a layer whose descriptor carries ``urls`` (``descriptor.md``; the
  ``nondistributable`` layer types) may be absent from a store, since clients fetch it from those
  URLs. The walk marks such nodes :attr:`Node.foreign`; copies skip a foreign layer the source
  lacks, verify notes it without calling it a problem, gc keeps it when present.
* **Each digest once**: a blob shared by several images (or listed twice) is visited once. Every
  descriptor of it must agree with the first one met: the same size, the same media type for a
  manifest or index (its ``mediaType`` field is one), the same compression for a layer of a known
  layer type (Docker and OCI layer types may mix; a type pyoci does not know is opaque); else the
  walk reports it as it reports an unreadable document.

Documents are read once each, verified against their descriptors by the reader, and kept as
their exact bytes beside the parsed form (:attr:`Node.raw`, :attr:`Node.document`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from pyoci import mediatype
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, PyociError
from pyoci.jsonio import load_json
from pyoci.manifest import ImageConfig, Index, Manifest
from pyoci.platform import Platform

DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
ATTESTATION_MANIFEST = "attestation-manifest"
"""The annotation (and its value) BuildKit puts on an index entry that is an attestation manifest."""

MAX_INDEX_DEPTH = 8
"""Image indexes nested deeper than this (the root index counting as 1) are refused."""

INDEX = "index"
MANIFEST = "manifest"
CONFIG = "config"
LAYER = "layer"
UNKNOWN = "unknown"
"""Kinds of :class:`Node`. UNKNOWN: a root, index entry or subject that is neither a manifest nor an index."""


class DocumentReader(Protocol):
    """Reads manifests, indexes and configs by descriptor (a layout, a registry, a static tree)."""

    @property
    def name(self) -> str:
        """The store as the user named it, for messages."""
        ...

    def read_document(self, descriptor: Descriptor) -> bytes:
        """Return the blob of ``descriptor``, verified against its digest and size.

        Raises:
            PyociError: the blob is missing (``BlobNotFoundError``), differs from the descriptor
                (``DigestMismatchError``), is too large, or cannot be fetched.
        """
        ...


@dataclass(frozen=True)
class Node:
    """One step of a walk.

    Attributes:
        descriptor: the descriptor that pointed here (as found: it may carry ``platform``, annotations).
        kind: :data:`INDEX`, :data:`MANIFEST`, :data:`CONFIG`, :data:`LAYER` or :data:`UNKNOWN`.
        depth: how many image indexes enclose this node (0 for a root).
        parent: the manifest or index that pointed here; None for a root.
        raw: the exact bytes of an index or manifest; None for other kinds.
        document: the parsed index or manifest; None for other kinds.
        via: the field that pointed here: ``"root"``, ``"manifests"``, ``"config"``, ``"layers"``
            or ``"subject"``.
    """

    descriptor: Descriptor
    kind: str
    depth: int = 0
    parent: Descriptor | None = None
    raw: bytes | None = None
    document: Index | Manifest | None = None
    via: str = "root"

    @property
    def digest(self) -> Digest:
        """The node's digest."""
        return self.descriptor.digest

    @property
    def foreign(self) -> bool:
        """True for a non-distributable layer (its descriptor has ``urls``): it may be absent from a store."""
        return self.kind == LAYER and bool(self.descriptor.urls)

    @property
    def is_document(self) -> bool:
        """True for an index or a manifest (kept as :attr:`raw` bytes; copied last, children first)."""
        return self.raw is not None


def kind_of(media_type: str) -> str:
    """The node kind a root or index entry of ``media_type`` gets: INDEX, MANIFEST or UNKNOWN."""
    if media_type in mediatype.INDEX_TYPES:
        return INDEX
    if media_type in mediatype.MANIFEST_TYPES:
        return MANIFEST
    return UNKNOWN


def read_node(
    reader: DocumentReader, descriptor: Descriptor, depth: int = 0, parent: Descriptor | None = None, via: str = "root"
) -> Node:
    """Read and parse one index or manifest (any other media type gives an UNKNOWN node, not read).

    Raises:
        FormatError: the document does not parse, its ``mediaType`` contradicts ``descriptor``, or
            it is an index nested deeper than :data:`MAX_INDEX_DEPTH`.
        PyociError: from the reader (missing, corrupt or unreachable blob).
    """
    kind = kind_of(descriptor.media_type)
    if kind == UNKNOWN:
        return Node(descriptor, kind, depth, parent, via=via)
    where = f"{reader.name}: {kind} {descriptor.digest}"
    if kind == INDEX and depth >= MAX_INDEX_DEPTH:
        raise FormatError(f"{where}: image indexes nested more than {MAX_INDEX_DEPTH} deep")
    raw = reader.read_document(descriptor)
    obj = load_json(raw, where)
    declared = obj.get("mediaType") if isinstance(obj, dict) else None
    if declared is not None and declared != descriptor.media_type:
        raise FormatError(f"{where}: mediaType {declared!r} differs from its descriptor's {descriptor.media_type!r}")
    document: Index | Manifest
    document = Index.parse(raw, where) if kind == INDEX else Manifest.parse(raw, where, descriptor.media_type)
    return Node(descriptor, kind, depth, parent, raw, document, via)


def children(node: Node, subjects: bool = False) -> list[Node]:
    """The nodes ``node`` points at, unread: an index's entries, a manifest's config and layers (and subject)."""
    document = node.document
    found: list[Node] = []
    if isinstance(document, Index):
        found = [
            Node(d, kind_of(d.media_type), node.depth + 1, node.descriptor, via="manifests") for d in document.manifests
        ]
    elif isinstance(document, Manifest):
        found = [Node(document.config, CONFIG, node.depth, node.descriptor, via="config")]
        found += [Node(layer, LAYER, node.depth, node.descriptor, via="layers") for layer in document.layers]
    if subjects and document is not None and document.subject is not None:
        subject = document.subject
        found.append(Node(subject, kind_of(subject.media_type), 0, node.descriptor, via="subject"))
    return found


OnError = Callable[[Node, PyociError], None]
"""Receives a document that could not be read or parsed; its subtree is skipped and the walk goes on."""


def walk(
    reader: DocumentReader,
    roots: Iterable[Descriptor],
    *,
    children_first: bool = False,
    subjects: bool = False,
    enter: Callable[[Node], bool] | None = None,
    on_error: OnError | None = None,
) -> Iterator[Node]:
    """Walk the images ``roots`` point at, yielding every node once (see the module docstring for the rules).

    Args:
        reader: where the documents are read from.
        roots: the descriptors to start from (index.json entries, a tag's manifest or index).
        children_first: yield a manifest or index after everything it points at (the order a copy
            writes in: a registry accepts a manifest only once its blobs exist); else before.
        subjects: follow ``subject`` referrers too (gc keeps what a kept referrer points at).
        enter: called with each index or manifest before it is read; False prunes it (the node is
            still yielded, unread: ``raw`` None), e.g. a manifest the destination already has.
        on_error: when given, a document that cannot be read or parsed is reported to it and its
            subtree skipped; when None, the error propagates.

    Yields:
        Nodes, each digest once, in depth-first order of the roots and their entries.

    Raises:
        FormatError: a descriptor contradicts an earlier one of its digest, when ``on_error`` is None.
        PyociError: as :func:`read_node`, when ``on_error`` is None.
    """
    seen: dict[Digest, Descriptor] = {}
    failed: set[Digest] = set()  # documents already reported: a contradiction of their descriptor is not news

    def visit(start: Node) -> Iterator[Node]:
        first = seen.get(start.digest)
        if first is not None:
            conflict = None if start.digest in failed else _conflict(first, start.descriptor)
            if conflict is not None:
                error = FormatError(f"{reader.name}: {start.kind} {start.digest}: {conflict}")
                if on_error is None:
                    raise error
                on_error(start, error)
            return
        seen[start.digest] = start.descriptor
        node = start
        if start.kind in (INDEX, MANIFEST) and (enter is None or enter(start)):
            try:
                node = read_node(reader, start.descriptor, start.depth, start.parent, start.via)
            except PyociError as exc:
                if on_error is None:
                    raise
                failed.add(start.digest)
                on_error(start, exc)
                return
        if not children_first:
            yield node
        for child in children(node, subjects):
            yield from visit(child)
        if children_first:
            yield node

    for root in roots:
        yield from visit(Node(root, kind_of(root.media_type)))


def _conflict(first: Descriptor, again: Descriptor) -> str | None:
    """How ``again`` contradicts ``first``, an earlier descriptor of the same digest (see the module docstring)."""
    if again.size != first.size:
        return f"declared as {again.size} bytes here and as {first.size} bytes elsewhere"
    documents = (kind_of(first.media_type), kind_of(again.media_type)) != (UNKNOWN, UNKNOWN)
    compressions = {mediatype.layer_compression(first.media_type), mediatype.layer_compression(again.media_type)}
    if (documents and again.media_type != first.media_type) or len(compressions - {None}) > 1:
        return f"declared as {again.media_type!r} here and as {first.media_type!r} elsewhere"
    return None


@dataclass(frozen=True)
class PlatformImage:
    """One image manifest reached from a root, with its config and platform.

    Attributes:
        descriptor: the descriptor that pointed at the manifest (as found: it may carry a
            ``platform`` and annotations).
        manifest: the manifest, exact bytes kept.
        config: the parsed image config, exact bytes kept.
        platform: ``descriptor.platform`` if any, completed by the config's (see :func:`entry_platform`).
    """

    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig
    platform: Platform


def entry_platform(config: Platform, declared: Platform | None) -> Platform:
    """Return the platform of an image: ``declared`` (its index entry's) if any, else the config's.

    An index entry's ``platform`` is what runtimes select on (image-spec ``image-index.md``), so it
    wins; its empty fields are filled from the config when both name the same os and architecture.
    """
    if declared is None:
        return config
    if (declared.os, declared.architecture) != (config.os, config.architecture):
        return declared
    return Platform(
        declared.os,
        declared.architecture,
        declared.variant or config.variant,
        declared.os_version or config.os_version,
        declared.os_features or config.os_features,
    )


def is_attestation(descriptor: Descriptor) -> bool:
    """True for an index entry that BuildKit marks as an attestation manifest of another entry, not a platform image.

    BuildKit (``docker buildx``) lists provenance and SBOM attestations in the image index itself,
    as manifests of platform ``unknown/unknown`` annotated ``vnd.docker.reference.type:
    attestation-manifest`` (BuildKit ``docs/attestations/attestation-storage.md``).
    """
    return descriptor.annotations.get(DOCKER_REFERENCE_TYPE) == ATTESTATION_MANIFEST


def is_image(manifest: Manifest) -> bool:
    """True for an image manifest (its config is an image config); False for an artifact (a signature, an SBOM)."""
    return manifest.config.media_type in mediatype.CONFIG_TYPES


def check_image(reader: DocumentReader, manifest: Manifest, where: str) -> ImageConfig:
    """Read an image manifest's config and check what needs no layer bytes; return the config.

    The rules: the config parses as :meth:`~pyoci.manifest.ImageConfig.parse` reads it; the
    manifest has one layer per ``rootfs.diff_ids`` entry, in order (image-spec ``config.md``
    "rootfs"); no layer has the media type of a manifest, an index or a config. A layer media type
    pyoci does not know is no error: image-spec ``manifest.md`` forbids implementations that store
    or copy manifests to fail on one (buildx attestations carry in-toto layers). Whether a layer's
    bytes are compressed as its media type says, and decompress to its diff_id, needs the bytes:
    ``verify`` checks that.

    Args:
        reader: where the config is read.
        manifest: an image manifest (see :func:`is_image`).
        where: how messages name the manifest.

    Raises:
        FormatError: a rule is broken.
        PyociError: from the reader (missing, corrupt or unreachable config).
    """
    config = ImageConfig.parse(reader.read_document(manifest.config), f"{where}: config")
    if len(config.diff_ids) != len(manifest.layers):
        counts = f"{len(manifest.layers)} layers but the config lists {len(config.diff_ids)} diff_ids"
        raise FormatError(f"{where}: {counts}")
    for layer in manifest.layers:
        if is_document_type(layer.media_type):
            raise FormatError(f"{where}: layer {layer.digest}: {layer.media_type!r} is not a layer media type")
    return config


def is_document_type(media_type: str) -> bool:
    """True for the media type of a manifest, an index or an image config: known, and never a layer's."""
    return media_type in mediatype.MANIFEST_TYPES | mediatype.INDEX_TYPES | mediatype.CONFIG_TYPES


def platform_images(reader: DocumentReader, root: Descriptor) -> list[PlatformImage]:
    """Walk ``root`` (an image manifest or index) down to its image manifests, reading each config.

    Nested indexes are followed depth first, in ``manifests`` order (image-spec ``image-index.md``).
    BuildKit's attestation manifests (:func:`is_attestation`) are not platform images: left out.

    Raises:
        FormatError: a manifest, index or config does not parse, a manifest is an artifact (its
            config is not an image config), an image breaks a rule of :func:`check_image`, or a
            root or index entry is neither an image manifest nor an index.
        PyociError: from the reader (missing, corrupt or unreachable blob).
    """
    images = []
    for node in walk(reader, [root]):
        if node.kind == UNKNOWN:
            raise FormatError(
                f"{reader.name}: {node.digest}: media type {node.descriptor.media_type!r} is not an image manifest"
                " or index"
            )
        if not isinstance(node.document, Manifest) or is_attestation(node.descriptor):
            continue
        where = f"{reader.name}: manifest {node.digest}"
        if not is_image(node.document):
            config_type = node.document.config.media_type
            raise FormatError(f"{where}: an artifact (config media type {config_type!r}), not an image")
        config = check_image(reader, node.document, where)
        platform = entry_platform(config.platform, node.descriptor.platform)
        images.append(PlatformImage(node.descriptor, node.document, config, platform))
    return images
