"""pyoci: build, convert, merge and publish OCI container images in pure Python, with no daemon.

The public API is re-exported here; see each module for details.
"""

from pyoci.convert import ConvertedImage, ConvertResult, convert
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import (
    ArchiveError,
    AuthError,
    DiffIDMismatchError,
    DigestMismatchError,
    FormatError,
    LayoutError,
    PlatformConflictError,
    PushError,
    PyociError,
    TagError,
)
from pyoci.gc import Garbage, GcResult, UntagResult, gc, untag
from pyoci.inspect import InspectedImage, InspectResult, PlatformImage, inspect
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import Compression
from pyoci.merge import MergeResult, MergeSource, merge
from pyoci.platform import Platform
from pyoci.push import PushResult, RegistryOptions, push
from pyoci.transcode import LayerOptions
from pyoci.verify import VerifyReport, verify

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "AuthError",
    "Compression",
    "ConvertResult",
    "ConvertedImage",
    "Descriptor",
    "DiffIDMismatchError",
    "Digest",
    "DigestMismatchError",
    "FormatError",
    "Garbage",
    "GcResult",
    "ImageLayout",
    "InspectResult",
    "InspectedImage",
    "LayerOptions",
    "LayoutError",
    "MergeResult",
    "MergeSource",
    "Platform",
    "PlatformConflictError",
    "PlatformImage",
    "PushError",
    "PushResult",
    "PyociError",
    "RegistryOptions",
    "TagError",
    "UntagResult",
    "VerifyReport",
    "__version__",
    "convert",
    "gc",
    "inspect",
    "merge",
    "push",
    "untag",
    "verify",
]
