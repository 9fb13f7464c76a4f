"""pyoci: build, convert, merge, copy and publish OCI container images in pure Python, with no daemon.

The public API is re-exported here; see each module for details. ``import pyoci`` is cheap: each name
is imported from its module on first use (PEP 562), so a program that only converts never loads the
registry client, and one that only pushes never loads the codecs it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pyoci.errors import (
    ArchiveError,
    AuthError,
    BlobNotFoundError,
    DiffIDMismatchError,
    DigestMismatchError,
    FormatError,
    LayoutError,
    PlatformConflictError,
    PyociError,
    RegistryError,
    StreamNotConsumedError,
    TagError,
)
from pyoci.version import __version__

if TYPE_CHECKING:
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
    from pyoci.layout.store import ImageLayout
    from pyoci.mediatype import Compression, LayerOptions
    from pyoci.platform import Platform
    from pyoci.targets.options import RegistryOptions

_LAZY = {
    "BuildResult": "pyoci.commands.build",
    "Compression": "pyoci.mediatype",
    "ConvertResult": "pyoci.commands.convert",
    "ConvertedImage": "pyoci.archive.plan",
    "CopyResult": "pyoci.commands.copy",
    "Descriptor": "pyoci.descriptor",
    "Digest": "pyoci.digest",
    "Garbage": "pyoci.commands.gc",
    "GcResult": "pyoci.commands.gc",
    "ImageLayout": "pyoci.layout.store",
    "InspectResult": "pyoci.commands.inspect",
    "InspectedImage": "pyoci.commands.inspect",
    "LayerOptions": "pyoci.mediatype",
    "MergeResult": "pyoci.commands.merge",
    "MergeSource": "pyoci.commands.merge",
    "Platform": "pyoci.platform",
    "PlatformImage": "pyoci.commands.inspect",
    "PushResult": "pyoci.commands.push",
    "RegistryOptions": "pyoci.targets.options",
    "UntagResult": "pyoci.commands.gc",
    "VerifyReport": "pyoci.commands.verify",
    "build": "pyoci.commands.build",
    "convert": "pyoci.commands.convert",
    "copy": "pyoci.commands.copy",
    "gc": "pyoci.commands.gc",
    "inspect": "pyoci.commands.inspect",
    "merge": "pyoci.commands.merge",
    "push": "pyoci.commands.push",
    "untag": "pyoci.commands.gc",
    "verify": "pyoci.commands.verify",
}
"""Each lazily exported name and the module that defines it."""


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use, and keep it (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyoci' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "ArchiveError",
    "AuthError",
    "BlobNotFoundError",
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
    "StreamNotConsumedError",
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
