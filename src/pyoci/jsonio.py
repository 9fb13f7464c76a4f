"""Deterministic JSON writing, and JSON reading with errors that name the file.

Documents pyoci writes are compact UTF-8 with keys in insertion order, so the same content always
gives the same bytes (and digest). Reading never trusts its input and accepts what Go's
``encoding/json`` (skopeo, containerd, Docker) accepts and pyoci can write back: UTF-8 without a byte
order mark (RFC 8259 section 8.1), numbers that fit a float64 (no ``NaN``, ``Infinity`` or ``1e999``),
and no unpaired UTF-16 surrogate escape, which no UTF-8 text can hold (RFC 8259 section 8.2).
Anything else, or a document nested deeper than the interpreter can parse, is a
:class:`~pyoci.errors.FormatError`.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any

from pyoci.errors import FormatError

MAX_DOCUMENT_SIZE = 64 << 20
"""Largest JSON document (manifest, index, config, manifest.json) pyoci reads into memory, in bytes."""

_MAX_DIGITS = 4300
"""Longest integer read (Python's default limit for converting text to int)."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def dump_json(obj: Any) -> bytes:
    """Serialise ``obj`` compactly as UTF-8 JSON, keys in insertion order (deterministic).

    Raises:
        FormatError: a string holds a lone surrogate, which UTF-8 cannot encode: text decoded from
            bytes that are not UTF-8 (Python decodes such command-line arguments with
            ``surrogateescape``). The message quotes the text around it.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        around = text[max(0, exc.start - 30) : exc.end + 10]
        raise FormatError(f"{around!r}: cannot be written as JSON: it holds bytes that are not UTF-8 text") from None


def value_bound(data: bytes) -> int:
    """Return an upper bound on the values and keys the JSON text ``data`` holds.

    Every value but the first follows a ``[``, ``,`` or ``:`` and every key a ``{`` or ``,``, so the
    count of those bytes (inside strings too) plus one bounds them; it costs four scans in C. Callers
    use it to refuse a document whose parsed form could be far larger than its bytes (``[{},{},...]``
    becomes about 25 times its size in Python objects).
    """
    return 1 + sum(data.count(c) for c in (b"[", b"{", b",", b":"))


def load_json(data: bytes, where: str) -> Any:
    """Parse JSON bytes read from ``where``.

    Raises:
        FormatError: the bytes are not UTF-8 JSON as Go reads it (see the module docstring; the
            message names ``where``).
    """
    if data.startswith(codecs.BOM_UTF8):
        raise FormatError(f"{where}: invalid JSON: it starts with a byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{where}: invalid JSON: not UTF-8 (byte {exc.start})") from None
    try:
        obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where}: invalid JSON: {exc}") from exc
    except ValueError as exc:  # from the three parse functions below
        raise FormatError(f"{where}: invalid JSON: {exc}") from None
    except RecursionError:
        raise FormatError(f"{where}: JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(obj):
        raise FormatError(f"{where}: invalid JSON: a string holds an unpaired surrogate, which UTF-8 cannot encode")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _integer(text: str) -> int:
    if len(text) > _MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits is out of range")
    return int(text)


def _has_surrogate(obj: Any) -> bool:
    """True when a string of ``obj`` (a key or a value, at any depth) holds a lone surrogate."""
    pending = [obj]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
