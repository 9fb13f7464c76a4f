"""The layer pipeline: read -> sha256 of the uncompressed stream -> compress -> sha256 -> write.

The stages overlap on all cores: the reading thread hashes the uncompressed bytes (``hashlib``
releases the GIL) and hands fixed-size blocks to the codec (gzip: a process-wide pool of libdeflate
workers; zstd: libzstd's own threads); the codec's output is hashed by the blob writer as it is
handed over, and written to disk by a thread of the blob writer's own for large layers. Uncompressed
output is hashed once, on the reading thread (that digest is both the diff_id and the blob digest),
while the writer thread only writes. A gzip layer's codec may still finish while the next layer
streams in (:func:`feed_layer`). Every buffer is bounded (1 MiB reads, ``2 x threads`` gzip blocks in
flight, 1 MiB zstd jobs, 8 queued writes), so memory stays flat whatever the layer size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from pyoci import compression, mediatype, tarstream
from pyoci.digest import Digest, Digester
from pyoci.errors import ArchiveError
from pyoci.mediatype import Compression, LayerOptions
from pyoci.progress import NoProgress, Progress
from pyoci.streams import BlobSink, CountingReader, Readable, ReaderBase, TeeReader, read_exactly_head

CHUNK_SIZE = 1 << 20
"""Bytes read from the input per step."""


@dataclass(frozen=True)
class LayerResult:
    """What a layer became.

    Attributes:
        diff_id: sha256 of the uncompressed tar stream.
        media_type: the OCI layer media type matching the bytes written.
        input_compression: the compression the layer arrived with.
        is_tar: whether the uncompressed bytes start like a tar archive (image-spec ``layer.md``).
    """

    diff_id: Digest
    media_type: str
    input_compression: Compression
    is_tar: bool = True


def transcode_layer(
    source: Readable,
    sink: BlobSink,
    options: LayerOptions,
    where: str,
    progress: Progress | None = None,
) -> LayerResult:
    """Stream one layer from ``source`` into ``sink``, hashing it before and after compression.

    Args:
        source: the layer as stored in the archive (plain tar, gzip or zstd; detected by magic bytes).
        sink: where the blob goes (a layout's blob writer, or a hash only); it hashes the bytes
            written (the blob digest). It is finished on return.
        options: output codec, level, threads.
        where: the layer's name for error messages.
        progress: receives the count of ``source`` bytes consumed.

    Returns:
        The diff_id and the media type of the bytes written (the digest and size are the sink's).

    Raises:
        ArchiveError: the layer's compressed data is corrupt or truncated.
        LayoutError: a layout sink could not write the blob.
    """
    return feed_layer(source, sink, options, where, progress)()


def feed_layer(
    source: Readable,
    sink: BlobSink,
    options: LayerOptions,
    where: str,
    progress: Progress | None = None,
    size_hint: int | None = None,
) -> Callable[[], LayerResult]:
    """Read all of ``source`` now, and return a function that completes the layer.

    The split lets a caller read the next layer of a stream while the codec threads still compress
    the tail of this one: the returned function waits for the codec, finishes ``sink`` and returns
    the result (:func:`transcode_layer` calls it at once). A zstd layer's codec is finished here
    instead, and its context freed: two of libzstd's contexts (about 20 MiB each with the 8 MiB
    window) side by side would lift a conversion of several layers past 64 MiB. Arguments and errors as there; the
    returned function raises ``LayoutError`` for a failed write, after removing the blob.
    ``size_hint`` (the stored size in bytes, when known) caps the codec threads at one per gzip
    block, which saves starting idle threads for small layers and does not change the bytes.
    """
    progress = progress or NoProgress()
    input_compression, _, stream = compression.sniff(CountingReader(source, progress.advance))
    written = options.compression
    writer: compression.Writer | None = None
    digester = Digester()
    try:
        if options.keeps(input_compression):
            check = _TarCheck(compression.open_reader(input_compression, TeeReader(stream, sink)))
            _hash_into(check, digester.update)
        elif options.compression is Compression.NONE:
            check = _TarCheck(compression.open_reader(input_compression, stream))
            _hash_into(check, sink.write)
        else:
            threads = options.threads
            if size_hint is not None and input_compression is Compression.NONE:
                threads = max(1, min(threads, -(-size_hint // compression.GZIP_BLOCK_SIZE)))
            writer = compression.open_writer(options.compression, sink, options.level, threads)
            check = _TarCheck(compression.open_reader(input_compression, stream))
            while chunk := check.read(CHUNK_SIZE):
                digester.update(chunk)
                writer.write(chunk)
            if options.compression is Compression.ZSTD:
                writer.close()
                writer = None
    except BaseException as exc:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        sink.abort()
        if isinstance(exc, compression.DECODE_ERRORS) and compression.io_error(exc) is None:
            if input_compression is Compression.NONE:
                raise ArchiveError(f"{where}: cannot read layer data: {exc}") from exc
            raise ArchiveError(f"{where}: corrupt {input_compression.value} layer data: {exc}") from exc
        raise

    def complete() -> LayerResult:
        try:
            if writer is not None:
                writer.close()
            blob_digest = sink.finish()
        except BaseException:
            sink.abort()
            raise
        # uncompressed output: the blob is the tar, its digest is the diff_id (hashed once)
        diff = blob_digest if written is Compression.NONE else digester.finish()
        return LayerResult(diff, mediatype.layer_media_type(written), input_compression, check.is_tar)

    return complete


class _TarCheck(ReaderBase):
    """Passes a layer's uncompressed bytes through, noting whether they start like a tar archive.

    A layer is a tar stream (image-spec ``layer.md``): its first 512 bytes are a header with a
    valid checksum, or zeros (an empty archive); an empty stream passes too. Only noted, not
    raised: an archive may hold other files that no image uses.
    """

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._started = False
        self.is_tar = True

    def read(self, n: int = -1, /) -> bytes:
        if self._started:
            return self._source.read(n)
        self._started = True
        head = read_exactly_head(self._source, max(n, tarstream.BLOCK) if n >= 0 else tarstream.BLOCK)
        block = head[: tarstream.BLOCK]
        zeros = block == bytes(len(block))
        self.is_tar = zeros or (len(block) == tarstream.BLOCK and tarstream.header_checksum_ok(block))
        return head + self._source.read() if n < 0 else head


def _hash_into(stream: Readable, consume: Callable[[bytes], object]) -> None:
    while chunk := stream.read(CHUNK_SIZE):
        consume(chunk)
