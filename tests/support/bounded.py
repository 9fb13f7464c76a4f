"""Run the pyoci CLI in a child process under a time bound, measuring its peak memory (for bomb tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

MAX_RSS_MIB = 100
"""Peak resident memory a conversion may reach on any bomb, in MiB."""


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mib: float
    seconds: float


_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""
"""Runs its arguments and writes the child's peak RSS (KiB) to a file. Linux counts the memory of the
process a child was spawned from (vfork, then exec) in the child's ``ru_maxrss``; this small parent
keeps a large test process from showing up in the figure."""


def run_bounded(
    *args: str, feed: Iterable[bytes] | None = None, stdin: IO[bytes] | int | None = None, timeout: float = 60
) -> Outcome:
    """Run ``pyoci ARGS``; ``feed`` chunks are written to its stdin until it exits (an endless feed is fine).

    Fails the test when the child runs longer than ``timeout`` seconds.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, rss.name, sys.executable, "-m", "pyoci", *args],
            stdin=subprocess.PIPE if feed is not None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        out: list[bytes] = []
        err: list[bytes] = []
        threads = [
            threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
            threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
        ]
        if feed is not None:
            threads.append(threading.Thread(target=_feed, args=(proc.stdin, feed), daemon=True))
        for thread in threads:
            thread.start()
        try:
            returncode = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"pyoci {' '.join(args)} still ran after {timeout} s") from None
        seconds = time.monotonic() - started
        for thread in threads[:2]:
            thread.join(10)
        peak = int(rss.read() or 0) / 1024
    stdout, stderr = (b"".join(chunks).decode(errors="replace") for chunks in (out, err))
    return Outcome(returncode, stdout, stderr, peak, seconds)


def _feed(pipe: IO[bytes], chunks: Iterable[bytes]) -> None:
    try:
        for chunk in chunks:
            pipe.write(chunk)
        pipe.close()
    except (BrokenPipeError, ValueError, OSError):  # the child stopped reading: what an endless feed expects
        pass


def endless(first: bytes, filler: bytes = bytes(1 << 20)) -> Iterator[bytes]:
    """``first``, then ``filler`` forever."""
    yield first
    while True:
        yield filler


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE, fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    """One tar header (with any extended headers the format needs) for a member of ``size`` bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(fmt)


def member(name: str, data: bytes, fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    """A regular member: header, data, padding."""
    return header(name, len(data), fmt=fmt) + data + bytes(-len(data) % 512)


def streamed_member(name: str, size: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A regular member whose ``size`` bytes of data come from ``chunks`` (for members too large to build)."""
    yield header(name, size)
    yield from chunks
    yield bytes(-size % 512)


END = bytes(1024)
"""The tar end-of-archive marker."""
