"""Deterministic tar writing: the same entries give the same bytes on any machine.

The layer a build adds is a tar stream (image-spec ``layer.md``) made here, with these rules:

* **Order**: entries sorted by path, component by component (a directory before what it holds);
  one entry per path.
* **Header**: POSIX ustar (magic ``ustar``, version ``00``); a pax extended header
  (typeflag ``x``, named ``././@PaxHeader``, records sorted by key) is written only for what ustar
  cannot hold: a name that is not ASCII or does not fit the 100-byte name and 155-byte prefix
  fields, a link target not ASCII or over 100 bytes, a size of 8 GiB or more, an mtime or an
  owner ID beyond the octal fields. Directory names end with ``/``.
* **Metadata** comes from the entry, never from the machine: no user or group names, device
  fields 0, and the archive ends with exactly two zero blocks (no padding to a 10 KiB record).
* **Names** must be UTF-8 without control characters (:func:`check_name`): a tar name written
  differently on two machines, or one that would start the stream with a compression magic
  number, is refused instead.

:func:`tree_entries` reads a file or a directory tree from disk with the build's normalisation:
permission bits derived from the owner's bits only (group and other get the owner's read and
execute bits, write stays with the owner; setuid, setgid and sticky bits are kept), so the umask
that created the files does not matter; owner and mtime from a :class:`Stamp`; symbolic links
inside a tree kept as links and never followed; hard links written as separate regular files.

:class:`TarStream` is a reader over the tar bytes: file contents are read from disk in 1 MiB
chunks as the stream is consumed, so no file is ever held in memory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pyoci.errors import FormatError
from pyoci.streams import ReaderBase

BLOCK = 512
CHUNK = 1 << 20
REGULAR = b"0"
SYMLINK = b"2"
DIRECTORY = b"5"
PAX_HEADER_NAME = b"././@PaxHeader"

_MAX_OCTAL_11 = 0o77777777777
_MAX_OCTAL_7 = 0o7777777
DIRECTORY_MODE = 0o755
SYMLINK_MODE = 0o777


@dataclass(frozen=True)
class Stamp:
    """The owner and time every entry taken from disk gets.

    Attributes:
        mtime: modification time in seconds since the epoch (``SOURCE_DATE_EPOCH``), >= 0.
        uid: owner user ID.
        gid: owner group ID.
    """

    mtime: int = 0
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class TarEntry:
    """One member of a tar stream.

    Attributes:
        name: the path inside the archive: components joined by ``/``, no leading or trailing
            ``/``, no ``.`` or ``..`` component.
        kind: :data:`REGULAR`, :data:`DIRECTORY` or :data:`SYMLINK`.
        mode: permission bits (``0o7777`` at most).
        uid: owner user ID.
        gid: owner group ID.
        mtime: modification time in seconds since the epoch.
        size: content bytes of a regular file (0 otherwise).
        linkname: the target of a symbolic link (empty otherwise).
        source: the file a regular entry's content is read from.
    """

    name: str
    kind: bytes
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    size: int = 0
    linkname: str = ""
    source: Path | None = None

    @property
    def key(self) -> tuple[bytes, ...]:
        """The sort key: the UTF-8 path components (a directory sorts before what it holds)."""
        return tuple(part.encode() for part in self.name.split("/"))


def check_name(text: str, where: str) -> str:
    """Return ``text`` (a path component or link target) if a tar name may hold it.

    Raises:
        FormatError: it is not valid UTF-8 (a file name in another encoding) or holds a control
            character (``U+0000``-``U+001F``, ``U+007F``).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(f"{where}: the name is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise FormatError(f"{where}: the name holds a control character")
    return text


def normalised_mode(st_mode: int) -> int:
    """Permission bits of a file as written, whatever the umask: see the module docstring.

    ``0o600`` and ``0o644`` give ``0o644``; ``0o700`` and ``0o755`` give ``0o755``; ``0o4750`` gives ``0o4755``.
    """
    owner = (st_mode >> 6) & 0o7
    shared = owner & 0o5
    return (st_mode & 0o7000) | (owner << 6) | (shared << 3) | shared


def tree_entries(source: Path, name: str, stamp: Stamp) -> list[TarEntry]:
    """Entries for ``source`` (a file, or a directory and everything below it) stored at ``name``.

    ``source`` itself is followed when it is a symbolic link; links below it are kept as links.
    A directory's entry is at ``name`` and its contents below it; ``name`` empty means the root
    of the archive (no entry for the directory itself).

    Args:
        source: the file or directory on disk.
        name: where it goes in the archive (see :attr:`TarEntry.name`; empty for the root).
        stamp: owner and mtime of every entry.

    Returns:
        The entries, unsorted (:class:`TarStream` sorts them).

    Raises:
        FormatError: ``source`` does not exist, is neither a file nor a directory, or holds a
            name :func:`check_name` refuses, a device, a FIFO or a socket.
        OSError: a directory cannot be listed.
    """
    try:
        info = source.stat()
    except FileNotFoundError:
        raise FormatError(f"{source}: no such file or directory") from None
    if stat.S_ISDIR(info.st_mode):
        entries = [_entry(source, name, info, stamp)] if name else []
        _walk(source, name, stamp, entries)
        return entries
    if not stat.S_ISREG(info.st_mode):
        raise FormatError(f"{source}: not a regular file or directory")
    if not name:
        raise FormatError(f"{source}: a file needs a name in the archive")
    return [_entry(source, name, info, stamp)]


def _walk(directory: Path, name: str, stamp: Stamp, out: list[TarEntry]) -> None:
    with os.scandir(directory) as listing:
        children = sorted(listing, key=lambda e: e.name)
    for child in children:
        path = Path(child.path)
        check_name(child.name, str(path))
        child_name = f"{name}/{child.name}" if name else child.name
        info = child.stat(follow_symlinks=False)
        out.append(_entry(path, child_name, info, stamp))
        if stat.S_ISDIR(info.st_mode):
            _walk(path, child_name, stamp, out)


def _entry(path: Path, name: str, info: os.stat_result, stamp: Stamp) -> TarEntry:
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return TarEntry(name, REGULAR, normalised_mode(mode), stamp.uid, stamp.gid, stamp.mtime, info.st_size, "", path)
    if stat.S_ISDIR(mode):
        return TarEntry(name, DIRECTORY, normalised_mode(mode), stamp.uid, stamp.gid, stamp.mtime)
    if stat.S_ISLNK(mode):
        target = check_name(os.readlink(path), f"{path}: link target")
        return TarEntry(name, SYMLINK, SYMLINK_MODE, stamp.uid, stamp.gid, stamp.mtime, linkname=target)
    raise FormatError(f"{path}: not a regular file, directory or symbolic link")


def parent_entries(names: Iterable[str], mtime: int) -> list[TarEntry]:
    """Directory entries for the parents of ``names`` that are not among them (owner 0:0, mode 0755, ``mtime``)."""
    listed = set(names)
    parents = {name.rsplit("/", i)[0] for name in listed for i in range(1, name.count("/") + 1)} - listed
    return [TarEntry(p, DIRECTORY, DIRECTORY_MODE, mtime=mtime) for p in sorted(parents)]


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    while length != len(body) + len(str(length)):  # the length counts its own digits
        length = len(body) + len(str(length))
    return str(length).encode() + body


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for the ustar fields, or None when the name does not fit them."""
    if len(name) <= 100:
        return b"", name
    for cut in range(len(name) - 1, 0, -1):
        if name[cut : cut + 1] == b"/" and cut <= 155 and len(name) - cut - 1 <= 100:
            return name[:cut], name[cut + 1 :]
    return None


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _block(
    name: bytes, prefix: bytes, kind: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, linkname: bytes
) -> bytes:
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(uid, 8)
    block[116:124] = _octal(gid, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[157 : 157 + len(linkname)] = linkname
    block[257:265] = b"ustar\x0000"
    block[329:337] = _octal(0, 8)
    block[337:345] = _octal(0, 8)
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def header(entry: TarEntry) -> bytes:
    """The header block(s) of ``entry``: a pax extended header first when ustar cannot hold it all."""
    path = entry.name + ("/" if entry.kind == DIRECTORY else "")
    encoded = path.encode()
    records: dict[str, str] = {}
    split = _split_ustar(encoded) if path.isascii() else None
    if split is None:
        records["path"] = path
        split = b"", path.encode("ascii", "replace")[:100]
    linkname = entry.linkname.encode()
    if not entry.linkname.isascii() or len(linkname) > 100:
        records["linkpath"] = entry.linkname
        linkname = entry.linkname.encode("ascii", "replace")[:100]
    numbers = {"size": (entry.size, _MAX_OCTAL_11), "mtime": (entry.mtime, _MAX_OCTAL_11)}
    numbers |= {"uid": (entry.uid, _MAX_OCTAL_7), "gid": (entry.gid, _MAX_OCTAL_7)}
    fields = {}
    for key, (value, limit) in numbers.items():
        if value > limit:
            records[key] = str(value)
        fields[key] = value if value <= limit else 0
    prefix, name = split
    block = _block(
        name, prefix, entry.kind, entry.mode, fields["uid"], fields["gid"], fields["size"], fields["mtime"], linkname
    )
    if not records:
        return block
    data = b"".join(_pax_record(key, records[key]) for key in sorted(records))
    pax = _block(PAX_HEADER_NAME, b"", b"x", 0o644, 0, 0, len(data), fields["mtime"], b"")
    return pax + data + bytes(-len(data) % BLOCK) + block


class TarStream(ReaderBase):
    """Reads the tar archive of ``entries``, sorted (see the module docstring), as it is consumed.

    Args:
        entries: the members; each name once.
        where: the archive's name for error messages.

    Raises:
        FormatError: (on construction) two entries with one name; (from ``read``) a file that is
            no longer a regular file of the size it had when it was listed.
        OSError: (from ``read``) a file cannot be opened or read.
    """

    def __init__(self, entries: Iterable[TarEntry], where: str) -> None:
        self.entries = sorted(entries, key=lambda e: e.key)
        for before, after in zip(self.entries, self.entries[1:], strict=False):
            if before.name == after.name:
                raise FormatError(f"{where}: {before.name!r} is listed twice")
        self._chunks = self._generate()
        self._current = memoryview(b"")

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes of the archive (everything left when ``n`` < 0); ``b""`` at the end."""
        if n < 0:
            rest = bytes(self._current) + b"".join(self._chunks)
            self._current = memoryview(b"")
            return rest
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._current = memoryview(chunk)
        data = bytes(self._current[:n])
        self._current = self._current[n:]
        return data

    def _generate(self) -> Iterator[bytes]:
        pending = b""
        for entry in self.entries:
            pending += header(entry)
            if entry.kind == REGULAR and entry.size:
                assert entry.source is not None  # regular entries are read from a file
                yield pending
                yield from _content(entry.source, entry.size)
                pending = bytes(-entry.size % BLOCK)
        yield pending + bytes(2 * BLOCK)


def _content(path: Path, size: int) -> Iterator[bytes]:
    """The ``size`` bytes of ``path`` in chunks; the file must still be a regular file of that size."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb", buffering=0) as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            raise FormatError(f"{path}: changed while the layer was written (was a file of {size} bytes)")
        left = size
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise FormatError(f"{path}: shrank while the layer was written")
            left -= len(chunk)
            yield chunk
        if f.read(1):
            raise FormatError(f"{path}: grew while the layer was written")
