"""pyoci: build, convert, merge and publish OCI container images in pure Python, with no daemon.

The public API is re-exported here; see each module for details.
"""

from pyoci.compression import Compression
from pyoci.convert import ConvertedImage, ConvertResult, convert
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import (
    ArchiveError,
    DiffIDMismatchError,
    DigestMismatchError,
    FormatError,
    LayoutError,
    PyociError,
)
from pyoci.layout.store import ImageLayout
from pyoci.pipeline import LayerOptions
from pyoci.platform import Platform
from pyoci.verify import VerifyReport, verify

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "Compression",
    "ConvertResult",
    "ConvertedImage",
    "Descriptor",
    "DiffIDMismatchError",
    "Digest",
    "DigestMismatchError",
    "FormatError",
    "ImageLayout",
    "LayerOptions",
    "LayoutError",
    "Platform",
    "PyociError",
    "VerifyReport",
    "__version__",
    "convert",
    "verify",
]
