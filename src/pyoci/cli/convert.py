"""``pyoci convert``: the click command over :func:`pyoci.convert` (imported when the command runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pyoci.cli.options import emit_json, json_option, layer_options, quiet_option
from pyoci.cli.progress import make_progress
from pyoci.mediatype import LayerOptions

if TYPE_CHECKING:
    from pyoci.commands.convert import ConvertResult


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


@click.command("convert")
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
@quiet_option
@json_option
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
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.convert import convert

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
