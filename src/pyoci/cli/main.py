"""Entry point: the ``pyoci`` click group and its single error boundary."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from pyoci.cli.options import emit_json, layer_options
from pyoci.cli.progress import make_progress
from pyoci.commands.convert import ConvertResult, convert
from pyoci.commands.verify import verify
from pyoci.errors import PyociError
from pyoci.transcode import LayerOptions


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every cleanup runs as for Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


class _Group(click.Group):
    """Turns every :class:`PyociError` into one line on stderr and exit status 1."""

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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pyoci", prog_name="pyoci")
def main() -> None:
    """Convert, verify, merge and publish OCI container images without a daemon."""


def _convert_json(result: ConvertResult) -> dict[str, Any]:
    return {
        "destination": str(result.destination),
        "images": [
            {
                "manifest": image.manifest.to_json(),
                "config": image.config.to_json(),
                "layers": [layer.to_json() for layer in image.layers],
                "diff_ids": [str(d) for d in image.diff_ids],
                "tags": list(image.tags),
                "repo_tags": list(image.source.repo_tags),
                "warnings": list(image.warnings),
            }
            for image in result.images
        ],
    }


@main.command("convert")
@click.argument("source")
@click.argument("destination")
@click.option("--tag", help="Tag (ref.name) for the image when DESTINATION has none.")
@click.option("--all", "all_images", is_flag=True, help="Convert every image in the archive.")
@click.option(
    "--platform",
    metavar="OS/ARCH[/VARIANT]",
    help="Platform to record for the image when its config lacks or misstates the variant; os and architecture "
    "must agree with the config. Goes into the index.json entry; the config is kept byte for byte.",
)
@layer_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable result.")
def convert_command(
    source: str,
    destination: str,
    tag: str | None,
    all_images: bool,
    platform: str | None,
    options: LayerOptions,
    quiet: bool,
    as_json: bool,
) -> None:
    """Convert a docker-archive into an OCI image layout.

    SOURCE is a docker-archive file (plain, gzip or zstd), '-' for stdin, or
    docker-archive:PATH[:NAME:TAG|:@N]. DESTINATION is a directory, oci:DIR[:TAG] or
    oci-archive:FILE[:TAG]. Prints the manifest digest of each image written.
    """
    result = convert(
        source,
        destination,
        tag=tag,
        all_images=all_images,
        platform=platform,
        options=options,
        progress=make_progress(quiet),
    )
    for warning in (warning for image in result.images for warning in image.warnings):
        click.echo(f"pyoci: warning: {warning}", err=True)
    if as_json:
        emit_json(_convert_json(result))
    else:
        for image in result.images:
            click.echo(str(image.manifest.digest))


@main.command("verify")
@click.argument("layout")
@click.option(
    "--schemas", type=click.Path(file_okay=False), help="Directory of the OCI JSON schemas to validate against."
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
def verify_command(layout: str, schemas: str | None, as_json: bool) -> None:
    """Check everything reachable from a layout's index.json (LAYOUT or oci:LAYOUT[:TAG]) or a static tree.

    A static tree (static:DIR[:REPO[:TAG]]): every tag and manifest it serves, its listings, its
    content types. Reports every problem found; exits 1 when there is any.
    """
    report = verify(layout, schemas_dir=schemas)
    if as_json:
        emit_json(report.to_json())
    else:
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        click.echo(
            f"{report.layout}: {report.blobs_checked} blobs checked, {len(report.problems)} problems",
            err=True,
        )
    if report.problems:
        sys.exit(1)


from pyoci.cli.copy import copy_command  # noqa: E402 - each command module registers itself here, last
from pyoci.cli.push import push_command  # noqa: E402

main.add_command(push_command)
main.add_command(copy_command)

from pyoci.cli.images import gc_command, inspect_command, merge_command, untag_command  # noqa: E402

main.add_command(merge_command)
main.add_command(inspect_command)
main.add_command(untag_command)
main.add_command(gc_command)

from pyoci.cli.sync import sync_command  # noqa: E402

main.add_command(sync_command)

from pyoci.cli.build import build_command  # noqa: E402

main.add_command(build_command)
