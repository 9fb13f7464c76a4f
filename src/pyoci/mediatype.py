"""Media types (image-spec ``media-types.md``), the compression each layer type implies, and codec levels.

No codec is imported here: this module is a value module that every layer can use cheaply.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

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
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
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


def default_threads() -> int:
    """The number of CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) or 1


@dataclass(frozen=True)
class LayerOptions:
    """How layers are written.

    Attributes:
        compression: output codec; default gzip.
        level: codec level on its own scale (gzip 1-12, zstd 1-19); None for the default.
        threads: codec worker threads; 0 (the default) for all cores; the bytes do not depend on it.
        recompress: re-compress a layer that already arrives in the output codec.
    """

    compression: Compression = Compression.GZIP
    level: int | None = None
    threads: int = 0
    recompress: bool = False

    def __post_init__(self) -> None:
        check_level(self.compression, self.level)
        if self.threads < 0:
            raise FormatError(f"--threads {self.threads}: expected 0 (all cores) or more")
        if self.threads == 0:
            object.__setattr__(self, "threads", default_threads())

    def keeps(self, input_compression: Compression) -> bool:
        """True when a layer arriving with ``input_compression`` is copied byte for byte."""
        return (
            input_compression is self.compression
            and input_compression is not Compression.NONE
            and self.level is None
            and not self.recompress
        )
