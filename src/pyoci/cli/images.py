"""Click commands ``merge``, ``inspect``, ``untag`` and ``gc`` (each one library call; errors go to the group)."""

from __future__ import annotations

import sys

import click

from pyoci.cli.options import emit_json, json_option, layer_options, parse_key_value, quiet_option, registry_options
from pyoci.cli.progress import make_progress
from pyoci.mediatype import LayerOptions
from pyoci.targets.options import RegistryOptions


@click.command("merge")
@click.argument("sources", nargs=-1, required=True)
@click.argument("destination")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="N=OS/ARCH[/VARIANT]",
    help="Platform of source N (1-based) when its config lacks or misstates the variant; "
    "the N= part may be left out with a single source. Repeatable.",
)
@click.option("--replace", is_flag=True, help="A platform given twice, or already under the tag, is replaced.")
@click.option("--flat", is_flag=True, help="Write the platform entries straight into index.json, untagged.")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE", help="Image index annotation.")
@layer_options
@registry_options
@quiet_option
@json_option
def merge_command(
    sources: tuple[str, ...],
    destination: str,
    platforms: tuple[str, ...],
    replace: bool,
    flat: bool,
    annotations: tuple[str, ...],
    options: LayerOptions,
    registry: RegistryOptions,
    quiet: bool,
    as_json: bool,
) -> None:
    """Merge per-platform images into one multi-platform image.

    Each SOURCE is any source pyoci reads: an OCI layout (oci:DIR[:TAG] or a directory), a
    docker-archive (as convert reads them), docker://..., static:..., oci-archive:....
    DESTINATION is a directory, oci:DIR[:TAG], docker://HOST/REPO[:TAG] or static:DIR:REPO[:TAG]
    (tag 'latest' when absent); merging into an existing tag adds platforms. In a registry, images
    already there are not downloaded: their manifests are read and their blobs mounted. Prints the
    digest of the image index (with --flat, of each platform manifest).
    """
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.merge import MergeSource, merge, parse_platform_override

    overrides = dict(parse_platform_override(text, len(sources)) for text in platforms)
    items = [MergeSource(source, overrides.get(i)) for i, source in enumerate(sources)]
    result = merge(
        items,
        destination,
        flat=flat,
        replace=replace,
        annotations=dict(parse_key_value(text, "--annotation") for text in annotations),
        options=options,
        registry=registry,
        progress=make_progress(quiet),
    )
    for warning in result.warnings:
        click.echo(f"pyoci: warning: {warning}", err=True)
    if as_json:
        emit_json(result.to_json())
    else:
        for digest in result.digests:
            click.echo(str(digest))


@click.command("inspect")
@click.argument("source")
@click.option("--raw", is_flag=True, help="Print the manifest or index bytes exactly (manifest.json for an archive).")
@json_option
@registry_options
def inspect_command(source: str, raw: bool, as_json: bool, registry: RegistryOptions) -> None:
    """Summarise an image: in a layout, a docker-archive, a registry or a static tree.

    SOURCE is any source pyoci reads (docker://..., oci:..., oci-archive:..., docker-archive:...,
    static:...). Shows tags, platforms, manifest and config digests, layer count and sizes,
    created and entrypoint; --raw prints the exact manifest or index bytes.
    """
    if raw and as_json:
        raise click.UsageError("--raw and --json exclude each other")
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.inspect import inspect

    result = inspect(source, options=registry)
    if raw:
        sys.stdout.buffer.write(result.raw)
        sys.stdout.buffer.flush()
    elif as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.to_text(), nl=False)


@click.command("untag")
@click.argument("reference", metavar="LAYOUT:TAG")
def untag_command(reference: str) -> None:
    """Remove a tag from a layout's index.json (LAYOUT:TAG or oci:LAYOUT:TAG).

    Blobs stay until 'pyoci gc'. Prints the digest the tag pointed at.
    """
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.gc import untag

    result = untag(reference)
    for digest in dict.fromkeys(str(d.digest) for d in result.removed):
        click.echo(digest)


@click.command("gc")
@click.argument("target", metavar="LAYOUT|static:DIR|docker://HOST/REPO")
@click.option(
    "--keep",
    multiple=True,
    metavar="PATTERN",
    help="Static trees and registries: keep tags matching this glob (TAG or REPO:TAG; repeatable).",
)
@click.option(
    "--keep-last",
    type=click.IntRange(1),
    metavar="N",
    help="Static trees and registries: keep the N newest tags of each repository (by the image's created).",
)
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be removed.")
@json_option
@registry_options
def gc_command(
    target: str, keep: tuple[str, ...], keep_last: int | None, dry_run: bool, as_json: bool, registry: RegistryOptions
) -> None:
    """Remove what no kept tag uses from a layout, a static tree or a registry.

    A layout (LAYOUT or oci:LAYOUT) keeps what index.json reaches. A static tree (static:DIR) and a
    registry repository (docker://HOST/REPO) keep the tags --keep and --keep-last select (every tag
    without them) and what they reach, signatures included; a tree's listings are rewritten, a
    registry's manifests deleted by digest (its blobs are left to the registry's own gc). Leftover
    temporary files go too. Prints each path (or REPO@DIGEST) removed with its size in bytes;
    waits while another pyoci process is writing.
    """
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.gc import TAG, gc

    result = gc(target, keep=keep, keep_last=keep_last, dry_run=dry_run, options=registry)
    if as_json:
        emit_json(result.to_json())
        return
    for item in result.removed:
        click.echo(f"{item.size}\t{item.path}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    verb = "would remove" if dry_run else "removed"
    tagged = result.kept_tags or result.removed_tags
    tags = f" ({len(result.removed_tags)} tags, {len(result.kept_tags)} kept)" if tagged else ""
    if str(result.layout).startswith("docker://"):  # tags deleted alone are counted by the tags part
        removed = f"{sum(1 for item in result.removed if item.kind != TAG)} manifests"
    else:
        removed = f"{len(result.removed)} files"
    summary = f"{verb} {removed}{tags}, {result.freed} bytes; {result.kept} blobs reachable"
    click.echo(f"{result.layout}: {summary}", err=True)
