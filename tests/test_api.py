"""The public API: what ``import pyoci`` offers is pinned, and every name has a docstring."""

from __future__ import annotations

import inspect

import pyoci

PUBLIC = {
    "ArchiveError", "AuthError", "BuildResult", "Compression", "ConvertResult", "ConvertedImage", "CopyResult",
    "Descriptor",
    "DiffIDMismatchError", "Digest", "DigestMismatchError", "FormatError", "Garbage", "GcResult",
    "ImageLayout", "InspectResult", "InspectedImage", "LayerOptions", "LayoutError", "MergeResult",
    "MergeSource", "Platform", "PlatformConflictError", "PlatformImage", "RegistryError", "PushResult",
    "PyociError", "RegistryOptions", "TagError", "UntagResult", "VerifyReport", "__version__",
    "build", "convert", "copy", "gc", "inspect", "merge", "push", "untag", "verify",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(pyoci.__all__) == PUBLIC
    for name in pyoci.__all__:
        assert hasattr(pyoci, name), name


def test_public_names_are_documented() -> None:
    for name in PUBLIC - {"__version__"}:
        obj = getattr(pyoci, name)
        assert inspect.getdoc(obj), name


def test_errors_share_one_base() -> None:
    errors = [getattr(pyoci, n) for n in PUBLIC if n.endswith("Error")]
    assert all(issubclass(e, pyoci.PyociError) for e in errors)
