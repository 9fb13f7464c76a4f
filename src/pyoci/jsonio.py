"""Deterministic JSON writing, and JSON reading with errors that name the file.

Documents pyoci writes are compact UTF-8 with keys in insertion order, so the same content always
gives the same bytes (and digest). Reading never trusts its input: a document that is not UTF-8
JSON, or is nested deeper than the interpreter can parse, is a :class:`~pyoci.errors.FormatError`.
"""

from __future__ import annotations

import json
from typing import Any

from pyoci.errors import FormatError

MAX_DOCUMENT_SIZE = 64 << 20
"""Largest JSON document (manifest, index, config, manifest.json) pyoci reads into memory, in bytes."""


def dump_json(obj: Any) -> bytes:
    """Serialise ``obj`` compactly as UTF-8 JSON, keys in insertion order (deterministic)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


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
        FormatError: the bytes are not valid UTF-8 JSON (message names ``where``).
    """
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{where}: invalid JSON: {exc}") from exc
    except RecursionError:
        raise FormatError(f"{where}: JSON nested too deeply") from None
