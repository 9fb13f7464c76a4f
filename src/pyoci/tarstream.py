"""A streaming tar reader: headers parsed as they come, member data read straight from the source.

Formats (POSIX.1-2001 ``pax``, POSIX.1-1988 ``ustar``, GNU): ``ustar`` name prefixes, GNU long names
and long link names (``L``/``K``), pax extended headers (``x``, with ``path``, ``linkpath``, ``size``;
global ``g`` headers are read and skipped), and base-256 numeric fields for members over 8 GiB.

Bounds, so that a hostile stream costs little memory and time: :data:`MAX_MEMBERS` members,
:data:`MAX_EXTENDED` bytes of extended headers per member, and per archive :data:`MAX_EXTENDED_TOTAL`
bytes of extended-header data in at most :data:`MAX_MEMBERS` extended headers; beyond them the reader
raises :class:`~pyoci.errors.ArchiveError` ("too many members", "too large").

Why not ``tarfile``: in stream mode (``r|``) it copies every byte several times through its own
buffer (about 0.5 s per GiB here), on the thread that also hashes the layer; this reader hands the
caller the source's own buffers for large reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pyoci.errors import ArchiveError
from pyoci.streams import Readable, ReaderBase

BLOCK = 512
MAX_EXTENDED = 1 << 20
"""Bytes of extended headers (pax, GNU long names) one member may carry, their 512-byte blocks included."""
MAX_EXTENDED_TOTAL = 16 << 20
"""Bytes of extended-header data one archive may carry (at most about 2.5 s of pax parsing)."""
MAX_MEMBERS = 100_000
"""Members one archive may hold; it may hold as many extended headers besides."""
_PAX_SIZE = re.compile(r"[0-9]{1,20}")
_HIGH_BYTES = bytes(range(128, 256))
_PAX_KEYS = frozenset({b"path", b"linkpath", b"size"})

REGULAR = frozenset({b"0", b"\0", b"7"})
HARDLINK = b"1"
SYMLINK = b"2"
DIRECTORY = b"5"
_EXTENDED = frozenset({b"L", b"K", b"x", b"g"})
"""GNU long name and long link name, pax extended and pax global headers: metadata, not members."""
_NO_DATA = frozenset({HARDLINK, SYMLINK, b"3", b"4", DIRECTORY, b"6"})
"""Types whose size field does not announce data (as GNU tar and ``tarfile`` read them)."""


@dataclass(frozen=True)
class TarMember:
    """One member's header.

    Attributes:
        name: the member path as stored (long-name and pax overrides applied).
        type: the typeflag byte (``b"0"`` regular file, ``b"1"`` hard link, ``b"2"`` symlink, ...).
        size: data bytes that follow the header (0 for links and directories).
        linkname: link target for hard links and symlinks.
    """

    name: str
    type: bytes
    size: int
    linkname: str

    def isfile(self) -> bool:
        """True for a regular file."""
        return self.type in REGULAR

    def issym(self) -> bool:
        """True for a symbolic link."""
        return self.type == SYMLINK

    def islnk(self) -> bool:
        """True for a hard link."""
        return self.type == HARDLINK


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes, where: str) -> int:
    if field[0] & 0x80:
        # base-256 (GNU/star): a sign bit, then a big-endian two's complement number
        value = int.from_bytes(field, "big", signed=field[0] == 0xFF)
        return value if field[0] == 0xFF else value & ~(0x80 << (8 * (len(field) - 1)))
    digits = field.replace(b"\0", b" ").strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise ArchiveError(f"{where}: invalid number {digits!r} in a tar header") from None


def header_checksum_ok(block: bytes, where: str = "") -> bool:
    """True when ``block`` (512 bytes) is a tar header whose checksum holds (signed or unsigned sum).

    POSIX sums the bytes as unsigned; some old tars summed them as signed chars, where each byte
    above 127 counts 256 less.
    """
    try:
        stored = _number(block[148:156], where)
    except ArchiveError:
        return False
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 256  # the checksum field itself counts as 8 spaces
    high = len(rest) - len(rest.translate(None, _HIGH_BYTES))
    return stored in (unsigned, unsigned - 256 * high)


def _pax_records(data: bytes, where: str) -> dict[str, str]:
    r"""Return the ``path``, ``linkpath`` and ``size`` of pax records ``"%d %s=%s\n"`` (the length counts the record).

    Raises:
        ArchiveError: a record whose length does not frame a ``key=value`` line within ``data``.
    """
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos : pos + 1] not in (b"\0", b""):
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space] if space > pos else b""
        length = int(digits) if digits.isdigit() else 0
        record = data[space + 1 : pos + length]
        if length <= 0 or pos + length > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise ArchiveError(f"{where}: malformed pax header record at offset {pos}")
        key, _, value = record[:-1].partition(b"=")
        if key in _PAX_KEYS:
            records[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarReader:
    """Iterates the members of a tar stream, one pass, never seeking.

    Args:
        source: the tar bytes (already decompressed).
        where: the archive's name for error messages.

    Iterating yields each member's header; while a member is current, :meth:`member_data` returns a
    reader over exactly its data. Unread data is skipped when the next member is asked for.

    Raises (while iterating or reading):
        ArchiveError: an invalid header, a truncated stream, or a source that is not a tar archive.
    """

    def __init__(self, source: Readable, where: str) -> None:
        self._source = source
        self._where = where
        self._remaining = 0
        self._padding = 0
        self._offset = 0
        self._members = 0
        self._extended_headers = 0
        self._extended_total = 0

    @property
    def offset(self) -> int:
        """Bytes of the stream consumed so far (after the end-of-archive marker: where it ends)."""
        return self._offset

    def _read(self, n: int) -> bytes:
        data = self._source.read(n)
        self._offset += len(data)
        return data

    def _read_exactly(self, n: int) -> bytes:
        parts = []
        got = 0
        while got < n:
            chunk = self._read(n - got)
            if not chunk:
                raise ArchiveError(f"{self._where}: truncated tar archive (unexpected end at byte {self._offset})")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n > 0:
            chunk = self._read(min(n, 1 << 20))
            if not chunk:
                raise ArchiveError(f"{self._where}: truncated tar archive (unexpected end at byte {self._offset})")
            n -= len(chunk)

    def member_data(self) -> MemberData:
        """Return a reader over the current member's data (exactly ``size`` bytes)."""
        return MemberData(self)

    def _data_read(self, n: int) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if n < 0 else min(n, self._remaining)
        chunk = self._read(want)
        if not chunk:
            raise ArchiveError(f"{self._where}: truncated tar archive (unexpected end at byte {self._offset})")
        self._remaining -= len(chunk)
        return chunk

    def _next_header(self) -> bytes | None:
        self._skip(self._remaining + self._padding)
        self._remaining = self._padding = 0
        start = self._offset
        block = self._read_exactly_or_end(BLOCK)
        if block is None:
            if start == 0:
                raise ArchiveError(f"{self._where}: empty input, not a tar archive")
            raise ArchiveError(f"{self._where}: truncated tar archive (no end-of-archive marker)")
        if block == bytes(BLOCK):
            return None
        if not header_checksum_ok(block, self._where):
            if start == 0:
                raise ArchiveError(f"{self._where}: not a tar archive (invalid header checksum)")
            raise ArchiveError(f"{self._where}: invalid tar header at byte {start} (bad checksum)")
        return block

    def _read_exactly_or_end(self, n: int) -> bytes | None:
        first = self._read(n)
        if not first:
            return None
        if len(first) < n:
            return first + self._read_exactly(n - len(first))
        return first

    def _extended(self, size: int, member_total: int, where: str) -> bytes:
        """Read one extended header's data (``size`` bytes), charged to the member's and the archive's bounds.

        Args:
            size: the header's data bytes.
            member_total: extended-header bytes of the current member so far, this header included.
            where: the header's position for messages.

        Raises:
            ArchiveError: more than :data:`MAX_EXTENDED` bytes for one member, more than
                :data:`MAX_EXTENDED_TOTAL` in the archive, or more than :data:`MAX_MEMBERS` extended headers.
        """
        self._extended_headers += 1
        self._extended_total += size
        if member_total > MAX_EXTENDED:
            raise ArchiveError(f"{where}: too large: more than {MAX_EXTENDED} bytes of extended headers for one member")
        if self._extended_total > MAX_EXTENDED_TOTAL:
            raise ArchiveError(
                f"{self._where}: too large: more than {MAX_EXTENDED_TOTAL} bytes of extended headers (pax, long names)"
            )
        if self._extended_headers > MAX_MEMBERS:
            raise ArchiveError(f"{self._where}: too many extended headers (more than {MAX_MEMBERS})")
        data = self._read_exactly(size)
        self._skip(-size % BLOCK)
        return data

    def __iter__(self) -> Iterator[TarMember]:
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        extended = 0
        while (block := self._next_header()) is not None:
            where = f"{self._where}: tar header at byte {self._offset - BLOCK}"
            kind = block[156:157]
            size = _number(block[124:136], where)
            if size < 0:
                raise ArchiveError(f"{where}: negative size")
            if kind in _EXTENDED:
                extended += BLOCK + size
                data = self._extended(size, extended, where)
                if kind == b"x":
                    pax.update(_pax_records(data, where))
                elif kind != b"g":
                    text = _text(data)
                    long_name, long_link = (text, long_link) if kind == b"L" else (long_name, text)
                continue
            self._members += 1
            if self._members > MAX_MEMBERS:
                raise ArchiveError(f"{self._where}: too many members (more than {MAX_MEMBERS})")
            if kind == b"S":
                raise ArchiveError(f"{where}: GNU sparse members are not supported")
            name = _text(block[0:100])
            if block[257:263] == b"ustar\x00" and block[345]:
                name = f"{_text(block[345:500])}/{name}"
            name = pax.get("path", long_name if long_name is not None else name)
            linkname = pax.get("linkpath", long_link if long_link is not None else _text(block[157:257]))
            if "size" in pax:
                if not _PAX_SIZE.fullmatch(pax["size"]):
                    raise ArchiveError(f"{where}: invalid pax size {pax['size'][:40]!r}")
                size = int(pax["size"])
            long_name = long_link = None
            pax = {}
            extended = 0
            if kind in _NO_DATA:
                size = 0
            self._remaining = size
            self._padding = -size % BLOCK
            yield TarMember(name, kind, size, linkname)


class MemberData(ReaderBase):
    """Reads the current member's data from a :class:`TarReader`; ``b""`` at its end."""

    def __init__(self, reader: TarReader) -> None:
        self._reader = reader

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes of the member (all that is left when ``n`` < 0)."""
        return self._reader._data_read(n)  # noqa: SLF001 - the member reader is part of TarReader
