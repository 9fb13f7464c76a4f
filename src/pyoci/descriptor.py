"""Content descriptors (image-spec ``descriptor.md``) to and from JSON with the spec's key names."""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.platform import Platform

REF_NAME = "org.opencontainers.image.ref.name"
"""Annotation naming a tag in an image layout's index.json (image-spec ``annotations.md``)."""

CONTAINERD_IMAGE_NAME = "io.containerd.image.name"
"""Annotation holding the full image name, as Docker and containerd write it into index.json."""

MAX_SIZE = (1 << 63) - 1
"""Largest descriptor ``size``: a signed 64-bit integer (image-spec ``descriptor.md``, schema ``int64``)."""

_OPTIONAL = ("urls", "annotations", "platform", "artifactType", "data")
"""Descriptor fields that may be left out; the schema types each, so none may be null."""
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")


def is_media_type(value: Any) -> bool:
    """True for a string of the media type form the image-spec's schemas require (RFC 6838 ``type/subtype``)."""
    return isinstance(value, str) and _MEDIA_TYPE.fullmatch(value) is not None


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest and size in bytes, plus optional fields.

    Attributes:
        media_type: the referenced content's media type.
        digest: the digest of the referenced bytes.
        size: the number of referenced bytes (>= 0).
        annotations: string-to-string annotations (empty when none).
        platform: for entries of an image index, the platform of the manifest.
        urls: alternative download locations (kept as read).
        artifact_type: the ``artifactType`` field (empty when none).
    """

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise FormatError(f"descriptor {self.digest}: negative size {self.size}")

    @property
    def ref_name(self) -> str | None:
        """The ``org.opencontainers.image.ref.name`` annotation, or None."""
        return self.annotations.get(REF_NAME)

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        """Return a copy with ``annotations`` in place of the current ones."""
        return replace(self, annotations=dict(annotations))

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object in the field order of the image-spec's Go types; empty fields left out."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Descriptor:
        """Parse a descriptor object read from ``where`` (a file name, used in error messages).

        Raises:
            FormatError: a field is missing or of the wrong type or form (the image-spec's
                ``content-descriptor.json`` schema: media types, digest, int64 size, string annotations).
        """
        if not isinstance(obj, Mapping):
            raise FormatError(f"{where}: descriptor is not a JSON object")
        media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise FormatError(f"{where}: descriptor needs string 'mediaType' and 'digest'")
        if not is_media_type(media_type):
            raise FormatError(f"{where}: descriptor {digest}: mediaType {media_type!r} is not of the form type/subtype")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
            raise FormatError(f"{where}: descriptor {digest}: 'size' must be an integer from 0 to 2^63-1")
        for key in _OPTIONAL:
            if key in obj and obj[key] is None:
                raise FormatError(f"{where}: descriptor {digest}: '{key}' is null (leave it out instead)")
        annotations = obj.get("annotations", {})
        if not isinstance(annotations, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise FormatError(f"{where}: descriptor {digest}: 'annotations' must map strings to strings")
        raw_platform = obj.get("platform")
        if raw_platform is not None and not isinstance(raw_platform, Mapping):
            raise FormatError(f"{where}: descriptor {digest}: 'platform' is not an object")
        urls, artifact_type = obj.get("urls", []), obj.get("artifactType")
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise FormatError(f"{where}: descriptor {digest}: 'urls' must be an array of strings")
        if artifact_type is not None and not is_media_type(artifact_type):
            raise FormatError(f"{where}: descriptor {digest}: 'artifactType' must be a media type string")
        if not _is_base64(obj.get("data", "")):
            raise FormatError(f"{where}: descriptor {digest}: 'data' must be a base64 string")
        try:
            parsed_digest = Digest.parse(digest)
            platform = Platform.from_config(raw_platform) if raw_platform is not None else None
        except FormatError as exc:
            raise FormatError(f"{where}: {exc}") from exc
        return cls(
            media_type=media_type,
            digest=parsed_digest,
            size=size,
            annotations=dict(annotations),
            platform=platform,
            urls=tuple(urls),
            artifact_type=artifact_type or "",
        )


def _is_base64(value: Any) -> bool:
    """True for a string of base64 (RFC 4648 section 4, padded), as the descriptor ``data`` field holds."""
    if not isinstance(value, str):
        return False
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True
