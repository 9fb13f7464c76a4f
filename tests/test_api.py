"""The public API: what ``import pyoci`` offers is pinned, and every name has a docstring."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import pyoci

PUBLIC = {
    "ArchiveError", "AuthError", "BlobNotFoundError", "BuildResult", "Compression", "ConvertResult",
    "ConvertedImage", "CopyResult", "Descriptor", "DiffIDMismatchError", "Digest", "DigestMismatchError",
    "FormatError", "Garbage", "GcResult",
    "ImageLayout", "InspectResult", "InspectedImage", "LayerOptions", "LayoutError", "MergeResult",
    "MergeSource", "Platform", "PlatformConflictError", "PlatformImage", "RegistryError", "PushResult",
    "PyociError", "RegistryOptions", "StreamNotConsumedError", "TagError", "UntagResult", "VerifyReport", "__version__",
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


CLI = (
    "import sys\nsys.argv = ['pyoci', *{args!r}]\nfrom pyoci.cli.main import main\n"
    "try:\n main()\nexcept SystemExit:\n pass"
)
HEAVY = ("httpx", "httpcore", "ssl", "zstandard", "deflate", "isal", "jsonschema", "referencing", "tqdm", "boto3")
"""Libraries a command loads only when it uses them (start-up time: benchmarks/README.md)."""


@pytest.mark.parametrize(
    "code",
    [
        "import pyoci",
        "import pyoci; pyoci.Platform; pyoci.Descriptor; pyoci.LayerOptions; pyoci.RegistryOptions",
        CLI.format(args=["--help"]),
        CLI.format(args=["push", "--help"]),
        CLI.format(args=["copy", "--help"]),
    ],
)
def test_start_up_loads_no_heavy_library(code: str) -> None:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout.decode()
    assert out.strip().splitlines()[-1] == "[]"


def test_lazy_exports_resolve_to_the_real_objects() -> None:
    from pyoci.commands.convert import convert
    from pyoci.mediatype import LayerOptions

    assert pyoci.convert is convert and pyoci.LayerOptions is LayerOptions
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pyoci.nothing  # noqa: B018
