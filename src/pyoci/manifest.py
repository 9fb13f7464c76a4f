"""Image manifests, image indexes and the few image-config fields pyoci needs; raw bytes kept.

Documents pyoci writes are serialised compactly with keys in the order of the image-spec's Go types
(``manifest.md``, ``image-index.md``), so the same content always gives the same bytes. Documents
read keep their exact bytes beside the parsed form: digests and sizes always come from the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyoci import mediatype
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.jsonio import dump_json, load_json
from pyoci.platform import Platform

MAX_INDEX_DEPTH = 8
"""Image indexes nested deeper than this are refused (real images nest one or two levels)."""


@dataclass(frozen=True)
class ImageConfig:
    """The fields of an image config (image-spec ``config.md``) pyoci reads, with the exact bytes.

    Attributes:
        raw: the config bytes as stored; its digest is the image ID.
        platform: os, architecture, variant, os.version and os.features.
        diff_ids: ``rootfs.diff_ids``, one per layer, in order.
        created: the ``created`` timestamp text, or empty.
        entrypoint: ``config.Entrypoint``, or empty.
        cmd: ``config.Cmd``, or empty.
    """

    raw: bytes
    platform: Platform
    diff_ids: tuple[Digest, ...]
    created: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()

    @property
    def digest(self) -> Digest:
        """The sha256 of :attr:`raw`."""
        return Digest.of_bytes(self.raw)

    @classmethod
    def parse(cls, raw: bytes, where: str) -> ImageConfig:
        """Parse config bytes read from ``where``.

        Raises:
            FormatError: invalid JSON, a missing ``os``/``architecture``, or a ``rootfs``
                that is not ``{"type": "layers", "diff_ids": [...]}`` of valid digests.
        """
        obj = load_json(raw, where)
        if not isinstance(obj, Mapping):
            raise FormatError(f"{where}: image config is not a JSON object")
        try:
            platform = Platform.from_config(obj)
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from exc
        rootfs = obj.get("rootfs")
        if not isinstance(rootfs, Mapping) or rootfs.get("type") != "layers":
            raise FormatError(f"{where}: image config 'rootfs.type' is not 'layers'")
        raw_ids = rootfs.get("diff_ids") or []
        if not isinstance(raw_ids, list) or not all(isinstance(d, str) for d in raw_ids):
            raise FormatError(f"{where}: image config 'rootfs.diff_ids' is not a list of digests")
        try:
            diff_ids = tuple(Digest.parse(d) for d in raw_ids)
        except FormatError as exc:
            raise FormatError(f"{where}: rootfs.diff_ids: {exc}") from exc
        inner = obj.get("config") or {}
        inner = inner if isinstance(inner, Mapping) else {}
        return cls(
            raw=raw,
            platform=platform,
            diff_ids=diff_ids,
            created=str(obj.get("created") or ""),
            entrypoint=tuple(str(x) for x in inner.get("Entrypoint") or ()),
            cmd=tuple(str(x) for x in inner.get("Cmd") or ()),
        )


@dataclass(frozen=True)
class Manifest:
    """An image manifest (image-spec ``manifest.md``) with its exact bytes.

    Attributes:
        raw: the manifest bytes; its digest names the image.
        media_type: the manifest's media type.
        config: the config descriptor.
        layers: the layer descriptors, base layer first.
        annotations: the manifest's own annotations.
        subject: the manifest this one refers to (an OCI 1.1 referrer: a signature, an SBOM), or None.
    """

    raw: bytes
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None

    @property
    def digest(self) -> Digest:
        """The sha256 of :attr:`raw`."""
        return Digest.of_bytes(self.raw)

    def descriptor(self, annotations: Mapping[str, str] | None = None, platform: Platform | None = None) -> Descriptor:
        """Return a descriptor of this manifest, for an index entry."""
        return Descriptor(self.media_type, self.digest, len(self.raw), dict(annotations or {}), platform)

    @classmethod
    def build(
        cls, config: Descriptor, layers: Sequence[Descriptor], annotations: Mapping[str, str] | None = None
    ) -> Manifest:
        """Serialise an OCI image manifest (schemaVersion 2) deterministically."""
        obj: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": mediatype.IMAGE_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        if annotations:
            obj["annotations"] = dict(annotations)
        return cls(dump_json(obj), mediatype.IMAGE_MANIFEST, config, tuple(layers), dict(annotations or {}))

    @classmethod
    def parse(cls, raw: bytes, where: str, media_type: str = mediatype.IMAGE_MANIFEST) -> Manifest:
        """Parse manifest bytes read from ``where``; ``media_type`` is the one the descriptor gave.

        Raises:
            FormatError: invalid JSON or a missing/invalid ``config`` or ``layers``.
        """
        obj = load_json(raw, where)
        if not isinstance(obj, Mapping) or not isinstance(obj.get("layers", []), list):
            raise FormatError(f"{where}: image manifest is not an object with a 'layers' list")
        config = Descriptor.from_json(obj.get("config"), where)
        layers = tuple(Descriptor.from_json(layer, where) for layer in obj.get("layers") or ())
        subject = _subject(obj, where)
        annotations = dict(obj.get("annotations") or {})
        return cls(raw, str(obj.get("mediaType") or media_type), config, layers, annotations, subject)


@dataclass(frozen=True)
class Index:
    """An image index (image-spec ``image-index.md``), such as a layout's ``index.json``, with its bytes.

    Attributes:
        raw: the exact bytes.
        manifests: the entries, in order.
        annotations: the index's own annotations.
        subject: the manifest this index refers to (an OCI 1.1 referrer), or None.
    """

    raw: bytes
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None

    @property
    def digest(self) -> Digest:
        """The sha256 of :attr:`raw`."""
        return Digest.of_bytes(self.raw)

    @classmethod
    def build(cls, manifests: Sequence[Descriptor], annotations: Mapping[str, str] | None = None) -> Index:
        """Serialise an OCI image index (schemaVersion 2) deterministically."""
        obj: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": mediatype.IMAGE_INDEX,
            "manifests": [m.to_json() for m in manifests],
        }
        if annotations:
            obj["annotations"] = dict(annotations)
        return cls(dump_json(obj), tuple(manifests), dict(annotations or {}))

    @classmethod
    def parse(cls, raw: bytes, where: str) -> Index:
        """Parse image index bytes read from ``where``.

        Raises:
            FormatError: invalid JSON or a ``manifests`` entry that is not a descriptor.
        """
        obj = load_json(raw, where)
        if not isinstance(obj, Mapping) or not isinstance(obj.get("manifests"), list):
            raise FormatError(f"{where}: image index is not an object with a 'manifests' list")
        manifests = tuple(Descriptor.from_json(m, where) for m in obj["manifests"])
        return cls(raw, manifests, dict(obj.get("annotations") or {}), _subject(obj, where))


def _subject(obj: Mapping[str, Any], where: str) -> Descriptor | None:
    """The ``subject`` descriptor of a manifest or index (image-spec ``manifest.md`` "subject"), or None."""
    value = obj.get("subject")
    return None if value is None else Descriptor.from_json(value, f"{where}: subject")


def document_media_type(raw: bytes, where: str) -> str:
    """The media type of a manifest or index: its ``mediaType``, else inferred (``manifests`` means an index).

    Docker's schema 2 documents always carry ``mediaType``; an OCI one may leave it out
    (image-spec ``manifest.md``, ``image-index.md``), and then only an index has ``manifests``.

    Raises:
        FormatError: the bytes are not a JSON object.
    """
    obj = load_json(raw, where)
    if not isinstance(obj, Mapping):
        raise FormatError(f"{where}: not a JSON manifest")
    declared = obj.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    return mediatype.IMAGE_INDEX if "manifests" in obj else mediatype.IMAGE_MANIFEST
