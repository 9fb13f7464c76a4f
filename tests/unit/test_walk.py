"""The one walk of the image graph: order, pruning, depth, urls and subject rules, errors."""

from __future__ import annotations

import json

import pytest

from pyoci import mediatype, walk
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import BlobNotFoundError, FormatError, PyociError
from pyoci.jsonio import dump_json
from pyoci.manifest import Manifest


class MemoryReader:
    """A DocumentReader over a dict of blobs."""

    name = "memory"

    def __init__(self) -> None:
        self.blobs: dict[Digest, bytes] = {}
        self.reads: list[Digest] = []

    def put(self, data: bytes, media_type: str, **fields: object) -> Descriptor:
        digest = Digest.of_bytes(data)
        self.blobs[digest] = data
        return Descriptor(media_type, digest, len(data), **fields)  # type: ignore[arg-type]

    def read_document(self, descriptor: Descriptor) -> bytes:
        self.reads.append(descriptor.digest)
        if descriptor.digest not in self.blobs:
            raise BlobNotFoundError(f"memory: blob {descriptor.digest} is missing")
        return self.blobs[descriptor.digest]

    def manifest(self, layers: int = 1, tag: str = "x", **extra: object) -> Descriptor:
        config = self.put(json.dumps({"tag": tag}).encode(), mediatype.IMAGE_CONFIG)
        blobs = [self.put(f"{tag}-layer-{i}".encode(), mediatype.LAYER_GZIP) for i in range(layers)]
        doc = {
            "schemaVersion": 2,
            "mediaType": mediatype.IMAGE_MANIFEST,
            "config": config.to_json(),
            "layers": [b.to_json() for b in blobs],
            **extra,
        }
        return self.put(dump_json(doc), mediatype.IMAGE_MANIFEST)

    def index(self, children: list[Descriptor], **extra: object) -> Descriptor:
        doc = {"schemaVersion": 2, "mediaType": mediatype.IMAGE_INDEX, "manifests": [c.to_json() for c in children]}
        return self.put(dump_json({**doc, **extra}), mediatype.IMAGE_INDEX)


def nest(reader: MemoryReader, levels: int) -> Descriptor:
    """An image manifest inside ``levels`` nested indexes."""
    top = reader.manifest()
    for _ in range(levels):
        top = reader.index([top])
    return top


def test_parents_first_and_children_first_orders() -> None:
    reader = MemoryReader()
    a, b = reader.manifest(tag="a"), reader.manifest(tag="b")
    root = reader.index([a, b])
    kinds = [(n.kind, n.depth) for n in walk.walk(reader, [root])]
    assert kinds == [
        ("index", 0),
        ("manifest", 1),
        ("config", 1),
        ("layer", 1),
        ("manifest", 1),
        ("config", 1),
        ("layer", 1),
    ]
    order = [n.digest for n in walk.walk(reader, [root], children_first=True)]
    assert order[-1] == root.digest and order.index(a.digest) < order.index(b.digest)
    assert order.index(a.digest) > 0  # a's config and layer come before a


def test_each_digest_once_and_shared_blobs() -> None:
    reader = MemoryReader()
    a = reader.manifest(tag="same")
    root = reader.index([a, a])
    nodes = list(walk.walk(reader, [root, root]))
    assert len(nodes) == len({n.digest for n in nodes}) == 4
    assert reader.reads == [root.digest, a.digest]


@pytest.mark.parametrize("levels", [1, 7, 8])
def test_indexes_nested_up_to_the_limit_are_walked(levels: int) -> None:
    reader = MemoryReader()
    nodes = list(walk.walk(reader, [nest(reader, levels)]))
    assert [n.kind for n in nodes].count("index") == levels
    assert max(n.depth for n in nodes) == levels


def test_an_index_nested_one_deeper_is_refused() -> None:
    reader = MemoryReader()
    with pytest.raises(FormatError, match="image indexes nested more than 8 deep"):
        list(walk.walk(reader, [nest(reader, walk.MAX_INDEX_DEPTH + 1)]))


def test_media_type_must_agree_with_the_descriptor() -> None:
    reader = MemoryReader()
    manifest = reader.manifest()
    lying = Descriptor(mediatype.IMAGE_INDEX, manifest.digest, manifest.size)
    with pytest.raises(FormatError, match="differs from its descriptor's"):
        list(walk.walk(reader, [lying]))


def test_enter_prunes_and_on_error_skips_the_subtree() -> None:
    reader = MemoryReader()
    a, b = reader.manifest(tag="a"), reader.manifest(tag="b")
    root = reader.index([a, b])
    pruned = list(walk.walk(reader, [root], enter=lambda node: node.digest != a.digest))
    assert [n.digest for n in pruned if n.kind == "manifest"] == [a.digest, b.digest]
    assert next(n for n in pruned if n.digest == a.digest).raw is None
    assert len(pruned) == 1 + 1 + 3  # root, a unread, b with its config and layer

    del reader.blobs[a.digest]
    errors: list[tuple[Digest, str]] = []

    def report(node: walk.Node, exc: PyociError) -> None:
        errors.append((node.digest, str(exc)))

    nodes = list(walk.walk(reader, [root], on_error=report))
    assert errors == [(a.digest, f"memory: blob {a.digest} is missing")]
    assert a.digest not in [n.digest for n in nodes] and b.digest in [n.digest for n in nodes]
    with pytest.raises(BlobNotFoundError):
        list(walk.walk(reader, [root]))


def test_foreign_layers_and_unknown_entries_are_marked() -> None:
    reader = MemoryReader()
    config = reader.put(b"{}", mediatype.IMAGE_CONFIG)
    foreign = Descriptor(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        Digest.of_bytes(b"absent"),
        6,
        urls=("https://example.com/layer",),
    )
    doc = {"schemaVersion": 2, "config": config.to_json(), "layers": [foreign.to_json()]}
    manifest = reader.put(dump_json(doc), mediatype.IMAGE_MANIFEST)
    artifact = reader.put(b"x", "application/vnd.example.thing")
    nodes = {n.digest: n for n in walk.walk(reader, [reader.index([manifest, artifact])])}
    assert nodes[foreign.digest].foreign and nodes[foreign.digest].kind == walk.LAYER
    assert not nodes[config.digest].foreign
    assert nodes[artifact.digest].kind == walk.UNKNOWN and nodes[artifact.digest].via == "manifests"


def test_subjects_are_followed_only_when_asked() -> None:
    reader = MemoryReader()
    image = reader.manifest(tag="image")
    signature = reader.manifest(tag="sig", subject=image.to_json())
    plain = {n.digest for n in walk.walk(reader, [signature])}
    assert image.digest not in plain
    followed = {n.digest: n for n in walk.walk(reader, [signature], subjects=True)}
    assert followed[image.digest].via == "subject" and followed[image.digest].kind == walk.MANIFEST


def test_platform_images_take_the_index_platform_and_complete_it() -> None:
    reader = MemoryReader()
    config = reader.put(
        dump_json({"architecture": "arm", "os": "linux", "variant": "v7", "rootfs": {"type": "layers"}}),
        mediatype.IMAGE_CONFIG,
    )
    doc = {"schemaVersion": 2, "mediaType": mediatype.IMAGE_MANIFEST, "config": config.to_json(), "layers": []}
    manifest = reader.put(dump_json(doc), mediatype.IMAGE_MANIFEST)
    entry = Descriptor(manifest.media_type, manifest.digest, manifest.size, platform=None)
    [image] = walk.platform_images(reader, reader.index([entry]))
    assert str(image.platform) == "linux/arm/v7"
    with pytest.raises(FormatError, match="is not an image manifest or index"):
        walk.platform_images(reader, reader.put(b"{}", "application/vnd.example"))


def test_annotations_must_be_strings() -> None:
    reader = MemoryReader()
    bad = reader.index([reader.manifest()], annotations=5)
    with pytest.raises(FormatError, match="'annotations' must map strings to strings"):
        list(walk.walk(reader, [bad]))


def test_progress_labels_name_platform_and_layer() -> None:
    from pyoci.platform import Platform
    from pyoci.targets.copy import blob_labels

    reader = MemoryReader()
    manifest = reader.manifest(layers=2, tag="arm")
    entry = Descriptor(manifest.media_type, manifest.digest, manifest.size, platform=Platform("linux", "arm64"))
    nodes = list(walk.walk(reader, [reader.index([entry])]))
    document = next(n.document for n in nodes if n.kind == walk.MANIFEST)
    labels = blob_labels(nodes)
    assert isinstance(document, Manifest)
    assert labels[document.config.digest] == "linux/arm64 config"
    assert [labels[layer.digest] for layer in document.layers] == ["linux/arm64 layer 1/2", "linux/arm64 layer 2/2"]
