"""Command-line options shared by several commands."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from pyoci.mediatype import Compression
from pyoci.transcode import LayerOptions


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
