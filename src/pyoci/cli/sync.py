"""``pyoci sync``: the click command over :func:`pyoci.commands.sync.sync`."""

from __future__ import annotations

import click

from pyoci.cli.options import emit_json
from pyoci.cli.progress import make_progress
from pyoci.commands.sync import COPY, DEFAULT_JOBS, DELETE, UPLOAD, sync


@click.command("sync")
@click.argument("source", metavar="static:DIR")
@click.argument("destination", metavar="s3://BUCKET[/PREFIX]")
@click.option("--endpoint-url", metavar="URL", help="S3 API endpoint of a non-AWS server (Garage, MinIO).")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=DEFAULT_JOBS, show_default=True, help="Objects sent at once."
)
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be uploaded, copied and deleted.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def sync_command(
    source: str, destination: str, endpoint_url: str | None, jobs: int, dry_run: bool, quiet: bool, as_json: bool
) -> None:
    """Publish a static registry tree to an S3-compatible bucket.

    Uploads what is missing or changed with its content type, children before parents (blobs,
    manifests, indexes, tags, then the listings), then deletes what the tree no longer holds
    under PREFIX/v2/. Credentials and region come from the usual AWS variables and files.
    Prints one line per object written or deleted.
    """
    result = sync(
        source, destination, endpoint_url=endpoint_url, dry_run=dry_run, jobs=jobs, progress=make_progress(quiet)
    )
    if as_json:
        emit_json(result.to_json())
        return
    for action in result.actions:
        origin = f"\t<- {action.source}" if action.source else ""
        click.echo(f"{action.action}\t{action.size}\t{action.key}{origin}")
    verb = "would upload" if dry_run else "uploaded"
    click.echo(
        f"{result.destination}: {verb} {result.count(UPLOAD)} objects ({result.bytes_uploaded} bytes), "
        f"copied {result.count(COPY)}, deleted {result.count(DELETE)}, {result.skipped} unchanged",
        err=True,
    )
