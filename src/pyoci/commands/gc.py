"""``pyoci untag`` and ``pyoci gc``: remove a tag; remove what nothing reachable from index.json uses.

Reachability (image-spec ``image-layout.md``: index.json is the entry point; ``image-index.md``,
``manifest.md``): from each index.json entry, an image index reaches its ``manifests`` (and
``subject``), an image manifest its ``config``, ``layers`` (and ``subject``); any other media type
is kept and not looked into. Every index and manifest on the way is read and verified: when one is
missing or corrupt, gc stops before deleting anything, since it cannot know what that one uses.

Concurrency (see :mod:`pyoci.layout.store`): gc holds the exclusive lock on ``blobs/`` for its whole
run, which every writer holds shared from its first blob to its index.json update, so a blob that a
running writer has written but not yet referenced is never deleted; gc waits for such writers. A
temporary file or directory (``.pyoci-tmp-<pid>-...``) is removed only when that process is gone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyoci import walk
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, LayoutError, TagError
from pyoci.fsutil import fsync_dir, process_alive, temp_pid
from pyoci.layout.store import INDEX_FILE, ImageLayout
from pyoci.reference import LayoutReference, Reference, check_layout_tag, layout_directory

BLOB = "blob"
TEMP = "temp"


@dataclass(frozen=True)
class UntagResult:
    """What :func:`untag` removed.

    Attributes:
        layout: the layout directory.
        tag: the tag removed.
        removed: the index.json entries removed (one, or several holding the same tag).
    """

    layout: Path
    tag: str
    removed: tuple[Descriptor, ...]


def untag(reference: Reference | str) -> UntagResult:
    """Remove a tag (every index.json entry whose ``org.opencontainers.image.ref.name`` is it).

    Blobs stay until :func:`gc`. Tags are index.json annotations (image-spec ``image-layout.md``).

    Args:
        reference: ``oci:DIR:TAG``, or ``DIR:TAG`` (split at the last colon).

    Returns:
        The entries removed.

    Raises:
        FormatError: no tag in the reference.
        LayoutError: not a layout; TagError when the tag is absent.
    """
    ref = layout_directory(reference, "untag works on")
    if ref.tag is None and isinstance(reference, str) and ref.path == reference:
        path, sep, tag = reference.rpartition(":")
        if sep and path and tag and "/" not in tag:
            ref = LayoutReference(path, check_layout_tag(tag, f"reference {reference!r}"))
    if ref.tag is None:
        raise FormatError(f"{ref}: name the tag to remove (LAYOUT:TAG)")
    layout = ImageLayout.open(ref.path)
    removed: list[Descriptor] = []
    tag = ref.tag

    def change(current: list[Descriptor]) -> list[Descriptor]:
        removed.extend(d for d in current if d.ref_name == tag)
        if not removed:
            raise TagError(f"{layout.root}: no image tagged {tag!r} in {INDEX_FILE}")
        return [d for d in current if d.ref_name != tag]

    layout.update_index(change)
    return UntagResult(layout.root, tag, tuple(removed))


@dataclass(frozen=True)
class Garbage:
    """One file or directory :func:`gc` removed (or, in a dry run, would remove).

    Attributes:
        path: its path relative to the layout root.
        size: bytes (for a directory, of the files in it).
        kind: ``"blob"`` or ``"temp"`` (a leftover temporary file or directory).
    """

    path: str
    size: int
    kind: str

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"path": self.path, "size": self.size, "kind": self.kind}


@dataclass(frozen=True)
class GcResult:
    """What :func:`gc` removed.

    Attributes:
        layout: the layout directory.
        removed: what was removed (or would be, when ``dry_run``), blobs first, each list sorted.
        kept: how many blobs are reachable.
        dry_run: True when nothing was deleted.
    """

    layout: Path
    removed: tuple[Garbage, ...]
    kept: int
    dry_run: bool

    @property
    def freed(self) -> int:
        """Bytes removed (or that would be)."""
        return sum(item.size for item in self.removed)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "layout": str(self.layout),
            "dry_run": self.dry_run,
            "removed": [item.to_json() for item in self.removed],
            "freed": self.freed,
            "kept": self.kept,
        }


def reachable(layout: ImageLayout) -> set[Digest]:
    """Return the digests of every blob reachable from ``index.json`` (see the module docstring).

    Entries of ``index.json`` and of image indexes must be image manifests or indexes whose
    ``mediaType`` agrees with their descriptor: anything else could hold references gc cannot see,
    so gc refuses rather than delete what they point to. The graph is the one :mod:`pyoci.walk`
    follows, ``subject`` referrers included.

    Raises:
        BlobNotFoundError: an index or manifest on the way is missing.
        DigestMismatchError: one is corrupt.
        LayoutError: an entry gc cannot follow (an unknown media type), or a document that does not
            parse or contradicts the media type of its descriptor.

    Every message ends with "nothing removed".
    """
    seen: set[Digest] = set()
    try:
        for node in walk.walk(layout, layout.read_index().manifests, subjects=True):
            if node.kind == walk.UNKNOWN and node.via in ("root", "manifests"):
                raise LayoutError(
                    f"{layout.root}: {node.digest}: gc cannot follow media type {node.descriptor.media_type!r}"
                )
            seen.add(node.digest)
    except FormatError as exc:
        raise LayoutError(f"{exc}; nothing removed") from exc
    except LayoutError as exc:
        raise type(exc)(f"{exc}; nothing removed") from exc
    return seen


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    return path.lstat().st_size


def gc(layout: Reference | str | os.PathLike[str], *, dry_run: bool = False) -> GcResult:
    """Remove blobs that nothing reachable from index.json references, and leftover temporary files.

    index.json is the layout's entry point (image-spec ``image-layout.md``); see :func:`reachable`.

    Waits while another pyoci process is writing into the layout (see the module docstring).

    Args:
        layout: ``DIR`` or ``oci:DIR``.
        dry_run: only list what would be removed.

    Returns:
        What was removed, with sizes in bytes.

    Raises:
        FormatError: a malformed reference.
        LayoutError: not a layout; BlobNotFoundError / DigestMismatchError / FormatError when an
            index or manifest reachable from index.json is missing, corrupt or unreadable (nothing is
            removed then).
    """
    ref = layout_directory(layout, "gc works on")
    if ref.tag is not None:
        raise FormatError(f"{ref}: gc works on a whole layout; drop the tag")
    store = ImageLayout.open(ref.path)
    with store.gc_lock():
        keep = reachable(store)
        garbage: list[tuple[Path, Garbage]] = []
        blobs = store.root / "blobs"
        for algorithm in sorted(p for p in blobs.iterdir() if p.is_dir()):
            for path in sorted(algorithm.iterdir()):
                if not path.is_file() or path.is_symlink():
                    continue
                try:
                    digest = Digest(algorithm.name, path.name)
                except FormatError:
                    continue  # not a blob name: not ours to remove
                if digest not in keep:
                    garbage.append((path, Garbage(path.relative_to(store.root).as_posix(), _size(path), BLOB)))
        for path in store.temp_files():
            pid = temp_pid(path.name)
            if pid is not None and not process_alive(pid):
                garbage.append((path, Garbage(path.name, _size(path), TEMP)))
        if not dry_run:
            for path, _ in garbage:
                try:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise LayoutError(f"{path}: cannot remove: {exc.strerror}") from exc
            for directory in {path.parent for path, _ in garbage}:
                fsync_dir(directory)
        return GcResult(store.root, tuple(item for _, item in garbage), len(keep), dry_run)
