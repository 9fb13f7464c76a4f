"""tqdm progress bars on stderr for the library's :class:`~pyoci.progress.Progress` protocol."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Never

from pyoci.progress import NoProgress, Progress

if TYPE_CHECKING:
    from tqdm import tqdm


class TqdmProgress:
    """One tqdm bar (bytes) per blob, on stderr; forks get bars of their own and count toward this one.

    Args:
        parent: the progress a fork also reports its bytes to.
    """

    def __init__(self, parent: TqdmProgress | None = None) -> None:
        self._bar: tqdm[Never] | None = None
        self._parent = parent
        self._lock = threading.Lock()

    def start(self, name: str, total: int) -> None:
        """Open a bar for ``name``."""
        from tqdm import tqdm  # only when bars are shown: a command in CI (no terminal) never loads it

        label = name if len(name) <= 40 else "..." + name[-37:]
        self._bar = tqdm(
            total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=False, file=sys.stderr
        )

    def advance(self, count: int) -> None:
        """Advance the bar by ``count`` bytes."""
        if self._bar is not None:
            self._bar.update(count)
        if self._parent is not None:
            self._parent.advance_shared(count)

    def advance_shared(self, count: int) -> None:
        """Advance the bar by ``count`` bytes from a fork's thread."""
        with self._lock:
            if self._bar is not None:
                self._bar.update(count)

    def fork(self) -> TqdmProgress:
        """A bar for one of several blobs transferred at once."""
        return TqdmProgress(self)

    def finish(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(quiet: bool) -> Progress:
    """Bars when stderr is a terminal and ``quiet`` is false; otherwise nothing."""
    if quiet or not sys.stderr.isatty():
        return NoProgress()
    return TqdmProgress()
