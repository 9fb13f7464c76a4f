"""The layer codecs' pinned bytes: independent of the thread count and of how the input is chunked."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import pytest
import zstandard

from pyoci import compression
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import Compression

WRITE_SIZES = [1 << 20, 7919, (1 << 20) + 7, 3 << 20]


def layer_like(size: int = 10 << 20) -> bytes:
    """Deterministic bytes of mixed compressibility, with repeats 2 to 7 MiB back.

    64 KiB pieces: random bytes, text, or a copy of an earlier piece far enough back that only
    matching across jobs (a window beyond one 1 MiB job: long-distance matching) finds it.
    """
    rng = random.Random(20240601)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_./", k=rng.randint(2, 12))) for _ in range(3000)]
    piece = 64 << 10
    out = bytearray()
    while len(out) < size:
        kind = rng.random()
        if kind < 0.3:
            out += rng.randbytes(piece)
        elif kind < 0.6 and len(out) > 2 << 20:
            start = rng.randrange(max(0, len(out) - (7 << 20)), len(out) - (2 << 20))
            out += out[start : start + piece]
        else:
            text = b" ".join(rng.choices(words, k=piece // 6))
            out += text[:piece].ljust(piece, b"\n")
    return bytes(out[:size])


def compress(codec: Compression, data: bytes, threads: int, write_size: int, level: int | None = None) -> bytes:
    sink = io.BytesIO()
    writer = compression.open_writer(codec, sink, level, threads)
    view = memoryview(data)
    for start in range(0, len(data), write_size):
        writer.write(bytes(view[start : start + write_size]))
    writer.close()
    return sink.getvalue()


@pytest.fixture(scope="module")
def data() -> bytes:
    return layer_like()


ZSTD_DIGEST = "8b7a328691d66b94de6b83c1679b998d3ce7ce40cc2a7d6640e56e155867d255"
GZIP_DIGEST = "7c6f117ad9dc5cd4f33ee04e9bc2106c3d2cd6268586e9d41ba5facd1afa2bc0"


@pytest.mark.parametrize("codec", [Compression.ZSTD, Compression.GZIP])
def test_bytes_independent_of_threads_and_write_sizes(data: bytes, codec: Compression) -> None:
    outputs = {
        (threads, size): hashlib.sha256(compress(codec, data, threads, size)).hexdigest()
        for threads in (1, 2, 3)
        for size in WRITE_SIZES
    }
    assert len(set(outputs.values())) == 1, outputs
    pinned = ZSTD_DIGEST if codec is Compression.ZSTD else GZIP_DIGEST
    assert next(iter(outputs.values())) == pinned


def test_zstd_frame_window_and_round_trip(data: bytes) -> None:
    out = compress(Compression.ZSTD, data, 2, 1 << 20)
    params = zstandard.get_frame_parameters(out)
    assert params.window_size == 1 << compression.ZSTD_WINDOW_LOG  # what a decoder must hold: skopeo's 8 MiB too
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN and not params.has_checksum
    assert compression.open_reader(Compression.ZSTD, io.BytesIO(out)).read() == data


def test_zstd_finds_matches_beyond_one_job(data: bytes) -> None:
    # the long-distance matcher reaches 2-7 MiB back: without it 1 MiB jobs see about 1 MiB
    plain = zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters.from_level(3, threads=2, job_size=1 << 20)
    ).compress(data)
    assert len(compress(Compression.ZSTD, data, 2, 1 << 20)) < 0.9 * len(plain)


def test_background_blob_digest_is_of_the_bytes_written(tmp_path: Path, data: bytes) -> None:
    layout = ImageLayout.create(tmp_path / "layout")
    writer = layout.new_blob(background=True)
    buffer = bytearray(7919)
    view = memoryview(data)
    offset = 0
    for i, size in enumerate([1 << 20, 7919, 7919, 1, (1 << 20) + 7] * 4):
        chunk = view[offset : offset + size]
        if i % 3 == 0:
            writer.write(bytes(chunk))
        elif i % 3 == 1 and size <= len(buffer):
            buffer[:size] = chunk
            writer.write(memoryview(buffer)[:size])  # a view of a buffer reused at once
            buffer[:size] = bytes(size)
        else:
            copy = bytearray(chunk)
            writer.write(copy)
            copy[:] = bytes(len(copy))  # changed right after the call returned
        offset += size
    descriptor = writer.commit("application/octet-stream")
    written = layout.blob_path(descriptor.digest).read_bytes()
    assert written == data[:offset]
    assert descriptor.size == offset
    assert descriptor.digest.encoded == hashlib.sha256(written).hexdigest()
