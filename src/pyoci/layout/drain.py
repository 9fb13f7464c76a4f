"""A file sink that writes on a background thread, starting disk writeback as it goes.

Layer bytes arrive from the compressor (or the reader, for uncompressed output) on one thread, which
also hashes them (the caller's business: see :class:`pyoci.layout.store.BlobWriter`); this moves the
``write`` system calls to another thread, through a bounded queue (:data:`QUEUE_DEPTH` items), so
they overlap with reading, hashing and compressing. Every :data:`WRITEBACK_STEP` bytes it asks Linux
to start writing the range to disk (``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which does not wait),
so the final ``fsync`` finds little left to do: durability costs far less wall time than one fsync
of a multi-GiB file at the end.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable
from typing import BinaryIO, cast

from pyoci.fsutil import libc_function

QUEUE_DEPTH = 8
WRITEBACK_STEP = 32 << 20
_SYNC_FILE_RANGE_WRITE = 2


_sync_file_range = cast(
    Callable[[int, int, int, int], int] | None,
    libc_function("sync_file_range", [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]),
)


class DrainingWriter:
    """Writes to ``file`` on a background thread.

    Args:
        file: an open binary file (owned by the caller, who closes it after :meth:`close`).

    ``write`` returns as soon as the data is queued. :meth:`close` waits for the queue to drain and
    re-raises any error the thread met (e.g. ``OSError`` for a full disk); so does the next ``write``.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pyoci-blob-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes, /) -> int:
        """Queue ``data`` for writing; return its length (in bytes).

        Raises:
            OSError: an earlier write on the thread failed (a full disk, a read-only file system).
        """
        if self._error is not None:
            raise self._error
        self._queue.put(data)
        return len(data)

    def close(self) -> None:
        """Wait until everything queued is written; re-raise the thread's error (``OSError``)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        fd = self._file.fileno()
        started = 0
        written = 0
        while (chunk := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._file.write(chunk)
                written += len(chunk)
                if _sync_file_range is not None and written - started >= WRITEBACK_STEP:
                    self._file.flush()
                    _sync_file_range(fd, started, written - started, _SYNC_FILE_RANGE_WRITE)
                    started = written
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                self._error = exc
