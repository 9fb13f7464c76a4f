"""Hostile docker-archives (issue 12): bounded time and memory, one clean line, nothing written.

Bombs and endless inputs run the real CLI in a child process under a timeout, with its peak RSS
measured (``bounded.run_bounded``); the tar reader's own bounds are also checked in-process.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, run_pyoci
from support.archives import config_for, docker_archive, layer_tar, simple_archive
from support.bounded import END, MAX_RSS_MIB, Outcome, endless, header, member, run_bounded, streamed_member
from support.layouts import snapshot

from pyoci import convert, tarstream
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


def test_dev_zero_ends(tmp_path: Path) -> None:
    outcome = run_bounded("convert", "/dev/zero", str(tmp_path / "out"))
    assert_error(outcome, "/dev/zero: more than 1048576 bytes follow the tar end-of-archive marker at byte 0")
    assert not (tmp_path / "out").exists()


def test_archive_then_endless_zeros_on_stdin(tmp_path: Path) -> None:
    archive = simple_archive()
    end = len(archive.rstrip(b"\0")) + (-len(archive.rstrip(b"\0")) % BLOCK)
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=endless(archive))
    assert_error(outcome, f"stdin: more than 1048576 bytes follow the tar end-of-archive marker at byte {end}")
    assert not (tmp_path / "out").exists()


def test_gzip_archive_then_endless_zeros_on_stdin(tmp_path: Path) -> None:
    # the gzip reader skips zero padding between members: the raw zeros never become data
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=endless(gzip.compress(simple_archive())))
    assert_error(outcome, "stdin: more than 16777216 bytes of compressed input without any data (zero padding")


def test_gzip_header_with_endless_file_name(tmp_path: Path) -> None:
    flagged = b"\x1f\x8b\x08\x08" + bytes(6)  # FNAME set: a zero-terminated name follows
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=endless(flagged, b"n" * MiB))
    assert_error(outcome, "stdin: truncated or corrupt compressed archive: Gzip header exceeds input buffer size")


def test_endless_skippable_zstd_frames(tmp_path: Path) -> None:
    import zstandard

    skippable = b"\x50\x2a\x4d\x18" + (MiB - 8).to_bytes(4, "little") + bytes(MiB - 8)  # RFC 8878 3.1.2
    first = zstandard.ZstdCompressor().compress(b"")  # a frame with nothing in it: sniffed as zstd
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=endless(first + skippable, skippable))
    assert_error(outcome, "stdin: more than 16777216 bytes of compressed input without any data")


def test_gzip_of_endless_zeros(tmp_path: Path) -> None:
    member_of_zeros = gzip.compress(bytes(8 * MiB), compresslevel=1)  # many gzip members of zeros, no end
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=endless(member_of_zeros, member_of_zeros))
    assert_error(outcome, "stdin: more than 1048576 bytes follow the tar end-of-archive marker at byte 0")


def test_zstd_archive_then_zeros_is_corrupt(tmp_path: Path) -> None:
    import zstandard

    framed = zstandard.ZstdCompressor().compress(simple_archive())
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=endless(framed))
    assert_error(outcome, "stdin: truncated or corrupt compressed archive: zstd decompress error")


@pytest.mark.parametrize("tail", [bytes(MiB - 20 * BLOCK), b"not a tar" * 1000])
def test_up_to_a_mebibyte_after_the_end_is_ignored(tmp_path: Path, tail: bytes) -> None:
    plain = simple_archive()
    reference = convert(str(_write(tmp_path, "plain.tar", plain)), str(tmp_path / "ref")).images[0].manifest.digest
    for name, data in (("tail.tar", plain + tail), ("tail.tar.gz", gzip.compress(plain + tail))):
        result = convert(str(_write(tmp_path, name, data)), str(tmp_path / name.replace(".", "-")))
        assert result.images[0].manifest.digest == reference


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def assert_refused(tmp_path: Path, source: Path, message: str) -> None:
    """Converting ``source`` fails with one line holding ``message``; a new destination is not created
    and an existing layout is left byte for byte as it was."""
    existing = tmp_path / "existing"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{existing}:keep")
    before = snapshot(existing)
    for destination in (tmp_path / "new", existing):
        proc = run_pyoci("convert", str(source), f"oci:{destination}:t", check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1, err
        assert err.startswith("pyoci: error: ") and err.count("\n") == 1, err
        assert message in err, err
    assert not (tmp_path / "new").exists()
    assert snapshot(existing) == before


def test_corrupt_deflate_block_in_a_gzip_layer(tmp_path: Path) -> None:
    layer = layer_tar({"a": os.urandom(20000)})
    compressed = bytearray(gzip.compress(layer, mtime=0))
    compressed[10] = 0x07  # the first deflate block: final, of type 3, which does not exist (RFC 1951 3.2.3)
    manifest = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["l.tar.gz"]}]).encode()
    members = [("l.tar.gz", bytes(compressed), None), ("c.json", config_for([layer]), None)]
    path = _write(tmp_path, "a.tar", docker_archive([*members, ("manifest.json", manifest, None)]))
    assert_refused(tmp_path, path, f"{path}: l.tar.gz: corrupt gzip layer data: Error -1 Invalid deflate block found")


def test_closed_stdin(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyoci", "convert", "-", str(tmp_path / "out")],
        capture_output=True,
        preexec_fn=lambda: os.close(0),
        timeout=60,
    )
    assert (proc.returncode, proc.stderr.decode()) == (1, "pyoci: error: stdin: is closed, nothing to read\n")
    assert not (tmp_path / "out").exists()


def test_stdin_that_cannot_be_read(tmp_path: Path) -> None:
    with open(tmp_path / "w", "wb") as write_only:
        proc = subprocess.run(
            [sys.executable, "-m", "pyoci", "convert", "-", str(tmp_path / "out")],
            stdin=write_only,
            capture_output=True,
            timeout=60,
        )
    assert (proc.returncode, proc.stderr.decode()) == (1, "pyoci: error: stdin: cannot read: Bad file descriptor\n")


# --- memory: everything kept has one budget; peak RSS stays under MAX_RSS_MIB ---------------------------


def _manifest(config: str = "c.json", layers: tuple[str, ...] = ()) -> bytes:
    return member("manifest.json", json.dumps([{"Config": config, "RepoTags": None, "Layers": list(layers)}]).encode())


def _spaces(size: int) -> Iterator[bytes]:
    yield b"{"
    left = size - 2
    while left:
        yield b" " * min(left, MiB)
        left -= min(left, MiB)
    yield b"}"


def _archive_stream(*parts: bytes | Iterator[bytes]) -> Iterator[bytes]:
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            yield from part
    yield END


def test_many_small_members(tmp_path: Path) -> None:
    small = b"s" * 4096
    members = (member(f"m{i:06d}", small) for i in range(100_000))
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=_archive_stream(*members))
    assert_error(outcome, "stdin: too large: its members need more than 32 MiB of memory (JSON documents, small")


def test_many_links_and_directories(tmp_path: Path) -> None:
    target = "t" * 90
    parts: list[bytes] = []
    for i in range(90_000):
        info = tarfile.TarInfo(f"d{i:06d}/" + "x" * 80)
        info.type = tarfile.SYMTYPE if i % 2 else tarfile.DIRTYPE
        info.linkname = target if i % 2 else ""
        parts.append(info.tobuf(tarfile.USTAR_FORMAT))
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=_archive_stream(*parts))
    assert_error(outcome, "stdin: too large: its members need more than 32 MiB of memory")


def test_many_staged_members(tmp_path: Path) -> None:
    data = b"x" * 5000  # not JSON, over the small-member size: each goes to a temporary blob
    layout = tmp_path / "layout"
    convert(str(FIXTURES / "hello-amd64.tar"), str(layout))
    before = snapshot(layout)
    members = (member(f"m{i:06d}", data) for i in range(20_000))
    outcome = run_bounded("convert", "-", str(layout), feed=_archive_stream(*members), timeout=120)
    assert_error(outcome, "stdin: too large: its members need more than 32 MiB of memory", 60)
    assert snapshot(layout) == before


def test_large_json_looking_members(tmp_path: Path) -> None:
    # eight 60 MiB members that start like JSON; one of them is named as the config
    size = 60 * MiB
    parts = [streamed_member(f"j{i}.json", size, _spaces(size)) for i in range(8)]
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=_archive_stream(*parts, _manifest("j3.json")))
    assert_error(outcome, f"stdin: member 'j3.json': too large: {size} bytes, a JSON document may have 4194304")


def test_large_manifest_is_too_large_not_missing(tmp_path: Path) -> None:
    size = 65 * MiB
    feed = _archive_stream(streamed_member("manifest.json", size, _spaces(size)))
    outcome = run_bounded("convert", "-", str(tmp_path / "out"), feed=feed)
    assert_error(outcome, f"stdin: member 'manifest.json': too large: {size} bytes, a JSON document may have")


def test_config_with_800k_diff_ids(tmp_path: Path) -> None:
    ids = [f"sha256:{hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(800_000)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}})
    path = _write(tmp_path, "a.tar", member("c.json", config.encode()) + _manifest("c.json", ("l.tar",)) + END)
    outcome = run_bounded("convert", str(path), str(tmp_path / "out"))
    assert_error(outcome, f"{path}: member 'c.json': too large: {len(config)} bytes, a JSON document may have")


@pytest.mark.parametrize(("unit", "bound"), [(b"{},", 2796201), (b"[],", 2796201), (b"0.5,", 1048576)])
def test_json_that_parses_into_many_objects(tmp_path: Path, unit: bytes, bound: int) -> None:
    # 4 MiB of '[{},{},...]' parses into 100 MiB of dictionaries
    body = unit * (4 * MiB // len(unit) - 1)
    manifest = b"[" + body[:-1] + b"]"
    path = _write(tmp_path, "a.tar", member("manifest.json", manifest) + END)
    outcome = run_bounded("convert", str(path), str(tmp_path / "out"))
    assert_error(outcome, f"{path}: member 'manifest.json': too large: up to {bound} JSON values, a document may have")


def test_everything_just_under_the_bounds(tmp_path: Path) -> None:
    # six JSON documents of 4 MiB kept, and a manifest.json of 4 MiB holding nearly the most values
    # allowed: all bounds hold, the parse runs, and memory stays under the limit
    entries = [b'"%013d"' % i for i in range(260_000)]  # one string object of 13 characters each
    manifest = b"[" + b",".join(entries) + b"]"
    assert len(manifest) < 4 * MiB
    docs = [member(f"d{i}.json", b"[" + b" " * (4 * MiB - 2) + b"]") for i in range(6)]
    path = _write(tmp_path, "a.tar", b"".join(docs) + member("manifest.json", manifest) + END)
    outcome = run_bounded("convert", str(path), str(tmp_path / "out"))
    assert_error(outcome, f"{path}: manifest.json: entry 0 is not an object")


def test_layers_are_not_charged_to_memory(tmp_path: Path) -> None:
    layers = [layer_tar({"f": os.urandom(8 * MiB)}) for _ in range(3)]
    body = [(f"l{i}.tar", layer, None) for i, layer in enumerate(layers)]
    manifest = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": [n for n, _, _ in body]}]).encode()
    archive = docker_archive([*body, ("c.json", config_for(layers), None), ("manifest.json", manifest, None)])
    path = _write(tmp_path, "a.tar", archive)
    outcome = run_bounded("convert", str(path), f"oci:{tmp_path / 'out'}:t")
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.peak_rss_mib <= MAX_RSS_MIB
