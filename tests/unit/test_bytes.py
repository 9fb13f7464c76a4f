"""The byte core: the verifying reader, blob writers (commit, abort, expected digests), sinks, the draining writer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pyoci.digest import Digest, Digester
from pyoci.errors import DigestMismatchError, LayoutError, StreamNotConsumedError
from pyoci.layout.drain import DrainingWriter
from pyoci.layout.store import ImageLayout
from pyoci.streams import CountingReader, HashingSink, PrefixedReader, VerifyingReader

DATA = b"pyoci " * 1000


def read_all(reader: VerifyingReader, step: int = 777) -> bytes:
    parts = []
    while chunk := reader.read(step):
        parts.append(chunk)
    return b"".join(parts)


def test_verifying_reader_passes_exact_content() -> None:
    reader = VerifyingReader(io.BytesIO(DATA), Digest.of_bytes(DATA), len(DATA), "blob")
    assert read_all(reader) == DATA
    assert reader.read(10) == b""


@pytest.mark.parametrize(
    ("stored", "message", "expected", "actual"),
    [
        (DATA[:-1], "size: expected 6000 bytes, got 5999", 6000, 5999),
        (DATA + b"x", "size: expected 6000 bytes, got more", 6000, None),
        (DATA[:-1] + b"X", "digest: expected sha256:", None, None),
    ],
)
def test_verifying_reader_refuses_other_bytes(
    stored: bytes, message: str, expected: int | None, actual: int | None
) -> None:
    reader = VerifyingReader(io.BytesIO(stored), Digest.of_bytes(DATA), len(DATA), "blob")
    with pytest.raises(DigestMismatchError, match=message) as caught:
        read_all(reader)
    if expected is not None:
        assert caught.value.expected == expected and caught.value.actual == actual
    else:
        assert caught.value.expected == str(Digest.of_bytes(DATA))
        assert caught.value.actual == str(Digest.of_bytes(stored))


def test_verifying_reader_never_returns_bytes_past_the_size() -> None:
    reader = VerifyingReader(io.BytesIO(DATA + b"extra"), Digest.of_bytes(DATA), 10, "blob")
    with pytest.raises(DigestMismatchError):
        reader.read(-1)


def test_blob_writer_commit_and_wrong_expected_digest(tmp_path: Path) -> None:
    layout = ImageLayout.create(tmp_path / "l")
    writer = layout.new_blob()
    writer.write(DATA)
    with pytest.raises(DigestMismatchError, match="digest: expected sha256:0000"):
        writer.commit("application/octet-stream", Digest("sha256", "0" * 64))
    assert not writer.path.exists() and layout.temp_files() == []
    assert not layout.has_blob(Digest.of_bytes(DATA))
    good = layout.new_blob()
    good.write(DATA[:3000])
    good.write(memoryview(DATA)[3000:])
    descriptor = good.commit("application/octet-stream", Digest.of_bytes(DATA))
    assert (descriptor.digest, descriptor.size) == (Digest.of_bytes(DATA), len(DATA))
    assert layout.blob_path(descriptor.digest).read_bytes() == DATA


def test_blob_writer_abort_leaves_nothing_and_sha512_names(tmp_path: Path) -> None:
    layout = ImageLayout.create(tmp_path / "l")
    writer = layout.new_blob(background=True)
    writer.write(DATA)
    writer.abort()
    writer.abort()  # twice is fine
    assert layout.temp_files() == [] and sorted((layout.root / "blobs" / "sha256").iterdir()) == []
    long = layout.new_blob(algorithm="sha512")
    long.write(DATA)
    descriptor = long.commit("application/octet-stream")
    assert descriptor.digest == Digest.of_bytes(DATA, "sha512")
    assert (layout.root / "blobs" / "sha512" / descriptor.digest.encoded).read_bytes() == DATA


class _FailingFile(io.BytesIO):
    """A file whose writes fail after ``limit`` bytes, as a full disk does."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.limit:
            raise OSError(28, "No space left on device")
        return super().write(data)

    def fileno(self) -> int:
        return -1


def test_draining_writer_surfaces_the_thread_error() -> None:
    drain = DrainingWriter(_FailingFile(1000))  # type: ignore[arg-type]
    drain.write(b"a" * 800)
    drain.write(b"b" * 800)  # fails on the thread
    with pytest.raises(OSError, match="No space left"):
        drain.close()


def test_a_full_disk_is_a_layout_error_that_names_the_layout(tmp_path: Path) -> None:
    layout = ImageLayout.create(tmp_path / "l")
    writer = layout.new_blob()
    writer._file = _FailingFile(10)  # type: ignore[assignment]  # noqa: SLF001
    with pytest.raises(LayoutError, match=f"{layout.root}: cannot write a blob: No space left"):
        writer.write(DATA)
    writer.abort()


def test_sinks_and_readers() -> None:
    sink = HashingSink()
    sink.write(DATA[:10])
    sink.write(memoryview(DATA)[10:])
    assert sink.finish() == Digest.of_bytes(DATA) and sink.size == len(DATA)
    counted: list[int] = []
    reader = PrefixedReader(b"head", CountingReader(io.BytesIO(b"tail"), counted.append))
    assert reader.read(2) + reader.read(-1) == b"headtail" and sum(counted) == 4
    digester = Digester()
    digester.update(b"x")
    with pytest.raises(StreamNotConsumedError):
        _ = digester.digest


def test_a_verifying_reader_refuses_fewer_bytes_than_declared_however_it_is_read() -> None:
    digest = Digest.of_bytes(DATA)
    short = rf"^blob: size: expected {len(DATA) + 1} bytes, got {len(DATA)}$"
    for read in (lambda r: r.read_all(), lambda r: r.drain(), lambda r: r.read(len(DATA) + 1)):
        reader = VerifyingReader(io.BytesIO(DATA), digest, len(DATA) + 1, "blob")
        with pytest.raises(DigestMismatchError, match=short):
            read(reader)
            read(reader)
    reader = VerifyingReader(io.BytesIO(DATA + b"x"), digest, len(DATA), "blob")
    with pytest.raises(DigestMismatchError, match=rf"^blob: size: expected {len(DATA)} bytes, got more$"):
        reader.read_all()
    assert VerifyingReader(io.BytesIO(DATA), digest, len(DATA), "blob").read_all() == DATA
