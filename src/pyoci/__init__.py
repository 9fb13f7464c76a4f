"""pyoci: build, convert, merge and publish OCI container images in pure Python, with no daemon.

The public API is re-exported here; see each module for details.
"""

from pyoci.archive.plan import ConvertedImage
from pyoci.commands.build import BuildResult, build
from pyoci.commands.convert import ConvertResult, convert
from pyoci.commands.copy import CopyResult, copy
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
    PyociError,
    RegistryError,
    TagError,
)
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import Compression
from pyoci.platform import Platform
from pyoci.targets.client import RegistryOptions
from pyoci.transcode import LayerOptions
from pyoci.version import __version__

__all__ = [
    "ArchiveError",
    "AuthError",
    "BuildResult",
    "Compression",
    "ConvertResult",
    "ConvertedImage",
    "CopyResult",
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
    "RegistryError",
    "PushResult",
    "PyociError",
    "RegistryOptions",
    "TagError",
    "UntagResult",
    "VerifyReport",
    "__version__",
    "build",
    "convert",
    "copy",
    "gc",
    "inspect",
    "merge",
    "push",
    "untag",
    "verify",
]
