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
    heavy = f"sorted(m for m, x in sys.modules.items() if x and m.split('.')[0] in {HEAVY!r})"
    probe = f"{code}\nimport sys\nprint({heavy})"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout.decode()
    assert out.strip().splitlines()[-1] == "[]"


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m, x in sys.modules.items() if x is not None))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout.decode()
    return set(eval(out.strip().splitlines()[-1]))  # noqa: S307 - our own probe's output


def test_help_loads_no_command() -> None:
    loaded = loaded_after(CLI.format(args=["--help"]))
    commands = {m for m in loaded if m.startswith(("pyoci.cli.", "pyoci.commands."))}
    assert commands == {"pyoci.cli.main"}


def test_help_summaries_are_the_commands_own() -> None:
    import click

    from pyoci.cli.main import COMMANDS, main

    ctx = click.Context(main)
    for name, (_, summary) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.get_short_help_str(1000) == summary, name


def test_pushing_a_layout_loads_no_codec_and_no_http_command_line() -> None:
    loaded = loaded_after(CLI.format(args=["--version"]) + "\nimport pyoci.commands.push, pyoci.targets.registry")
    assert "httpx" in loaded
    # (httpx itself imports zstandard, for zstd-encoded answers)
    assert not loaded & {"pyoci.compression", "deflate", "isal", "httpx._main", "rich", "pygments"}


def test_lazy_exports_resolve_to_the_real_objects() -> None:
    from pyoci.commands.convert import convert
    from pyoci.mediatype import LayerOptions

    assert pyoci.convert is convert and pyoci.LayerOptions is LayerOptions
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pyoci.nothing  # noqa: B018
