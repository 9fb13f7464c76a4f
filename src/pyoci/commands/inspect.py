"""``pyoci inspect``: what an OCI image layout, a multi-architecture image or a docker-archive holds.

Also the read side shared with :mod:`pyoci.merge`: interpreting a source argument, choosing the
index.json entries a tag names (image-spec ``image-layout.md``: ``org.opencontainers.image.ref.name``)
and walking an entry down to its platform images (``image-index.md``: an index's ``manifests`` may
be image manifests or nested indexes). Every document read is verified against its descriptor.

A platform is read from the image config (``config.md``: ``os``, ``architecture``, ``variant``,
``os.version``, ``os.features``), normalised as :class:`~pyoci.platform.Platform` does, unless the
index entry that points at the manifest carries a ``platform``: that one is what runtimes select on
(``image-index.md``), so it wins, completed by the config (images built for ``arm`` often carry the
variant only in the index, and a merge's ``--platform`` override is recorded only there).

A docker-archive is read in one pass by the archive reader, with each layer only hashed
uncompressed (its size is the tar size and its digest the diff_id, checked against the config);
nothing is written anywhere, and archive images have no manifest digest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoci import mediatype
from pyoci.archive.plan import plan_image, select_images
from pyoci.archive.reader import MANIFEST_FILE, scan
from pyoci.archive.source import STDIN, open_archive
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, LayoutError, TagError
from pyoci.layout.store import INDEX_FILE, ImageLayout
from pyoci.manifest import MAX_INDEX_DEPTH, ImageConfig, Index, Manifest
from pyoci.mediatype import Compression
from pyoci.platform import Platform
from pyoci.reference import ArchiveReference, BarePath, LayoutReference, Reference, parse_reference
from pyoci.streams import HashingSink
from pyoci.transcode import LayerOptions

SourceReference = LayoutReference | ArchiveReference
"""A source that is an OCI layout (``oci:DIR[:TAG]``) or a docker-archive."""

OCI_LAYOUT = "oci-layout"
DOCKER_ARCHIVE = "docker-archive"


def source_reference(ref: Reference | str) -> SourceReference:
    """Interpret a source argument as an OCI layout or a docker-archive.

    ``oci:DIR[:TAG]`` is a layout, ``docker-archive:PATH[:NAME:TAG|:@N]`` an archive; a bare path
    is a layout when it is a directory and an archive otherwise (``-`` is stdin).

    Raises:
        FormatError: a malformed reference, or ``oci-archive:`` (not read as a source).
    """
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    if isinstance(ref, BarePath):
        if ref.path != STDIN and Path(ref.path).is_dir():
            return LayoutReference(ref.path)
        return ArchiveReference(ref.path)
    if isinstance(ref, LayoutReference) and ref.archive:
        raise FormatError(f"{ref}: oci-archive is not read as a source; extract the tar into a directory first")
    return ref


def _tag_listing(entries: Sequence[Descriptor]) -> str:
    tags = sorted({d.ref_name for d in entries if d.ref_name is not None})
    return ", ".join(tags) if tags else "none"


def image_entries(layout: ImageLayout, tag: str | None) -> list[Descriptor]:
    """Choose the index.json entries that make up one image of ``layout`` (image-spec ``image-layout.md``).

    With ``tag``: the entry whose ``org.opencontainers.image.ref.name`` is ``tag``. Without: the only
    image of index.json, or, when no entry has a tag, all of them (a multi-platform layout written
    with its platform entries straight in index.json).

    Returns:
        One entry, or the untagged platform entries, in index.json order.

    Raises:
        TagError: the tag is absent or names different images; or no tag was given and the layout
            holds several tagged images, or none.
        LayoutError: index.json cannot be read.
    """
    entries = layout.read_index().manifests
    if tag is not None:
        chosen = [d for d in entries if d.ref_name == tag]
        if not chosen:
            raise TagError(f"{layout.root}: no image tagged {tag!r} in {INDEX_FILE} (tags: {_tag_listing(entries)})")
        if len({d.digest for d in chosen}) > 1:
            raise TagError(f"{layout.root}: tag {tag!r} is ambiguous: {len(chosen)} {INDEX_FILE} entries hold it")
        return chosen[:1]
    if not entries:
        raise TagError(f"{layout.root}: {INDEX_FILE} lists no images")
    if len({d.digest for d in entries}) == 1:
        return list(entries[:1])
    if all(d.ref_name is None for d in entries):
        return list(entries)
    raise TagError(
        f"{layout.root}: holds several images (tags: {_tag_listing(entries)}); name one with oci:{layout.root}:TAG"
    )


@dataclass(frozen=True)
class PlatformManifest:
    """One image manifest reached from an index.json entry, with its config.

    Attributes:
        descriptor: the descriptor that pointed at the manifest (as found: it may carry a
            ``platform`` and annotations).
        manifest: the manifest, exact bytes kept.
        config: the parsed image config, exact bytes kept.
        platform: the platform: ``descriptor.platform`` if any, completed by the config's (see
            :func:`entry_platform`).
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


def platform_manifests(
    layout: ImageLayout, descriptor: Descriptor, where: str, depth: int = 0
) -> list[PlatformManifest]:
    """Walk ``descriptor`` (an image manifest or index) down to its image manifests, reading and verifying each.

    Nested indexes are followed depth first, in ``manifests`` order (image-spec ``image-index.md``).

    Args:
        layout: where the blobs are.
        descriptor: an index.json entry or an index's child.
        where: a name for messages (the source reference).
        depth: how many indexes enclose ``descriptor``.

    Raises:
        BlobNotFoundError: a blob is absent.
        DigestMismatchError: a blob's bytes differ from its descriptor.
        FormatError: a manifest, index or config does not parse (e.g. an artifact that is not an image).
        LayoutError: a descriptor whose media type is neither an image manifest nor an index, or
            indexes nested deeper than :data:`~pyoci.manifest.MAX_INDEX_DEPTH`.
    """
    if descriptor.media_type in mediatype.INDEX_TYPES:
        if depth >= MAX_INDEX_DEPTH:
            raise LayoutError(
                f"{where}: index {descriptor.digest}: image indexes nested more than {MAX_INDEX_DEPTH} deep"
            )
        index = Index.parse(layout.read_blob(descriptor), f"{where}: index {descriptor.digest}")
        return [item for child in index.manifests for item in platform_manifests(layout, child, where, depth + 1)]
    if descriptor.media_type not in mediatype.MANIFEST_TYPES:
        raise LayoutError(
            f"{where}: {descriptor.digest}: media type {descriptor.media_type!r} is not an image manifest or index"
        )
    name = f"{where}: manifest {descriptor.digest}"
    manifest = Manifest.parse(layout.read_blob(descriptor), name, descriptor.media_type)
    config = ImageConfig.parse(layout.read_blob(manifest.config), f"{name}: config {manifest.config.digest}")
    return [PlatformManifest(descriptor, manifest, config, entry_platform(config.platform, descriptor.platform))]


@dataclass(frozen=True)
class PlatformImage:
    """The summary of one platform's image.

    Attributes:
        platform: os/architecture/variant (and os.version, os.features).
        manifest: the manifest descriptor; None for an image in a docker-archive (no manifest yet).
        config: the config descriptor (its digest is the image ID).
        layers: layer descriptors, base first; for a docker-archive the uncompressed tars
            (digest = diff_id, size in bytes uncompressed).
        created: the config's ``created`` timestamp, or empty.
        entrypoint: ``config.Entrypoint``.
        cmd: ``config.Cmd``.
    """

    platform: Platform
    manifest: Descriptor | None
    config: Descriptor
    layers: tuple[Descriptor, ...]
    created: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()

    @property
    def layers_size(self) -> int:
        """The sum of the layer sizes, in bytes."""
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "platform": self.platform.to_json(),
            "manifest": self.manifest.to_json() if self.manifest is not None else None,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
            "layers_size": self.layers_size,
            "created": self.created,
            "entrypoint": list(self.entrypoint),
            "cmd": list(self.cmd),
        }


@dataclass(frozen=True)
class InspectedImage:
    """One image of the source: an index.json entry (all its tags) or an archive's manifest.json entry.

    Attributes:
        tags: for a layout, the ref.names of the entries with this digest; for an archive, the RepoTags.
        descriptor: the index.json entry (without annotations); None for an archive image.
        platforms: the platform images, in index order (one for a single-platform image).
        annotations: the image index's own annotations (empty for a manifest).
        label: how to name it when it has no tag (``@N`` for an archive, else the digest).
    """

    tags: tuple[str, ...]
    descriptor: Descriptor | None
    platforms: tuple[PlatformImage, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "tags": list(self.tags),
            "descriptor": self.descriptor.to_json() if self.descriptor is not None else None,
            "annotations": dict(self.annotations),
            "platforms": [p.to_json() for p in self.platforms],
        }


@dataclass(frozen=True)
class InspectResult:
    """What :func:`inspect` found.

    Attributes:
        source: the source as given.
        kind: ``"oci-layout"`` or ``"docker-archive"``.
        images: the images, in index.json (or manifest.json) order.
        raw: the exact bytes of the manifest or index the source names (with a tag, or when the
            layout holds one image), else index.json; for a docker-archive, its ``manifest.json``.
    """

    source: str
    kind: str
    images: tuple[InspectedImage, ...]
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``raw`` left out)."""
        return {"source": self.source, "kind": self.kind, "images": [image.to_json() for image in self.images]}

    def to_text(self) -> str:
        """Return a readable summary, one block per image and platform."""
        noun = "image" if len(self.images) == 1 else "images"
        lines = [f"{self.source}: {self.kind}, {len(self.images)} {noun}"]
        for image in self.images:
            head = (", ".join(image.tags) if image.tags else f"untagged {image.label}") + ":"
            if image.descriptor is not None:
                kind = "image index" if image.descriptor.media_type in mediatype.INDEX_TYPES else "image manifest"
                head += f" {kind} {image.descriptor.digest} ({image.descriptor.size} bytes)"
            lines.append(head)
            lines.extend(f"  annotation {key}={value}" for key, value in sorted(image.annotations.items()))
            for item in image.platforms:
                version = f" (os.version {item.platform.os_version})" if item.platform.os_version else ""
                lines.append(f"  {item.platform}{version}")
                if item.manifest is not None:
                    lines.append(f"    manifest    {item.manifest.digest} ({item.manifest.size} bytes)")
                lines.append(f"    config      {item.config.digest} ({item.config.size} bytes)")
                sizes = " + ".join(str(layer.size) for layer in item.layers) or "0"
                unit = " uncompressed" if item.manifest is None else ""
                lines.append(f"    layers      {len(item.layers)}, {item.layers_size} bytes{unit} ({sizes})")
                lines.append(f"    created     {item.created or '-'}")
                lines.append(f"    entrypoint  {json.dumps(list(item.entrypoint))}")
                lines.append(f"    cmd         {json.dumps(list(item.cmd))}")
        return "\n".join(lines) + "\n"


def _platform_image(item: PlatformManifest) -> PlatformImage:
    config = item.config
    return PlatformImage(
        platform=item.platform,
        manifest=Descriptor(item.manifest.media_type, item.manifest.digest, len(item.manifest.raw)),
        config=item.manifest.config,
        layers=item.manifest.layers,
        created=config.created,
        entrypoint=config.entrypoint,
        cmd=config.cmd,
    )


def _inspect_layout(ref: LayoutReference, where: str) -> InspectResult:
    layout = ImageLayout.open(ref.path)
    index = layout.read_index()
    entries = image_entries(layout, ref.tag) if ref.tag is not None else list(index.manifests)
    groups: dict[Digest, list[Descriptor]] = {}
    for entry in entries:
        groups.setdefault(entry.digest, []).append(entry)
    images: list[InspectedImage] = []
    for digest, group in groups.items():
        entry = group[0]
        tags = tuple(d.ref_name for d in group if d.ref_name is not None)
        annotations: Mapping[str, str] = {}
        if entry.media_type in mediatype.INDEX_TYPES:
            annotations = Index.parse(layout.read_blob(entry), f"{where}: index {digest}").annotations
        items = platform_manifests(layout, entry, where)
        bare = Descriptor(entry.media_type, digest, entry.size)
        images.append(InspectedImage(tags, bare, tuple(_platform_image(i) for i in items), annotations, str(digest)))
    raw = layout.read_blob(entries[0]) if len(groups) == 1 else index.raw
    return InspectResult(where, OCI_LAYOUT, tuple(images), raw)


def _inspect_archive(ref: ArchiveReference, where: str) -> InspectResult:
    name = "stdin" if ref.path == STDIN else ref.path
    options = LayerOptions(Compression.NONE, threads=1)
    with open_archive(ref.path) as stream, scan(stream, name, lambda size: HashingSink(), options) as archive:
        chosen = select_images(archive.images(), ref, all_images=ref.name is None and ref.position is None)
        images = []
        for image in chosen:
            planned = plan_image(archive, image)
            config = planned.config
            layers = tuple(
                Descriptor(mediatype.LAYER, staged.result.diff_id, staged.writer.size) for staged in planned.layers
            )
            summary = PlatformImage(
                platform=config.platform,
                manifest=None,
                config=Descriptor(mediatype.IMAGE_CONFIG, config.digest, len(config.raw)),
                layers=layers,
                created=config.created,
                entrypoint=config.entrypoint,
                cmd=config.cmd,
            )
            images.append(InspectedImage(image.repo_tags, None, (summary,), {}, f"@{image.position}"))
        raw = archive.document(MANIFEST_FILE)
    return InspectResult(where, DOCKER_ARCHIVE, tuple(images), raw)


def inspect(source: Reference | str) -> InspectResult:
    """Summarise an OCI image layout, one of its images, or a docker-archive.

    Tags as image-spec ``image-layout.md`` defines them; platforms as ``image-index.md`` and
    ``config.md`` (see :func:`entry_platform`).

    Args:
        source: ``oci:DIR[:TAG]`` or a directory (a layout: every image, or the tagged one);
            ``docker-archive:PATH[:NAME:TAG|:@N]``, a file path or ``-`` (a docker-archive, plain,
            gzip or zstd: every image, or the selected one).

    Returns:
        Tags, platforms, manifest and config digests, layers with sizes, created and entrypoint per
        image, and the exact manifest/index bytes (see :attr:`InspectResult.raw`).

    Raises:
        FormatError: a malformed reference, or a document that does not parse.
        LayoutError: not a layout; TagError when the tag is absent or ambiguous.
        ArchiveError: an unreadable or inconsistent docker-archive.
        DigestMismatchError: a blob whose bytes differ from its descriptor.
    """
    ref = source_reference(source)
    where = str(source)
    if isinstance(ref, LayoutReference):
        return _inspect_layout(ref, where)
    return _inspect_archive(ref, where)
