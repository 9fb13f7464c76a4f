"""``pyoci push``: the click command over :func:`pyoci.push`."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import click

from pyoci import RegistryOptions, push
from pyoci.cli.options import emit_json, layer_options
from pyoci.cli.progress import make_progress
from pyoci.errors import FormatError
from pyoci.fsutil import write_atomic
from pyoci.targets.client import DEFAULT_CHUNK_SIZE
from pyoci.transcode import LayerOptions

_SIZE = re.compile(r"^(\d+)\s*([kmg]?)i?b?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parse a byte count such as ``1048576``, ``512K``, ``64M``, ``1GiB`` (binary units).

    Raises:
        FormatError: not a size.
    """
    match = _SIZE.match(text.strip())
    if match is None:
        raise FormatError(f"--chunk-size {text!r}: expected a byte count such as 65536, 512K or 64M")
    return int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]


@click.command("push")
@click.argument("source")
@click.argument("destinations", nargs=-1, required=True)
@click.option("--creds", metavar="USER:PASSWORD", help="Credentials for the registries (else the auth files).")
@click.option("--authfile", type=click.Path(dir_okay=False), help="containers-auth.json file to read credentials from.")
@click.option("--cert-dir", type=click.Path(file_okay=False), help="Directory of *.crt CAs and *.cert/*.key pairs.")
@click.option(
    "--tls-verify", type=click.BOOL, default=True, show_default=True, help="Verify TLS; false also allows plain HTTP."
)
@click.option("--mount-from", multiple=True, metavar="REPO", help="Repository to mount blobs from (repeatable).")
@click.option(
    "--chunk-size",
    default=str(DEFAULT_CHUNK_SIZE >> 20) + "M",
    show_default=True,
    help="Blobs larger than this go up in PATCH chunks of this size; 0: never.",
)
@click.option("--retry-times", type=click.IntRange(0), default=3, show_default=True, help="Retries per request/blob.")
@click.option(
    "--retry-delay", type=click.FloatRange(0), default=1.0, show_default=True, help="Seconds before the first retry."
)
@click.option("--digestfile", type=click.Path(dir_okay=False), help="Write the pushed digest to this file.")
@layer_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable result.")
@click.option("--debug", is_flag=True, help="Trace HTTP requests on stderr (credentials redacted).")
def push_command(
    source: str,
    destinations: tuple[str, ...],
    creds: str | None,
    authfile: str | None,
    cert_dir: str | None,
    tls_verify: bool,
    mount_from: tuple[str, ...],
    chunk_size: str,
    retry_times: int,
    retry_delay: float,
    digestfile: str | None,
    options: LayerOptions,
    quiet: bool,
    as_json: bool,
    debug: bool,
) -> None:
    """Push an image to registries and static registry trees.

    SOURCE is an OCI layout (DIR or oci:DIR[:TAG|@DIGEST]), an oci-archive:FILE[:TAG], or a
    docker-archive (PATH or docker-archive:PATH[:NAME:TAG|:@N], converted with the layer options). Each DESTINATION is docker://HOST[:PORT]/REPO[:TAG|@DIGEST]
    (or the same without docker://; Docker Hub names expand as Docker does) or static:DIR:REPO[:TAG]
    (a file tree for a static web host). Without a tag, the source's tag, else latest.
    Prints the pushed manifest digest.
    """
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("pyoci: %(message)s"))
        logger = logging.getLogger("pyoci")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    registry = RegistryOptions(
        creds=creds,
        authfile=authfile,
        cert_dir=cert_dir,
        tls_verify=tls_verify,
        chunk_size=parse_size(chunk_size),
        retry_times=retry_times,
        retry_delay=retry_delay,
    )
    result = push(
        source,
        list(destinations),
        options=registry,
        mount_from=mount_from,
        layer_options=options,
        progress=make_progress(quiet),
    )
    if digestfile is not None:
        write_atomic(Path(digestfile).absolute(), str(result.digest).encode())
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(str(result.digest))
