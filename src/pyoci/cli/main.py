"""Entry point: the ``pyoci`` click group and its single error boundary."""

from __future__ import annotations

import gc
import importlib
import signal
import sys
from typing import Any

import click

from pyoci.errors import PyociError, one_line
from pyoci.version import __version__

COMMANDS = {
    "build": (
        "pyoci.cli.build:build_command",
        "Build a multi-platform image from files (static binaries), reproducibly.",
    ),
    "convert": ("pyoci.cli.convert:convert_command", "Convert a docker-archive into an OCI image layout."),
    "copy": ("pyoci.cli.copy:copy_command", "Copy an image from any source to any destination (skopeo's transports)."),
    "gc": ("pyoci.cli.images:gc_command", "Remove what no kept tag uses from a layout, a static tree or a registry."),
    "inspect": (
        "pyoci.cli.images:inspect_command",
        "Summarise an image: in a layout, a docker-archive, a registry or a static tree.",
    ),
    "merge": ("pyoci.cli.images:merge_command", "Merge per-platform images into one multi-platform image."),
    "push": ("pyoci.cli.push:push_command", "Push an image to registries and static registry trees."),
    "sync": ("pyoci.cli.sync:sync_command", "Publish a static registry tree to an S3-compatible bucket."),
    "untag": (
        "pyoci.cli.images:untag_command",
        "Remove a tag from a layout's index.json (LAYOUT:TAG or oci:LAYOUT:TAG).",
    ),
    "verify": ("pyoci.cli.verify:verify_command", "Check a layout or a static tree and report every problem."),
}
"""Each command: where it lives (imported only when the command is asked for) and its one-line summary
for ``pyoci --help``, which thus imports no command (a test pins each summary to the command's own)."""

# httpx imports its own command-line tool (rich, pygments: 30-50 ms) whenever those are installed;
# pyoci never runs it, so httpx gets its stand-in for a missing CLI instead
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every cleanup runs as for Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


class _Group(click.Group):
    """Loads commands on demand; turns every :class:`PyociError` into one line on stderr and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, name = COMMANDS[cmd_name][0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in sorted(COMMANDS.items())])

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run as click does, but a usage error is one line too: ``pyoci: error: ... (see 'pyoci CMD -h')``, exit 2."""
        kwargs["standalone_mode"] = False
        try:
            status = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # the help itself, as click shows it
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
            click.echo(f"pyoci: error: {one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"pyoci: error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("pyoci: interrupted", err=True)
            sys.exit(130)
        sys.exit(status if isinstance(status, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        # CI cancellation, timeout(1) and docker stop send SIGTERM: clean up temporary files as for SIGINT
        signal.signal(signal.SIGTERM, _terminate)
        try:
            return super().invoke(ctx)
        except PyociError as exc:
            click.echo(f"pyoci: error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:  # a full disk or a permission problem met below the library's checks
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"pyoci: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("pyoci: interrupted", err=True)
            sys.exit(130)
        except _Terminated:
            click.echo("pyoci: terminated", err=True)
            sys.exit(143)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, prog_name="pyoci")
def main() -> None:
    """Build, convert, merge, copy and publish OCI container images without a daemon."""


def run() -> None:
    """The ``pyoci`` program (the installed script and ``python -m pyoci``): :func:`main`, then the exit.

    The process ends when :func:`main` is done: everything it made is frozen out of the garbage
    collector first, so that the interpreter's last collections skip it (25-30 ms of a 0.25 s push).
    """
    try:
        main(prog_name="pyoci")
    finally:
        gc.freeze()
