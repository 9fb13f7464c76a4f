"""Hostile docker-archives (issue 12): bounded time and memory, one clean line, nothing written.

Bombs and endless inputs run the real CLI in a child process under a timeout, with its peak RSS
measured (``bounded.run_bounded``); the tar reader's own bounds are also checked in-process.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from bounded import END, MAX_RSS_MIB, Outcome, header, run_bounded

from pyoci import tarstream
from pyoci.errors import ArchiveError
from pyoci.tarstream import BLOCK, MAX_EXTENDED_TOTAL, MAX_MEMBERS, TarReader

MiB = 1 << 20


def assert_error(outcome: Outcome, message: str, max_seconds: float = 30) -> None:
    """Exit 1, exactly one line on stderr holding ``message``, within the time and memory bounds."""
    assert outcome.returncode == 1, outcome.stderr
    assert outcome.stderr.startswith("pyoci: error: ") and outcome.stderr.count("\n") == 1, outcome.stderr
    assert message in outcome.stderr, outcome.stderr
    assert outcome.seconds < max_seconds, outcome.seconds
    assert outcome.peak_rss_mib <= MAX_RSS_MIB, outcome.peak_rss_mib


def read_members(data: bytes) -> list[str]:
    return [m.name for m in TarReader(io.BytesIO(data), "t.tar")]


def pax(records: bytes) -> bytes:
    """A pax extended header ('x') holding ``records``."""
    return header("././@PaxHeader", len(records), tarfile.XHDTYPE) + records + bytes(-len(records) % BLOCK)


def record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    digits = len(str(len(body)))
    length = len(body) + digits
    if len(str(length)) != digits:
        length += 1
    return str(length).encode() + body


# --- the tar reader's own checks and bounds ----------------------------------------------------------


def test_signed_checksum_is_accepted() -> None:
    # old tars summed header bytes as signed chars: a byte above 127 counts 256 less
    block = bytearray(header("caf\xe9", 0))
    block[0:5] = b"caf\xe9\0"
    block[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in block)
    block[148:156] = b"%06o\0 " % signed
    assert signed != sum(block)
    assert tarstream.header_checksum_ok(bytes(block))
    assert read_members(bytes(block) + END) == ["caf\udce9"]


@pytest.mark.parametrize(
    "records",
    [
        b"+9 path=a\n",  # a sign
        b"1_0 path=a\n",  # an underscore, which int() accepts
        b"9path=a\n",  # no space
        b"99 path=a\n",  # longer than the header
        b"1" * 5000 + b" path=a\n",  # a length of 5000 digits
        b"8 path=a",  # no newline
        b"7 patha\n",  # no '='
    ],
)
def test_malformed_pax_records(records: bytes) -> None:
    with pytest.raises(ArchiveError, match=r"^t.tar: tar header at byte 0: malformed pax header record at offset 0$"):
        read_members(pax(records) + header("f", 0) + END)


@pytest.mark.parametrize("size", ["-5", "1_0", "1" * 21, "0x10", "٣"])
def test_invalid_pax_sizes(size: str) -> None:
    with pytest.raises(ArchiveError, match=r"^t.tar: tar header at byte 1024: invalid pax size"):
        read_members(pax(record("size", size)) + header("f", 0) + END)


def test_pax_path_size_and_linkpath_are_read() -> None:
    records = record("path", "long/" + "n" * 300) + record("mtime", "1.5") + record("linkpath", "t" * 200)
    data = pax(records) + header("short", 0, tarfile.SYMTYPE) + END
    [only] = list(TarReader(io.BytesIO(data), "t.tar"))
    assert (only.name, only.linkname) == ("long/" + "n" * 300, "t" * 200)


def test_extended_headers_of_one_member_are_bounded() -> None:
    big = pax(record("comment", "c" * (600 << 10)))
    with pytest.raises(ArchiveError, match=r"tar header at byte \d+: too large: more than 1048576 bytes of extended"):
        read_members(big + big + header("f", 0) + END)
    empty = header("././@PaxHeader", 0, tarfile.XHDTYPE)
    with pytest.raises(ArchiveError, match="too large: more than 1048576 bytes of extended headers for one member"):
        read_members(empty * 2049 + header("f", 0) + END)
    assert read_members(empty * 2047 + header("f", 0) + END) == ["f"]


def test_extended_headers_of_an_archive_are_bounded() -> None:
    one = pax(record("comment", "c" * (MiB - 4 * BLOCK))) + header("f", 0)
    count = MAX_EXTENDED_TOTAL // (MiB - 4 * BLOCK)
    assert read_members(one * count + END) == ["f"] * count
    with pytest.raises(ArchiveError, match=r"^t.tar: too large: more than 16777216 bytes of extended headers"):
        read_members(one * (count + 1) + END)


def test_member_count_is_bounded() -> None:
    one = header("f", 0)
    assert len(read_members(one * MAX_MEMBERS + END)) == MAX_MEMBERS
    with pytest.raises(ArchiveError, match=r"^t.tar: too many members \(more than 100000\)$"):
        read_members(one * (MAX_MEMBERS + 1) + END)


def test_extended_header_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tarstream, "MAX_MEMBERS", 10)
    empty = header("././@PaxHeader", 0, tarfile.XHDTYPE)
    assert read_members((empty * 2 + header("f", 0)) * 5 + END) == ["f"] * 5
    with pytest.raises(ArchiveError, match=r"^t.tar: too many extended headers \(more than 10\)$"):
        read_members((empty * 2 + header("f", 0)) * 6 + END)


# --- hangs: CPU bombs and endless input end quickly with one line --------------------------------------


def test_pax_cpu_bomb(tmp_path: Path) -> None:
    # 1000 pax headers of 1 MiB of 6-byte records (a 1.5 MB .tar.gz): minutes of parsing before
    records = b"6 a=b\n" * ((MiB - 4 * BLOCK) // 6)
    bomb = tmp_path / "pax.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as out:
        for _ in range(1000):
            out.write(pax(records) + header("f", 0))
        out.write(END)
    outcome = run_bounded("convert", str(bomb), str(tmp_path / "out"))
    assert_error(outcome, f"{bomb}: too large: more than 16777216 bytes of extended headers (pax, long names)", 20)
    assert not (tmp_path / "out").exists()
