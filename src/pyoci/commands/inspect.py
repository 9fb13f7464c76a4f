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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyoci import mediatype, walk
from pyoci.archive.plan import plan_image, select_images
from pyoci.archive.reader import MANIFEST_FILE, scan
from pyoci.archive.source import open_archive
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import Compression, LayerOptions
from pyoci.platform import Platform
from pyoci.reference import ArchiveReference, LayoutReference, Reference, expect, parse, transport_of
from pyoci.sources import ALL_SOURCES, open_source
from pyoci.streams import HashingSink
from pyoci.targets.options import RegistryOptions

OCI_LAYOUT = "oci-layout"
DOCKER_ARCHIVE = "docker-archive"


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
        kind: ``"oci-layout"``, ``"docker-archive"``, or the transport read (``"docker"``, ``"static"``,
            ``"oci-archive"``, ``"oci"`` for a digest).
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


def _platform_image(item: walk.PlatformImage) -> PlatformImage:
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
    entries = layout.entries(ref.tag) if ref.tag is not None else list(index.manifests)
    groups: dict[Digest, list[Descriptor]] = {}
    for entry in entries:
        groups.setdefault(entry.digest, []).append(entry)
    images: list[InspectedImage] = []
    for digest, group in groups.items():
        entry = group[0]
        tags = tuple(d.ref_name for d in group if d.ref_name is not None)
        annotations: Mapping[str, str] = {}
        if entry.media_type in mediatype.INDEX_TYPES:
            document = walk.read_node(layout, entry).document
            annotations = document.annotations if document is not None else {}
        items = walk.platform_images(layout, entry)
        bare = Descriptor(entry.media_type, digest, entry.size)
        images.append(InspectedImage(tags, bare, tuple(_platform_image(i) for i in items), annotations, str(digest)))
    raw = layout.read_blob(entries[0]) if len(groups) == 1 else index.raw
    return InspectResult(where, OCI_LAYOUT, tuple(images), raw)


def _inspect_archive(ref: ArchiveReference, where: str) -> InspectResult:
    name = ref.display
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


def _inspect_source(ref: Reference, where: str, options: RegistryOptions | None) -> InspectResult:
    with open_source(ref, what="inspect reads", registry=options) as source:
        roots = source.roots()
        if len(roots) != 1:
            raise FormatError(f"{source.name}: holds {len(roots)} untagged images; name one with a tag")
        root, tag = roots[0]
        raw = source.read_document(root)
        annotations: Mapping[str, str] = {}
        if root.media_type in mediatype.INDEX_TYPES:
            document = walk.read_node(source, root).document
            annotations = document.annotations if document is not None else {}
        items = tuple(_platform_image(i) for i in walk.platform_images(source, root))
        bare = Descriptor(root.media_type, root.digest, root.size)
        image = InspectedImage((tag,) if tag else (), bare, items, annotations, str(root.digest))
    return InspectResult(where, transport_of(ref), (image,), raw)


def inspect(source: Reference | str, *, options: RegistryOptions | None = None) -> InspectResult:
    """Summarise an OCI image layout, one of its images, or a docker-archive.

    Tags as image-spec ``image-layout.md`` defines them; platforms as ``image-index.md`` and
    ``config.md`` (see :func:`entry_platform`).

    Args:
        source: ``oci:DIR[:TAG]`` or a directory (a layout: every image, or the tagged one);
            ``docker-archive:PATH[:NAME:TAG|:@N]``, a file path or ``-`` (a docker-archive, plain,
            gzip or zstd: every image, or the selected one); ``docker://HOST/REPO[:TAG|@DIGEST]``,
            ``static:DIR:REPO[:TAG]``, ``oci-archive:FILE[:TAG]``, ``oci:DIR@DIGEST`` (one image).
        options: how to reach a registry.

    Returns:
        Tags, platforms, manifest and config digests, layers with sizes, created and entrypoint per
        image, and the exact manifest/index bytes (see :attr:`InspectResult.raw`).

    Raises:
        FormatError: a malformed reference, or a document that does not parse.
        LayoutError: not a layout; TagError when the tag is absent or ambiguous.
        ArchiveError: an unreadable or inconsistent docker-archive.
        DigestMismatchError: a blob whose bytes differ from its descriptor.
        RegistryError: a registry refused access, or the tag is unknown (``MANIFEST_UNKNOWN``).
    """
    ref = expect(parse(source), ALL_SOURCES, "inspect reads")
    where = str(source)
    if isinstance(ref, LayoutReference) and not ref.archive and ref.digest is None:
        return _inspect_layout(ref, where)
    if isinstance(ref, ArchiveReference):
        return _inspect_archive(ref, where)
    return _inspect_source(ref, where, options)
