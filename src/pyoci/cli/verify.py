"""``pyoci verify``: the click command over :func:`pyoci.verify` (imported when the command runs)."""

from __future__ import annotations

import sys

import click

from pyoci.cli.options import emit_json


@click.command("verify")
@click.argument("layout")
@click.option(
    "--schemas", type=click.Path(file_okay=False), help="Directory of the OCI JSON schemas to validate against."
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
def verify_command(layout: str, schemas: str | None, as_json: bool) -> None:
    """Check a layout or a static tree and report every problem.

    A layout (LAYOUT, LAYOUT:TAG or oci:LAYOUT[:TAG]): everything reachable from index.json. A
    static tree (static:DIR[:REPO[:TAG]]): every tag and manifest it serves, its listings, its
    content types. Reports every problem found; exits 1 when there is any.
    """
    # imported here, not at the top: `pyoci --help` and the other commands start without it
    from pyoci.commands.verify import verify

    report = verify(layout, schemas_dir=schemas)
    if as_json:
        emit_json(report.to_json())
    else:
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        checked, found = _count(report.blobs_checked, "blob"), _count(len(report.problems), "problem")
        click.echo(f"{report.layout}: {checked} checked, {found}", err=True)
    if report.problems:
        sys.exit(1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
