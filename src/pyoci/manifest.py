"""Image manifests, image indexes and the few image-config fields pyoci needs; raw bytes kept.

Documents pyoci writes are serialised compactly with keys in the order of the image-spec's Go types
(``manifest.md``, ``image-index.md``), so the same content always gives the same bytes. Documents
read keep their exact bytes beside the parsed form: digests and sizes always come from the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyoci import mediatype
from pyoci.descriptor import Descriptor, is_media_type
from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.jsonio import dump_json, load_json
from pyoci.platform import Platform

MAX_INDEX_DEPTH = 8
"""Image indexes nested deeper than this are refused (real images nest one or two levels)."""


@dataclass(frozen=True)
class _Kind:
    """A type the OCI config schema (``config-schema.json``) gives a field."""

    description: str
    check: Callable[[Any], bool]
    nullable: bool = False


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)


def _is_date_time(value: Any) -> bool:
    """True for an RFC 3339 date-time that exists, as Go's ``time.Time`` reads it (``T``, a zone, no leap second)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _map_of(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and all(isinstance(item, kind) for item in value.values())


_STRING = _Kind("a string", lambda value: isinstance(value, str))
_BOOLEAN = _Kind("a boolean", lambda value: isinstance(value, bool))
_OBJECT = _Kind("an object", lambda value: isinstance(value, dict))
_ARRAY = _Kind("an array", lambda value: isinstance(value, list))
_STRINGS = _Kind("an array of strings", _strings)
_DATE_TIME = _Kind("an RFC 3339 date-time", _is_date_time)
_OBJECTS_BY_NAME = _Kind("an object of objects", _map_of(dict))

_CONFIG_FIELDS = {
    "created": _DATE_TIME,
    "author": _STRING,
    "architecture": _STRING,
    "os": _STRING,
    "variant": _STRING,
    "os.version": _STRING,
    "os.features": _STRINGS,
    "config": _OBJECT,
    "rootfs": _OBJECT,
    "history": _ARRAY,
}
_RUN_FIELDS = {
    "User": _STRING,
    "ExposedPorts": _OBJECTS_BY_NAME,
    "Env": _STRINGS,
    "Entrypoint": _Kind(_STRINGS.description, _strings, nullable=True),
    "Cmd": _Kind(_STRINGS.description, _strings, nullable=True),
    "Volumes": _Kind(_OBJECTS_BY_NAME.description, _map_of(dict), nullable=True),
    "WorkingDir": _STRING,
    "Labels": _Kind("an object of strings", _map_of(str), nullable=True),
    "StopSignal": _STRING,
    "ArgsEscaped": _BOOLEAN,
}
_ROOTFS_FIELDS = {"diff_ids": _STRINGS, "type": _STRING}
_HISTORY_FIELDS = {
    "created": _DATE_TIME,
    "author": _STRING,
    "created_by": _STRING,
    "comment": _STRING,
    "empty_layer": _BOOLEAN,
}


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:40])
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"


def _check_fields(
    obj: Mapping[str, Any], fields: Mapping[str, _Kind], path: str, where: str, warnings: list[str]
) -> None:
    """Refuse a field of ``obj`` whose value has the wrong type; note a null the schema does not allow.

    Go reads a null as an absent field (Docker writes ``"Env": null``), so such a config is kept,
    with a warning appended to ``warnings``.

    Raises:
        FormatError: a field of the wrong type (the message names it and ``where``).
    """
    for key, kind in fields.items():
        value = obj.get(key)
        if value is None:
            if key in obj and not kind.nullable:
                warnings.append(f"{where}: image config '{path}{key}' is null, which the OCI schema does not allow")
        elif not kind.check(value):
            found = _json_type(value)
            raise FormatError(f"{where}: image config '{path}{key}' must be {kind.description}, not {found}")


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
        warnings: departures from the OCI config schema that Go tools accept and that are kept
            (a null field, a missing ``rootfs.diff_ids``), one message each.
    """

    raw: bytes
    platform: Platform
    diff_ids: tuple[Digest, ...]
    created: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def digest(self) -> Digest:
        """The sha256 of :attr:`raw`."""
        return Digest.of_bytes(self.raw)

    @classmethod
    def parse(cls, raw: bytes, where: str) -> ImageConfig:
        """Parse config bytes read from ``where``, checking the types ``config-schema.json`` gives.

        A config that Go's ``encoding/json`` (skopeo, containerd, Docker) could not read, or whose
        fields have types other than the schema's, is refused: the bytes are kept verbatim (their
        digest is the image ID), so they must be right as they are. A null where the schema wants a
        value, and a missing ``rootfs.diff_ids`` (Docker leaves it out for an image without layers),
        are read as absent and listed in :attr:`warnings`.

        Raises:
            FormatError: not a UTF-8 JSON object (see :func:`pyoci.jsonio.load_json`); a missing
                ``os``/``architecture``; a ``rootfs`` that is not ``{"type": "layers", "diff_ids":
                [...]}`` of valid digests; a field of the wrong type; a ``created`` that is not an RFC
                3339 date-time.
        """
        obj = load_json(raw, where)
        if not isinstance(obj, Mapping):
            raise FormatError(f"{where}: image config is not a JSON object")
        warnings: list[str] = []
        _check_fields(obj, _CONFIG_FIELDS, "", where, warnings)
        inner = obj.get("config") or {}
        _check_fields(inner, _RUN_FIELDS, "config.", where, warnings)
        for position, entry in enumerate(obj.get("history") or ()):
            if not isinstance(entry, Mapping):
                raise FormatError(f"{where}: image config 'history[{position}]' must be an object")
            _check_fields(entry, _HISTORY_FIELDS, f"history[{position}].", where, warnings)
        try:
            platform = Platform.from_config(obj)
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from exc
        rootfs = obj.get("rootfs")
        if not isinstance(rootfs, Mapping) or rootfs.get("type") != "layers":
            raise FormatError(f"{where}: image config 'rootfs.type' is not 'layers'")
        _check_fields(rootfs, _ROOTFS_FIELDS, "rootfs.", where, warnings)
        if "diff_ids" not in rootfs:
            warnings.append(f"{where}: image config 'rootfs.diff_ids' is missing, which the OCI schema requires")
        try:
            diff_ids = tuple(Digest.parse(d) for d in rootfs.get("diff_ids") or ())
        except FormatError as exc:
            raise FormatError(f"{where}: rootfs.diff_ids: {exc}") from exc
        return cls(
            raw=raw,
            platform=platform,
            diff_ids=diff_ids,
            created=obj.get("created") or "",
            entrypoint=tuple(inner.get("Entrypoint") or ()),
            cmd=tuple(inner.get("Cmd") or ()),
            warnings=tuple(warnings),
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
            FormatError: invalid JSON, a missing or invalid ``config`` or ``layers``, or a header
                field the schema refuses (see :func:`_check_header`).
        """
        obj = load_json(raw, where)
        if not isinstance(obj, Mapping) or not isinstance(obj.get("layers"), list):
            raise FormatError(f"{where}: image manifest is not an object with a 'layers' list")
        _check_header(obj, where)
        config = Descriptor.from_json(obj.get("config"), where)
        layers = tuple(Descriptor.from_json(layer, where) for layer in obj.get("layers") or ())
        subject = _subject(obj, where)
        annotations = _annotations(obj, where)
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
            FormatError: invalid JSON, a ``manifests`` entry that is not a descriptor, or a header
                field the schema refuses (see :func:`_check_header`).
        """
        obj = load_json(raw, where)
        if not isinstance(obj, Mapping) or not isinstance(obj.get("manifests"), list):
            raise FormatError(f"{where}: image index is not an object with a 'manifests' list")
        _check_header(obj, where)
        manifests = tuple(Descriptor.from_json(m, where) for m in obj["manifests"])
        return cls(raw, manifests, _annotations(obj, where), _subject(obj, where))


def _check_header(obj: Mapping[str, Any], where: str) -> None:
    """The fields a manifest and an index share: ``schemaVersion`` 2, and media type strings.

    image-spec ``manifest.md`` and ``image-index.md`` (and Docker's schema 2): ``schemaVersion``
    MUST be 2; ``mediaType`` and ``artifactType``, when present, are media types.

    Raises:
        FormatError: one of them is missing or of the wrong type or form.
    """
    version = obj.get("schemaVersion")
    if type(version) is not int or version != 2:
        raise FormatError(f"{where}: 'schemaVersion' must be the integer 2")
    for key in ("mediaType", "artifactType"):
        if key in obj and not is_media_type(obj[key]):
            raise FormatError(f"{where}: '{key}' must be a media type string (type/subtype)")


def _annotations(obj: Mapping[str, Any], where: str) -> dict[str, str]:
    """The ``annotations`` of a manifest or index (image-spec ``annotations.md``: a map of strings).

    Raises:
        FormatError: it is not a map of strings to strings.
    """
    value = obj.get("annotations", {})
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise FormatError(f"{where}: 'annotations' must map strings to strings")
    return dict(value)


def _subject(obj: Mapping[str, Any], where: str) -> Descriptor | None:
    """The ``subject`` descriptor of a manifest or index (image-spec ``manifest.md`` "subject"), or None."""
    if "subject" not in obj:
        return None
    return Descriptor.from_json(obj["subject"], f"{where}: subject")


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
