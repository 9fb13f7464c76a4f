"""The streaming tar reader against Python's tarfile on every header format."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.errors import ArchiveError
from pyoci.tarstream import BLOCK, TarReader


def build(members: list[tuple[str, bytes]], fmt: int, links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def read_all(data: bytes) -> list[tuple[str, bytes, str]]:
    reader = TarReader(io.BytesIO(data), "t.tar")
    out = []
    for member in reader:
        content = reader.member_data().read() if member.isfile() else b""
        out.append((member.name, content, member.linkname))
    return out


LONG = "d/" + "x" * 150 + "/" + "y" * 120 + ".tar"


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_formats_and_long_names(fmt: int) -> None:
    members = [("a.txt", b"hello"), ("dir/" + "n" * 90 + "/b", b"x" * 700)]
    if fmt != tarfile.USTAR_FORMAT:
        members.append((LONG, b"long"))
    data = build(members, fmt, {"link" + "k" * 120 if fmt != tarfile.USTAR_FORMAT else "l": "a.txt"})
    got = read_all(data)
    assert [(n, c) for n, c, _ in got[: len(members)]] == members
    assert got[-1][2] == "a.txt"


def test_pax_unicode_name() -> None:
    data = build([("ünïcödé/файл.txt", b"1")], tarfile.PAX_FORMAT)
    assert read_all(data) == [("ünïcödé/файл.txt", b"1", "")]


def test_base256_size_field_is_read() -> None:
    # a GNU header whose size (9 GiB) is stored base-256; the stream ends right after it
    header = bytearray(build([("big", b"")], tarfile.GNU_FORMAT)[:BLOCK])
    header[124:136] = b"\x80" + (9 << 30).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    reader = TarReader(io.BytesIO(bytes(header) + b"x" * 4096), "big.tar")
    member = next(iter(reader))
    assert member.size == 9 << 30
    data = reader.member_data()
    assert data.read(4096) == b"x" * 4096
    with pytest.raises(ArchiveError, match="truncated tar archive"):
        data.read(1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty input"),
        (b"garbage" * 100, "not a tar archive"),
        (build([("a", b"abc")], tarfile.GNU_FORMAT)[: BLOCK + 2], "truncated"),
        (build([("a", b"abc")], tarfile.GNU_FORMAT)[: BLOCK * 2], "no end-of-archive marker"),
    ],
)
def test_bad_streams(data: bytes, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        read_all(data)


def test_bad_checksum_later() -> None:
    data = bytearray(build([("a", b"abc"), ("b", b"def")], tarfile.GNU_FORMAT))
    data[2 * BLOCK + 10] ^= 0x01
    with pytest.raises(ArchiveError, match=r"invalid tar header at byte 1024"):
        read_all(bytes(data))


def test_pax_size_override() -> None:
    # pax 'size' wins over the header's own size field
    body = b"z" * 10
    record = b"size=10\n"
    rec = b"%d %s" % (len(record) + 3, record)
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = len(rec)
    real = tarfile.TarInfo("f")
    real.size = 0
    blocks = pax.tobuf(tarfile.USTAR_FORMAT) + rec.ljust(BLOCK, b"\0") + real.tobuf(tarfile.USTAR_FORMAT)
    blocks += body.ljust(BLOCK, b"\0") + bytes(2 * BLOCK)
    assert read_all(blocks) == [("f", body, "")]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(min_codepoint=48, max_codepoint=0x2FF), min_size=1, max_size=200),
            st.binary(max_size=3000),
        ),
        max_size=6,
        unique_by=lambda m: m[0],
    ),
    st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
)
def test_agrees_with_tarfile(members: list[tuple[str, bytes]], fmt: int) -> None:
    members = [(n.replace("/", "_"), d) for n, d in members]
    data = build(members, fmt)
    expected = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar:
            f = tar.extractfile(info)
            expected.append((info.name, f.read() if f else b"", info.linkname))
    assert read_all(data) == expected
