"""Content descriptors (image-spec ``descriptor.md``) to and from JSON with the spec's key names."""

from __future__ import annotations

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
            FormatError: a field is missing or of the wrong type (descriptor-schema types).
        """
        if not isinstance(obj, Mapping):
            raise FormatError(f"{where}: descriptor is not a JSON object")
        media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise FormatError(f"{where}: descriptor needs string 'mediaType' and 'digest'")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise FormatError(f"{where}: descriptor {digest}: 'size' must be a non-negative integer")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, Mapping) or not all(isinstance(v, str) for v in annotations.values()):
            raise FormatError(f"{where}: descriptor {digest}: 'annotations' must map strings to strings")
        raw_platform = obj.get("platform")
        if raw_platform is not None and not isinstance(raw_platform, Mapping):
            raise FormatError(f"{where}: descriptor {digest}: 'platform' is not an object")
        urls, artifact_type = obj.get("urls") or [], obj.get("artifactType") or ""
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise FormatError(f"{where}: descriptor {digest}: 'urls' must be an array of strings")
        if not isinstance(artifact_type, str):
            raise FormatError(f"{where}: descriptor {digest}: 'artifactType' must be a string")
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
            artifact_type=artifact_type,
        )
