"""The progress protocol the library reports to; the library itself never prints."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives byte counts while a blob streams through a pipeline, one blob at a time.

    Work done in parallel reports to a :meth:`fork` each, which may also count toward this one.
    """

    def start(self, name: str, total: int) -> None:
        """A blob called ``name`` of ``total`` input bytes starts."""
        ...

    def advance(self, count: int) -> None:
        """``count`` more input bytes were consumed."""
        ...

    def finish(self) -> None:
        """The current blob is done."""
        ...

    def fork(self) -> Progress:
        """A progress for one of several blobs transferred at once (its bytes also count toward this one)."""
        ...


class NoProgress:
    """A :class:`Progress` that reports nothing."""

    def start(self, name: str, total: int) -> None:
        """Ignore the start."""

    def advance(self, count: int) -> None:
        """Ignore the count."""

    def finish(self) -> None:
        """Ignore the end."""

    def fork(self) -> Progress:
        """Itself: nothing to report either way."""
        return self
