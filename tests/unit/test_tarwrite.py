"""The deterministic tar writer: header formats, order, normalisation, and streaming of file contents."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import need_tool

from pyoci.errors import FormatError
from pyoci.tarstream import TarReader
from pyoci.tarwrite import (
    DIRECTORY,
    REGULAR,
    SYMLINK,
    Stamp,
    TarEntry,
    TarStream,
    _pax_record,
    check_name,
    header,
    normalised_mode,
    parent_entries,
    tree_entries,
)


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


@pytest.mark.parametrize(
    ("st_mode", "expected"),
    [(0o600, 0o644), (0o644, 0o644), (0o664, 0o644), (0o700, 0o755), (0o750, 0o755), (0o755, 0o755),
     (0o400, 0o444), (0o500, 0o555), (0o4750, 0o4755), (0o1777, 0o1755), (0o100600, 0o644), (0o040700, 0o755)],
)  # fmt: skip
def test_modes_come_from_the_owner_bits_only(st_mode: int, expected: int) -> None:
    assert normalised_mode(st_mode) == expected


def test_ustar_header_fields_are_fixed() -> None:
    block = header(TarEntry("usr/bin/app", REGULAR, 0o755, 0, 0, 1700000000, 5))
    assert len(block) == 512
    assert block[:11] == b"usr/bin/app" and block[11:100] == bytes(89)
    assert block[100:108] == b"0000755\0" and block[108:124] == b"0000000\0" * 2
    assert block[124:136] == b"00000000005\0" and block[136:148] == b"%011o\0" % 1700000000
    assert block[156:157] == b"0" and block[257:265] == b"ustar\x0000"
    assert block[265:329] == bytes(64)  # no user or group names
    assert block[329:345] == b"0000000\0" * 2 and block[345:] == bytes(167)
    assert int(block[148:154], 8) == sum(block[:148]) + 256 + sum(block[156:])


def test_pax_only_where_ustar_cannot_hold_it() -> None:
    plain = TarEntry("a" * 100, REGULAR, 0o644)
    split = TarEntry("p" * 150 + "/" + "n" * 100, REGULAR, 0o644)  # fits prefix + name
    assert len(header(plain)) == 512 and len(header(split)) == 512
    assert header(split)[345:495] == b"p" * 150 and header(split)[:100] == b"n" * 100
    cases = {
        "path": TarEntry("x" * 101, REGULAR, 0o644),
        "linkpath": TarEntry("l", SYMLINK, 0o777, linkname="t" * 101),
        "size": TarEntry("big", REGULAR, 0o644, size=8 << 30),
        "uid": TarEntry("owned", REGULAR, 0o644, uid=1 << 22),
        "mtime": TarEntry("future", REGULAR, 0o644, mtime=1 << 34),
    }
    for key, entry in cases.items():
        block = header(entry)
        assert len(block) == 3 * 512, key
        assert block[:14] == b"././@PaxHeader" and block[156:157] == b"x"
        records = block[512:1024].rstrip(b"\0")
        assert records.split(b" ", 1)[1].startswith(key.encode() + b"="), key
        assert int(records.split(b" ", 1)[0]) == len(records)


def test_non_ascii_names_get_a_pax_path() -> None:
    data = TarStream([TarEntry("héllo", REGULAR, 0o644)], "t").read()
    [member] = members(data)
    assert member.name == "héllo" and member.pax_headers == {"path": "héllo"}
    assert len(data) == 512 * 3 + 1024


@pytest.mark.parametrize("size", [1, 89, 90, 91, 985, 986, 987, 9990, 9995, 10000])
def test_pax_record_length_counts_its_own_digits(size: int) -> None:
    record = _pax_record("path", "x" * size)
    length, _, rest = record.partition(b" ")
    assert int(length) == len(record) and rest == b"path=" + b"x" * size + b"\n"


def test_entries_are_sorted_by_component_and_parents_added() -> None:
    entries = [TarEntry(name, REGULAR, 0o644) for name in ("a-b", "a/b/c", "z", "a/b-c")]
    entries += parent_entries([e.name for e in entries], 0)
    names = [m.name for m in members(TarStream(entries, "t").read())]
    assert names == ["a", "a/b", "a/b/c", "a/b-c", "a-b", "z"]


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(FormatError, match="'a' is listed twice"):
        TarStream([TarEntry("a", DIRECTORY, 0o755), TarEntry("a", REGULAR, 0o644)], "t")


def test_names_must_be_utf8_without_control_characters() -> None:
    assert check_name("ok name ü", "x") == "ok name ü"
    with pytest.raises(FormatError, match="control character"):
        check_name("\x1f\x8bgzip", "x")
    with pytest.raises(FormatError, match="not UTF-8"):
        check_name(os.fsdecode(b"caf\xe9"), "x")


def test_tree_is_read_with_stamp_and_links_kept(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "run").write_bytes(b"#!/bin/sh\n")
    (tree / "run").chmod(0o700)
    (tree / "secret").write_bytes(b"s")
    (tree / "secret").chmod(0o600)
    (tree / "sub" / "out").symlink_to("../../../etc/passwd")
    (tree / "sub" / "abs").symlink_to("/etc/passwd")
    os.link(tree / "run", tree / "hard")
    link_to_tree = tmp_path / "link"
    link_to_tree.symlink_to(tree)  # the named source is followed
    stamp = Stamp(1234, 10, 20)
    entries = tree_entries(link_to_tree, "opt/x", stamp)
    data = TarStream(entries + parent_entries([e.name for e in entries], 1234), "t").read()
    got = {m.name: (m.type, m.mode, m.uid, m.gid, m.mtime, m.linkname, m.size) for m in members(data)}
    assert got == {
        "opt": (tarfile.DIRTYPE, 0o755, 0, 0, 1234, "", 0),
        "opt/x": (tarfile.DIRTYPE, 0o755, 10, 20, 1234, "", 0),
        "opt/x/hard": (tarfile.REGTYPE, 0o755, 10, 20, 1234, "", 10),
        "opt/x/run": (tarfile.REGTYPE, 0o755, 10, 20, 1234, "", 10),
        "opt/x/secret": (tarfile.REGTYPE, 0o644, 10, 20, 1234, "", 1),
        "opt/x/sub": (tarfile.DIRTYPE, 0o755, 10, 20, 1234, "", 0),
        "opt/x/sub/abs": (tarfile.SYMTYPE, 0o777, 10, 20, 1234, "/etc/passwd", 0),
        "opt/x/sub/out": (tarfile.SYMTYPE, 0o777, 10, 20, 1234, "../../../etc/passwd", 0),
    }
    assert [m.uname for m in members(data)] == [""] * 8


def test_special_files_and_missing_sources_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FormatError, match="not a regular file or directory"):
        tree_entries(tmp_path / "fifo", "x", Stamp())
    with pytest.raises(FormatError, match="not a regular file, directory or symbolic link"):
        tree_entries(tmp_path, "x", Stamp())
    with pytest.raises(FormatError, match="no such file or directory"):
        tree_entries(tmp_path / "absent", "x", Stamp())


def test_contents_stream_in_chunks_and_changes_are_caught(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(3 << 20) + b"tail")
    [entry] = tree_entries(big, "big", Stamp())
    stream = TarStream([entry], "t")
    sizes = []
    while chunk := stream.read(4 << 20):
        sizes.append(len(chunk))
    assert max(sizes) == 1 << 20  # never a whole file at once
    reader = TarReader(io.BytesIO(TarStream([entry], "t").read()), "t")
    [member] = list(iter(reader))[:1]
    assert member.size == (3 << 20) + 4
    big.write_bytes(b"short")
    with pytest.raises(FormatError, match="changed while the layer was written"):
        TarStream([entry], "t").read()


def test_gnu_tar_reads_it_back(tmp_path: Path) -> None:
    tar = need_tool("tar")
    entries = [
        TarEntry("d" * 120, DIRECTORY, 0o755),
        TarEntry("d" * 120 + "/ü" + "f" * 90, REGULAR, 0o644, source=tmp_path / "f", size=3),
        TarEntry("link", SYMLINK, 0o777, linkname="t" * 150),
    ]
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "x.tar").write_bytes(TarStream(entries, "t").read())
    listing = subprocess.run([tar, "-tf", str(tmp_path / "x.tar")], capture_output=True, check=True, text=True)
    assert listing.stdout.splitlines() == ["d" * 120 + "/", "d" * 120 + "/ü" + "f" * 90, "link"]
