"""Command-line options shared by several commands."""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pyoci.errors import FormatError
from pyoci.fsutil import write_atomic
from pyoci.mediatype import Compression, LayerOptions
from pyoci.targets.options import DEFAULT_CHUNK_SIZE, DEFAULT_JOBS, MAX_RETRIES, RegistryOptions

_SIZE = re.compile(r"(\d{1,15})\s*([kmg]?)i?b?", re.IGNORECASE)


quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
"""``-q``/``--quiet`` (parameter ``quiet``), as every command with progress bars takes it."""
json_option = click.option("--json", "as_json", is_flag=True, help="Print a machine-readable result.")
"""``--json`` (parameter ``as_json``): the command's result as JSON on stdout."""


def layer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--compression``, ``--level``, ``--threads`` and ``--recompress``, passed on as ``options``."""

    @click.option(
        "--compression",
        type=click.Choice([c.value for c in Compression]),
        default=Compression.GZIP.value,
        show_default=True,
        help="Layer compression written.",
    )
    @click.option(
        "--level",
        type=int,
        help=f"Compression level on the codec's own scale: gzip {_scale(Compression.GZIP)}, "
        f"zstd {_scale(Compression.ZSTD)}.",
    )
    @click.option(
        "--threads",
        type=int,
        default=0,
        help="Compression threads (default: all cores); the output does not depend on it.",
    )
    @click.option(
        "--recompress", is_flag=True, help="Re-compress layers that already arrive in the requested compression."
    )
    @functools.wraps(command)
    def wrapper(*args: Any, compression: str, level: int | None, threads: int, recompress: bool, **kwargs: Any) -> Any:
        options = LayerOptions(Compression(compression), level, threads, recompress)
        return command(*args, options=options, **kwargs)

    return wrapper


def _scale(codec: Compression) -> str:
    levels = codec.levels
    return f"{levels.start}-{levels.stop - 1} (default {codec.default_level})"


def emit_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout (the ``--json`` output of every command)."""
    click.echo(json.dumps(obj, indent=2))


def emit_digest(digest: object, result: Any, as_json: bool, digestfile: str | None = None) -> None:
    """Print what a command wrote: its digest (or, with ``--json``, ``result.to_json()``); ``--digestfile`` too."""
    if digestfile is not None:
        write_atomic(Path(digestfile).absolute(), str(digest).encode())
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(str(digest))


def parse_key_value(text: str, option: str) -> tuple[str, str]:
    """Parse ``KEY=VALUE`` (the value may be empty and hold ``=``): ``--env``, ``--label``, ``--annotation``.

    Raises:
        FormatError: no ``=``, an empty key, or text that is not valid Unicode (bytes the terminal
            could not decode); ``option`` opens the message.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise FormatError(f"{option} {text!r}: expected KEY=VALUE")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise FormatError(f"{option} {text!r}: not valid UTF-8") from None
    return key, value


def parse_size(text: str) -> int:
    """Parse a byte count such as ``1048576``, ``512K``, ``64M``, ``1GiB`` (binary units).

    Raises:
        FormatError: not a size.
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise FormatError(f"--chunk-size {text!r}: expected a byte count such as 65536, 512K or 64M")
    return int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]


def registry_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the registry options (skopeo's names) and ``--debug``, passed on as ``registry``."""

    @click.option("--creds", metavar="USER:PASSWORD", help="Credentials for the registries (else the auth files).")
    @click.option(
        "--authfile", type=click.Path(dir_okay=False), help="containers-auth.json file to read credentials from."
    )
    @click.option("--cert-dir", type=click.Path(file_okay=False), help="Directory of *.crt CAs and *.cert/*.key pairs.")
    @click.option(
        "--tls-verify",
        type=click.BOOL,
        default=True,
        show_default=True,
        help="Verify TLS; false also allows plain HTTP.",
    )
    @click.option(
        "--chunk-size",
        default=str(DEFAULT_CHUNK_SIZE >> 20) + "M",
        show_default=True,
        help="Blobs larger than this go up in PATCH chunks of this size; 0: never.",
    )
    @click.option(
        "--retry-times",
        type=click.IntRange(0, MAX_RETRIES),
        default=3,
        show_default=True,
        help="Retries per request/blob.",
    )
    @click.option(
        "--retry-delay",
        type=click.FloatRange(0, 30),
        default=1.0,
        show_default=True,
        help="Seconds before the first retry.",
    )
    @click.option(
        "--jobs",
        type=click.IntRange(1, 32),
        default=DEFAULT_JOBS,
        show_default=True,
        help="Blobs transferred at once.",
    )
    @click.option("--debug", is_flag=True, help="Trace HTTP requests on stderr (credentials redacted).")
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        creds: str | None,
        authfile: str | None,
        cert_dir: str | None,
        tls_verify: bool,
        chunk_size: str,
        retry_times: int,
        retry_delay: float,
        jobs: int,
        debug: bool,
        **kwargs: Any,
    ) -> Any:
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
            jobs=jobs,
        )
        return command(*args, registry=registry, **kwargs)

    return wrapper
