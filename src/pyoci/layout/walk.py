"""The walk of one image in a layout, children before parents, shared by every push destination.

A registry accepts a manifest only once the blobs it references exist (distribution-spec
``spec.md`` "Pushing Manifests"), and an image index only once its child manifests exist. The walk
therefore lists, for an image manifest, its config and layers and then the manifest; for an image
index, each child (recursively) and then the index. Every digest appears once, at its first place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pyoci import mediatype
from pyoci.commands.inspect import image_entries
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, LayoutError, TagError
from pyoci.layout.store import INDEX_FILE, ImageLayout
from pyoci.manifest import MAX_INDEX_DEPTH, Index, Manifest


@dataclass(frozen=True)
class Node:
    """One step of a walk.

    Attributes:
        descriptor: what to push (media type, digest, size).
        raw: the exact bytes of a manifest or index (pushed as they are); None for a plain blob.
    """

    descriptor: Descriptor
    raw: bytes | None = None


def is_manifest_type(media_type: str) -> bool:
    """True when ``media_type`` is an image manifest or image index type (OCI or Docker)."""
    return media_type in mediatype.MANIFEST_TYPES or media_type in mediatype.INDEX_TYPES


def resolve(layout: ImageLayout, tag: str | None) -> Descriptor:
    """Return the index.json entry tagged ``tag``; without a tag, the only image (see ``image_entries``).

    Raises:
        TagError: no entry has the tag, several images do, or there is no tag and not exactly one image.
    """
    entries = image_entries(layout, tag)
    if len(entries) != 1:
        raise TagError(f"{layout.root}/{INDEX_FILE}: holds {len(entries)} untagged images; choose one with oci:DIR:TAG")
    return entries[0]


def walk(layout: ImageLayout, root: Descriptor) -> list[Node]:
    """List what to push for the image ``root``, children before parents, each digest once.

    Manifests and indexes are read (verified against their descriptors) and their bytes kept;
    plain blobs are only named. Blobs are not checked for presence here: a push reads them later.

    Raises:
        BlobNotFoundError: a manifest or index is missing from the layout.
        DigestMismatchError: a manifest or index does not match its descriptor.
        LayoutError: a manifest or index does not parse.
    """
    seen: set[Digest] = set()
    return list(_walk(layout, root, seen, depth=0))


def _walk(layout: ImageLayout, descriptor: Descriptor, seen: set[Digest], depth: int) -> Iterator[Node]:
    if descriptor.digest in seen:
        return
    where = f"{layout.root}: {descriptor.digest}"
    if depth > MAX_INDEX_DEPTH:
        raise LayoutError(f"{where}: image indexes nested more than {MAX_INDEX_DEPTH} deep")
    if not is_manifest_type(descriptor.media_type):
        seen.add(descriptor.digest)
        yield Node(descriptor)
        return
    raw = layout.read_blob(descriptor)
    try:
        if descriptor.media_type in mediatype.INDEX_TYPES:
            for child in Index.parse(raw, where).manifests:
                yield from _walk(layout, child, seen, depth + 1)
        else:
            manifest = Manifest.parse(raw, where, descriptor.media_type)
            for blob in (manifest.config, *manifest.layers):
                yield from _walk(layout, blob, seen, depth + 1)
    except FormatError as exc:
        raise LayoutError(str(exc)) from exc
    seen.add(descriptor.digest)
    yield Node(descriptor, raw)
