"""Media types (image-spec ``media-types.md``), the compression each layer type implies, and codec levels.

No codec is imported here: this module is a value module that every layer can use cheaply.
"""

from __future__ import annotations

import enum

from pyoci.errors import FormatError


class Compression(enum.Enum):
    """The compression of a byte stream (a layer blob or a whole archive)."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"

    @property
    def levels(self) -> range:
        """The levels this codec accepts (empty for NONE)."""
        return _LEVELS[self]

    @property
    def default_level(self) -> int | None:
        """The level used when none is given (None for NONE)."""
        return _DEFAULT_LEVEL[self]


_LEVELS = {Compression.NONE: range(0), Compression.GZIP: range(1, 13), Compression.ZSTD: range(1, 20)}
_DEFAULT_LEVEL = {Compression.NONE: None, Compression.GZIP: 2, Compression.ZSTD: 3}


def check_level(compression: Compression, level: int | None) -> int | None:
    """Return ``level`` (or the codec's default when None) after checking it is on the codec's scale.

    Raises:
        FormatError: the level is outside the codec's range, or given for NONE.
    """
    if level is None:
        return compression.default_level
    if level not in compression.levels:
        if compression is Compression.NONE:
            raise FormatError("--level: no level applies to uncompressed output")
        levels = compression.levels
        raise FormatError(f"--level {level}: {compression.value} levels are {levels.start}..{levels.stop - 1}")
    return level


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
CONFIG_TYPES = frozenset({IMAGE_CONFIG, DOCKER_CONFIG})
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
