"""Layer compression codecs with pinned, deterministic settings, and detection by magic bytes.

gzip is written by libdeflate (the ``deflate`` package) in pigz ``--independent`` style: the stream
is cut into fixed 1 MiB blocks, each compressed on a process-wide thread pool into a gzip member of
its own (RFC 1952 section 2.2 allows any number of members; Go, containerd, gzip(1), Python and
ISA-L read them all), with mtime 0, no file name and OS byte 255. The pool is shared by all layers,
so a stream of small layers keeps every core busy too. libdeflate was chosen by measurement
(``benchmarks/README.md``): at level 2 it writes output no larger than skopeo's in half its time;
ISA-L is faster but 7% larger at every level.

zstd is written by libzstd (``zstandard``) in its multi-threaded mode even for one thread, because
single-threaded mode writes different bytes, and with the content size left out (the size of a
stream is not known in advance). Fixed 1 MiB jobs keep memory flat; an 8 MiB window with libzstd's
long-distance matcher lets every job match back as far as skopeo's zstd does (see
:data:`ZSTD_WINDOW_LOG`).

With fixed block and job sizes and the pinned library versions, the bytes depend neither on the
thread count nor on how the input was chunked. Levels are each library's own scale: gzip
(libdeflate) 1-12, zstd 1-19. gzip input is read by ISA-L (``isal``), the fastest inflate here.
"""

from __future__ import annotations

import io
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Protocol, cast

import deflate
import zstandard
from isal import igzip, igzip_lib

from pyoci.mediatype import Compression, check_level
from pyoci.streams import PrefixedReader, Readable, Sink, read_exactly_head

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAGIC_LENGTH = 4
GZIP_BLOCK_SIZE = 1 << 20
"""Input bytes per independently compressed gzip block; part of what decides the output bytes."""

ZSTD_JOB_SIZE = 1 << 20
"""zstd multi-threaded job size in bytes: part of what decides the bytes. libzstd holds the window
plus three jobs of input, and a compressed buffer per job in flight, so memory grows with the job
size: before the long-distance window below, a whole conversion of an 8 GiB layer at 2 threads
peaked at 54 MiB with 1 MiB jobs, 64.2 MiB with 2 MiB jobs and 85 MiB with level 3's default 8 MiB
(benchmarks/README.md), at the same speed."""

ZSTD_WINDOW_LOG = 23
"""log2 of the zstd window (8 MiB, as skopeo's zstd writes), with long-distance matching on: part of
what decides the bytes, at every level. A job of the multi-threaded mode sees only itself and a
window/8 overlap of the job before; the long-distance matcher, which libzstd runs over the stream in
order, finds matches anywhere in the window. Chosen by measurement (``benchmarks/README.md``, layers
``usr-256M`` and ``usr-1G``, level 3, 2 threads): 86,307,243 and 315,339,625 bytes, 0.992x and
0.981x skopeo's (the 2 MiB window without it: 1.116x and 1.018x), for 14 % more codec CPU (4.04
instead of 3.53 s per GiB, hashing included) and 6 MiB more memory (a whole conversion peaks at
55-61 MiB up to 8 GiB layers). A 4 MiB window is 1.015x skopeo at 256 MiB, a 16 MiB one needs 8 MiB
more; level 2 with this window is 1.032x. The bytes do not depend on the thread count (1-3 checked)."""


def detect(head: bytes) -> Compression:
    """Return the compression whose magic number starts ``head`` (its first 4 or more bytes).

    gzip is ``1f 8b`` (RFC 1952), zstd is ``28 b5 2f fd`` (RFC 8878); anything else is NONE.
    """
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


ZSTD_MAX_WINDOW = 1 << 25
"""Largest zstd window read, in bytes (32 MiB): a frame asking for more (``zstd --long=27`` and up,
``--ultra -20`` and up) is refused instead of allocating its window, which keeps reading within
pyoci's memory bound. Docker, containerd, skopeo and pyoci itself write windows of 8 MiB or less."""


class Writer(Protocol):
    """The part of a binary file a compressing writer offers."""

    def write(self, data: bytes, /) -> int:
        """Compress and write ``data``."""
        ...

    def close(self) -> None:
        """Flush all output; the sink is left open."""
        ...


class _Passthrough:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def write(self, data: bytes, /) -> int:
        return self._sink.write(data)

    def close(self) -> None:
        pass


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    pool = _pools.get(threads)
    if pool is None:
        pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="pyoci-gzip")
    return pool


def _gzip_member(block: bytes, level: int) -> bytes:
    """One complete gzip member holding ``block`` (libdeflate releases the GIL while compressing).

    Returned as immutable bytes, copied here on the worker: a background blob writer takes bytes as
    they are and would otherwise copy each member on the reading thread (which cost 3 MiB more peak
    memory at 1 GiB, benchmarks/README.md).
    """
    return bytes(deflate.gzip_compress(block, level))


class _BlockGzipWriter:
    """Independent gzip members of fixed-size blocks, compressed in parallel, written in order.

    At most ``2 * threads`` blocks are in flight, so memory stays near ``4 * threads`` MiB.
    """

    def __init__(self, sink: Sink, level: int, threads: int) -> None:
        self._sink = sink
        self._level = level
        self._pool = _pool(threads)
        self._limit = 2 * threads
        self._pending = bytearray()
        self._in_flight: deque[Future[bytes]] = deque()
        self._empty = True

    def write(self, data: bytes, /) -> int:
        if not self._pending and len(data) == GZIP_BLOCK_SIZE:
            self._submit(data)
            return len(data)
        self._pending += data
        while len(self._pending) >= GZIP_BLOCK_SIZE:
            self._submit(bytes(self._pending[:GZIP_BLOCK_SIZE]))
            del self._pending[:GZIP_BLOCK_SIZE]
        return len(data)

    def _submit(self, block: bytes) -> None:
        self._empty = False
        self._in_flight.append(self._pool.submit(_gzip_member, block, self._level))
        while len(self._in_flight) > self._limit:
            self._sink.write(self._in_flight.popleft().result())

    def close(self) -> None:
        if self._pending or self._empty:  # an empty stream is still one (empty) gzip member
            self._submit(bytes(self._pending))
            self._pending.clear()
        while self._in_flight:
            self._sink.write(self._in_flight.popleft().result())


def open_writer(compression: Compression, sink: Sink, level: int | None, threads: int) -> Writer:
    """Return a writer that compresses into ``sink`` (left open on close).

    Args:
        compression: the codec.
        sink: binary file object receiving compressed bytes.
        level: codec level (see :func:`check_level`); None for the default.
        threads: worker threads for the codec, >= 1; does not change the bytes.
    """
    level = check_level(compression, level)
    threads = max(1, threads)
    if compression is Compression.GZIP:
        assert level is not None  # check_level gives gzip its default
        return _BlockGzipWriter(sink, level, threads)
    if compression is Compression.ZSTD:
        assert level is not None  # check_level gives zstd its default
        params = zstandard.ZstdCompressionParameters.from_level(
            level,
            threads=threads,
            job_size=ZSTD_JOB_SIZE,
            window_log=ZSTD_WINDOW_LOG,
            enable_ldm=True,
            write_content_size=False,
            write_checksum=False,
        )
        compressor = zstandard.ZstdCompressor(compression_params=params)
        return cast(Writer, compressor.stream_writer(cast(BinaryIO, sink), closefd=False, write_return_read=True))
    return _Passthrough(sink)


def sniff(source: Readable) -> tuple[Compression, bytes, Readable]:
    """Detect the compression of ``source`` by its magic bytes, without losing them.

    Returns:
        The compression, the first bytes read (empty for an empty source), and a reader that yields
        all of ``source`` from its first byte (pass it to :func:`open_reader`).
    """
    head = read_exactly_head(source, MAGIC_LENGTH)
    return detect(head), head, PrefixedReader(head, source)


def open_reader(compression: Compression, source: Readable) -> Readable:
    """Return a file object that reads the decompressed bytes of ``source``.

    gzip streams of several members (as pigz and pyoci write) and zstd streams of several frames
    are read whole. Errors in the compressed data surface as exceptions from ``read`` (those of
    :data:`DECODE_ERRORS`, told from the disk's by :func:`io_error`); callers turn them into
    :class:`~pyoci.errors.ArchiveError`.
    """
    if compression is Compression.GZIP:
        # igzip's plain reader, not its threaded one: a reader thread left blocked by a caller that
        # stops early (a corrupt layer, a failed check) would hang the interpreter at exit
        return cast(Readable, igzip.GzipFile(fileobj=cast(BinaryIO, source), mode="rb"))  # type: ignore[no-untyped-call]
    if compression is Compression.ZSTD:
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            cast(BinaryIO, source), read_across_frames=True, closefd=False
        )
        return io.BufferedReader(reader, buffer_size=1 << 20)
    return source


DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    OverflowError,
    cast(type[Exception], igzip_lib.IsalError),  # its stub declares an instance, not a class
    zstandard.ZstdError,
)
"""Exceptions the readers of :func:`open_reader` raise on corrupt or truncated compressed data: ISA-L's
``IsalError`` for an invalid deflate block, ``OSError`` for a bad gzip header or CRC, ``OverflowError``
for a gzip header longer than ISA-L's 512 KiB buffer, ``EOFError`` for a truncated stream, ``ZstdError``
for zstd."""


def io_error(exc: BaseException) -> OSError | None:
    """``exc`` when it is an ``OSError`` with an ``errno`` (``EIO``, ``ENOSPC``): the disk's or a file's.

    Such an error is raised from the same reads as :data:`DECODE_ERRORS` (of which ``OSError`` is one,
    for a bad gzip header or CRC, with no ``errno``), but it is not the data's: callers report it as
    such, never as corrupt data. None: ``exc`` is not one.
    """
    return exc if isinstance(exc, OSError) and exc.errno is not None else None
