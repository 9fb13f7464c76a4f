"""``pyoci push``: the click command over :func:`pyoci.push`."""

from __future__ import annotations

import click

from pyoci.cli.options import emit_digest, json_option, layer_options, quiet_option, registry_options
from pyoci.cli.progress import make_progress
from pyoci.mediatype import LayerOptions
from pyoci.targets.options import RegistryOptions


@click.command("push")
@click.argument("source")
@click.argument("destinations", nargs=-1, required=True)
@registry_options
@click.option("--mount-from", multiple=True, metavar="REPO", help="Repository to mount blobs from (repeatable).")
@click.option("--digestfile", type=click.Path(dir_okay=False), help="Write the pushed digest to this file.")
@layer_options
@quiet_option
@json_option
def push_command(
    source: str,
    destinations: tuple[str, ...],
    registry: RegistryOptions,
    mount_from: tuple[str, ...],
    digestfile: str | None,
    options: LayerOptions,
    quiet: bool,
    as_json: bool,
) -> None:
    """Push an image to registries and static registry trees.

    SOURCE is an OCI layout (DIR or oci:DIR[:TAG|@DIGEST]), an oci-archive:FILE[:TAG], a
    docker-archive (PATH or docker-archive:PATH[:NAME:TAG|:@N], converted with the layer options),
    docker://... or static:DIR:REPO[:TAG]. Each DESTINATION is docker://HOST[:PORT]/REPO[:TAG|@DIGEST]
    (or the same without docker://; Docker Hub names expand as Docker does) or static:DIR:REPO[:TAG]
    (a file tree for a static web host). Without a tag, the source's tag, else latest.
    Prints the pushed manifest digest.
    """
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.push import push

    result = push(
        source,
        list(destinations),
        options=registry,
        mount_from=mount_from,
        layer_options=options,
        progress=make_progress(quiet),
    )
    emit_digest(result.digest, result, as_json, digestfile)
