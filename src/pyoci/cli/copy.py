"""``pyoci copy``: the click command over :func:`pyoci.copy`."""

from __future__ import annotations

import click

from pyoci.cli.options import emit_digest, json_option, layer_options, quiet_option, registry_options
from pyoci.cli.progress import make_progress
from pyoci.mediatype import LayerOptions
from pyoci.targets.options import RegistryOptions


@click.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option("--all", "all_platforms", is_flag=True, help="Every platform (the default, but for docker-archive).")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS/ARCH[/VARIANT]",
    help="Copy only this platform (repeatable; one gives a single-manifest image).",
)
@click.option(
    "--referrers", is_flag=True, help="Copy the signatures, SBOMs and attestations that refer to the image too."
)
@registry_options
@click.option("--digestfile", type=click.Path(dir_okay=False), help="Write the digest written to this file.")
@layer_options
@quiet_option
@json_option
def copy_command(
    source: str,
    destination: str,
    all_platforms: bool,
    platforms: tuple[str, ...],
    referrers: bool,
    registry: RegistryOptions,
    digestfile: str | None,
    options: LayerOptions,
    quiet: bool,
    as_json: bool,
) -> None:
    """Copy an image from any source to any destination (skopeo's transports).

    SOURCE: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG],
    docker-archive:PATH[:NAME:TAG|:@N] (or a path, or - for stdin), static:DIR:REPO[:TAG].
    DESTINATION: docker://..., oci:DIR[:TAG], oci-archive:FILE[:TAG], static:DIR:REPO[:TAG],
    docker-archive:FILE[:NAME:TAG]. A multi-platform image is copied whole unless --platform
    chooses; a docker-archive gets the host's platform by default. Prints the digest written.
    """
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.copy import copy

    result = copy(
        source,
        destination,
        platforms=platforms,
        all_platforms=all_platforms,
        options=registry,
        layer_options=options,
        referrers=referrers,
        progress=make_progress(quiet),
    )
    emit_digest(result.digest, result, as_json, digestfile)
