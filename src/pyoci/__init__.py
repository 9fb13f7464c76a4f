"""pyoci: build, convert, merge and publish OCI container images in pure Python, with no daemon.

The public API is re-exported here; see each module for details.
"""

from pyoci.archive.plan import ConvertedImage
from pyoci.commands.build import BuildResult, build
from pyoci.commands.convert import ConvertResult, convert
from pyoci.commands.gc import Garbage, GcResult, UntagResult, gc, untag
from pyoci.commands.inspect import InspectedImage, InspectResult, PlatformImage, inspect
from pyoci.commands.merge import MergeResult, MergeSource, merge
from pyoci.commands.push import PushResult, push
from pyoci.commands.verify import VerifyReport, verify
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
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import Compression
from pyoci.platform import Platform
from pyoci.targets.registry import RegistryOptions
from pyoci.transcode import LayerOptions

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "AuthError",
    "BuildResult",
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
    "build",
    "convert",
    "gc",
    "inspect",
    "merge",
    "push",
    "untag",
    "verify",
]
