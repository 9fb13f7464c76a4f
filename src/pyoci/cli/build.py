"""``pyoci build``: the click command over :func:`pyoci.commands.build.build`."""

from __future__ import annotations

import click

from pyoci.cli.options import emit_digest, json_option, layer_options, parse_key_value, quiet_option, registry_options
from pyoci.cli.progress import make_progress
from pyoci.mediatype import LayerOptions
from pyoci.targets.options import RegistryOptions


@click.command("build")
@click.argument("destination")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS/ARCH[/VARIANT]",
    help="A platform to build, in index order (repeatable). Default: every platform of --from.",
)
@click.option("--from", "base", metavar="SOURCE", help="Base image: oci:, docker://, an archive... Default: scratch.")
@click.option(
    "--add",
    "adds",
    multiple=True,
    metavar="SRC:DEST",
    help="A file or directory tree at the absolute path DEST; all --add make one layer. "
    "SRC may hold {os}, {arch} and {variant}. Repeatable.",
)
@click.option(
    "--layer", "layers", multiple=True, metavar="FILE", help="A tar (plain, gzip, zstd) added as a layer. Repeatable."
)
@click.option("--entrypoint", metavar="JSON|STRING", help="Entrypoint: a JSON array, or one argument.")
@click.option("--cmd", metavar="JSON|STRING", help="Cmd: a JSON array, or one argument.")
@click.option("--env", multiple=True, metavar="KEY=VALUE", help="Environment variable (repeatable).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Config label (repeatable).")
@click.option("--workdir", metavar="PATH", help="Working directory (absolute).")
@click.option("--user", metavar="USER[:GROUP]", help="User the entrypoint runs as.")
@click.option("--expose", multiple=True, metavar="PORT[/PROTO]", help="Exposed port (repeatable).")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE", help="Index and manifest annotation.")
@click.option("--chown", metavar="UID[:GID]", help="Owner of the added files (default 0:0).")
@click.option(
    "--source-date-epoch",
    type=int,
    metavar="SECONDS",
    help="Time of the build: file mtimes, created, history (default: $SOURCE_DATE_EPOCH, else 0).",
)
@registry_options
@layer_options
@quiet_option
@json_option
def build_command(
    destination: str,
    platforms: tuple[str, ...],
    base: str | None,
    adds: tuple[str, ...],
    layers: tuple[str, ...],
    entrypoint: str | None,
    cmd: str | None,
    env: tuple[str, ...],
    labels: tuple[str, ...],
    workdir: str | None,
    user: str | None,
    expose: tuple[str, ...],
    annotations: tuple[str, ...],
    chown: str | None,
    source_date_epoch: int | None,
    registry: RegistryOptions,
    options: LayerOptions,
    quiet: bool,
    as_json: bool,
) -> None:
    """Build a multi-platform image from files (static binaries), reproducibly.

    DESTINATION is oci:DIR[:TAG] (or a directory), oci-archive:FILE[:TAG], docker://HOST/REPO[:TAG],
    static:DIR:REPO[:TAG] (tag 'latest' when absent) or, for one platform, docker-archive:FILE[:NAME:TAG].
    The --layer files, then one layer of every --add, go on top of --from (default: scratch).
    Prints the digest of the image index (of the manifest for one platform).
    """
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.build import build, parse_chown, parse_command

    result = build(
        destination,
        platforms=platforms,
        base=base,
        add=adds,
        layers=layers,
        entrypoint=parse_command(entrypoint, "--entrypoint") if entrypoint is not None else None,
        cmd=parse_command(cmd, "--cmd") if cmd is not None else None,
        env=dict(parse_key_value(text, "--env") for text in env),
        labels=dict(parse_key_value(text, "--label") for text in labels),
        workdir=workdir,
        user=user,
        expose=expose,
        annotations=dict(parse_key_value(text, "--annotation") for text in annotations),
        chown=parse_chown(chown) if chown is not None else None,
        source_date_epoch=source_date_epoch,
        options=options,
        registry=registry,
        progress=make_progress(quiet),
    )
    emit_digest(result.digest, result, as_json)
