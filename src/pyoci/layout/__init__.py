"""The OCI image layout store shared by every command."""

from pyoci.layout.store import BlobWriter, ImageLayout, writing

__all__ = ["BlobWriter", "ImageLayout", "writing"]
