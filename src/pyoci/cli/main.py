"""Entry point: the ``pyoci`` click group and its single error boundary."""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any

import click

from pyoci.errors import PyociError, one_line
from pyoci.version import __version__

COMMANDS = {
    "build": "pyoci.cli.build:build_command",
    "convert": "pyoci.cli.convert:convert_command",
    "copy": "pyoci.cli.copy:copy_command",
    "gc": "pyoci.cli.images:gc_command",
    "inspect": "pyoci.cli.images:inspect_command",
    "merge": "pyoci.cli.images:merge_command",
    "push": "pyoci.cli.push:push_command",
    "sync": "pyoci.cli.sync:sync_command",
    "untag": "pyoci.cli.images:untag_command",
    "verify": "pyoci.cli.verify:verify_command",
}
"""Each command and where it lives: a command's module is imported only when it is asked for."""


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
        module, _, name = COMMANDS[cmd_name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command

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
