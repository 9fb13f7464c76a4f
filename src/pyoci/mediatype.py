"""Media types (image-spec ``media-types.md``) and the compression each layer type implies."""

from __future__ import annotations

from pyoci.compression import Compression

OCI_LAYOUT_VERSION = "1.0.0"

IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = frozenset({IMAGE_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({IMAGE_INDEX, DOCKER_MANIFEST_LIST})

_LAYER_BY_COMPRESSION = {
    Compression.NONE: LAYER,
    Compression.GZIP: LAYER_GZIP,
    Compression.ZSTD: LAYER_ZSTD,
}
_COMPRESSION_BY_LAYER = {
    LAYER: Compression.NONE,
    LAYER_GZIP: Compression.GZIP,
    LAYER_ZSTD: Compression.ZSTD,
    DOCKER_LAYER_GZIP: Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
}


def layer_media_type(compression: Compression) -> str:
    """Return the OCI layer media type for bytes compressed with ``compression``."""
    return _LAYER_BY_COMPRESSION[compression]


def layer_compression(media_type: str) -> Compression | None:
    """Return the compression a layer media type declares, or None for a non-layer type."""
    return _COMPRESSION_BY_LAYER.get(media_type)
