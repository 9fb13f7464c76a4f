"""``pyoci untag`` and ``pyoci gc``: remove a tag; remove what nothing kept uses, from a layout or a static tree.

**Layouts.** Reachability (image-spec ``image-layout.md``: index.json is the entry point; ``image-index.md``,
``manifest.md``): from each index.json entry, an image index reaches its ``manifests`` (and
``subject``), an image manifest its ``config``, ``layers`` (and ``subject``); any other media type
is kept and not looked into. Every index and manifest on the way is read and verified: when one is
missing or corrupt, gc stops before deleting anything, since it cannot know what that one uses.

Concurrency (see :mod:`pyoci.layout.store`): gc holds the exclusive lock on ``blobs/`` for its whole
run, which every writer holds shared from its first blob to its index.json update, so a blob that a
running writer has written but not yet referenced is never deleted; gc waits for such writers. A
temporary file or directory (``.pyoci-tmp-<pid>-...``) is removed only when that process is gone.

**Static registry trees** (``static:DIR``, :mod:`pyoci.targets.static`), with retention rules: a tag is
kept when a ``keep`` glob pattern matches it (``TAG`` patterns match the tag in every repository;
``REPO:TAG`` patterns the repository too) or when it is among the ``keep_last`` newest tags of its
repository, by the image's ``created`` (image-spec ``config.md``; an index: the newest of its
platforms; no date: oldest; ties: the greater tag name first). With no rule every tag is kept. A
pattern is a shell glob (``*``, ``?``, ``[...]``; an empty one or a ``[`` without ``]`` is refused); one
that matches no tag is noted, and when the rules then keep no tag at all, gc stops before removing
anything (a typo in a pattern would otherwise remove every tag). Then,
per repository (blobs are files of each repository, hard-linked between them: removing one
repository's link never removes a blob another repository still uses):

* kept: everything the kept tags reach (indexes, manifests, configs, layers, ``subject``), the
  referrers of anything kept (manifests by digest whose ``subject`` is kept: signatures, SBOMs), and
  tags of the distribution-spec referrers tag schema (``sha256-HEX``, ``sha256-HEX.sig``) whose
  digest is kept; these are not counted by ``keep_last``;
* removed, parents first: ``tags/list`` and ``_catalog`` are rewritten first, then the other tags,
  indexes and manifests by digest, blobs, a repository left with nothing, and temporary files of
  processes that are gone.

gc holds the tree's exclusive lock: it waits for running exports and syncs, and they wait for it. It
stops before removing anything when a kept image cannot be read whole, and never removes through a
symbolic link (a directory of the tree that points elsewhere).

**Registry repositories** (``docker://HOST/REPO``): the same rules over the repository's tags
(distribution-spec ``spec.md`` "Listing Tags"), then the manifests and indexes only removed tags
reach are deleted by digest ("Deleting Manifests"), each index before its children; anything a kept
tag reaches (a child of a kept index, an image a kept tag shares) is never deleted. A removed tag
whose image a kept tag still uses can only go by tag (``DELETE /manifests/TAG``, which not every
registry allows: a note says so). Blobs are left to the registry's own garbage collection
(``docker-registry garbage-collect``). The registry must allow deletes.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyoci import mediatype, walk
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, LayoutError, PyociError, RegistryError, TagError
from pyoci.fsutil import fsync_dir, process_alive, temp_pid
from pyoci.layout.store import INDEX_FILE, ImageLayout
from pyoci.manifest import Index, Manifest
from pyoci.reference import (
    ImageName,
    Reference,
    StaticReference,
    layout_directory,
    parse,
)
from pyoci.targets.options import RegistryOptions
from pyoci.targets.referrers import referrer_subject
from pyoci.targets.session import registry_client
from pyoci.targets.static import ManifestFile, StaticRepository, StaticTree

BLOB = "blob"
TEMP = "temp"
TAG = "tag"
MANIFEST = "manifest"
INDEX = "index"
LISTING = "listing"
"""distribution-spec ``spec.md`` "Referrers Tag Schema" (``<alg>-<ref>``), and cosign's ``.sig``/``.att`` tags."""
_EPOCH = datetime.min.replace(tzinfo=UTC)


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
        reference: ``oci:DIR:TAG``, or ``DIR:TAG`` (see :func:`pyoci.reference.layout_directory`).

    Returns:
        The entries removed.

    Raises:
        FormatError: no tag in the reference.
        LayoutError: not a layout; TagError when the tag is absent.
    """
    ref = layout_directory(reference, "untag works on")
    layout = ImageLayout.open(ref.path)  # first: "DIR:TAG" with no DIR is a missing layout, not a missing tag
    if ref.tag is None:
        raise FormatError(f"{ref}: name the tag to remove (LAYOUT:TAG)")
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
        path: its path relative to the layout or tree root.
        size: bytes (for a directory, of the files in it).
        kind: ``"blob"``, ``"temp"`` (a leftover temporary file or directory); in a static tree also
            ``"tag"``, ``"index"``, ``"manifest"`` (by digest) and ``"listing"`` (a removed
            repository's ``tags/list``).
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
        layout: the layout directory (or the static tree's), or ``docker://HOST/REPO``.
        removed: what was removed (or would be, when ``dry_run``): for a layout blobs first, each
            list sorted; for a static tree in the order of removal.
        kept: how many blobs are reachable (a static tree: distinct digests kept, over its repositories).
        dry_run: True when nothing was deleted.
        kept_tags: a static tree's tags kept, ``REPO:TAG``, sorted.
        removed_tags: its tags removed, ``REPO:TAG``, sorted.
        still_linked: bytes of removed files whose data another link in the tree keeps (a blob
            hard-linked into a repository that still uses it): not freed.
        notes: remarks that are not errors (a registry tag that could not go alone, a ``--keep``
            pattern that matched no tag).
    """

    layout: Path | str
    removed: tuple[Garbage, ...]
    kept: int
    dry_run: bool
    kept_tags: tuple[str, ...] = field(default=())
    removed_tags: tuple[str, ...] = field(default=())
    still_linked: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def freed(self) -> int:
        """Bytes freed on disk (or that would be)."""
        return sum(item.size for item in self.removed) - self.still_linked

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "layout": str(self.layout),
            "dry_run": self.dry_run,
            "removed": [item.to_json() for item in self.removed],
            "freed": self.freed,
            "kept": self.kept,
            "kept_tags": list(self.kept_tags),
            "removed_tags": list(self.removed_tags),
            "notes": list(self.notes),
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
    with _nothing_removed():
        for node in walk.walk(layout, layout.read_index().manifests, subjects=True):
            if node.kind == walk.UNKNOWN and node.via in ("root", "manifests"):
                raise LayoutError(
                    f"{layout.root}: {node.digest}: gc cannot follow media type {node.descriptor.media_type!r}"
                )
            seen.add(node.digest)
    return seen


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    return path.lstat().st_size


def gc(
    layout: Reference | str | os.PathLike[str],
    *,
    dry_run: bool = False,
    keep: Sequence[str] = (),
    keep_last: int | None = None,
    options: RegistryOptions | None = None,
) -> GcResult:
    """Remove what nothing kept uses (see the module docstring), and leftover temporary files.

    For a layout, index.json is the entry point (image-spec ``image-layout.md``; see
    :func:`reachable`); for a static tree, the tags the retention rules keep.

    Waits while another pyoci process is writing into the layout or tree (see the module docstring).

    Args:
        layout: ``DIR`` or ``oci:DIR`` (a layout), ``static:DIR`` (a static registry tree) or
            ``docker://HOST/REPO`` (a registry repository).
        dry_run: only list what would be removed.
        keep: static trees and registries: glob patterns of tags to keep (``TAG`` or ``REPO:TAG``).
        keep_last: static trees and registries: keep the N newest tags of each repository.
        options: how to reach a registry (TLS, credentials, retries).

    Returns:
        What was removed, with sizes in bytes.

    Raises:
        FormatError: a malformed reference, ``keep_last`` below 1, retention rules for a layout, a
            malformed ``keep`` pattern (empty, a ``[`` without ``]``), or a pattern that matches no tag
            while the rules keep no tag at all (nothing is removed then: a typo would remove every tag).
        LayoutError: not a layout or tree; BlobNotFoundError / DigestMismatchError / FormatError
            when an index or manifest that is kept is missing, corrupt or unreadable (nothing is
            removed then).
        RegistryError: the registry refused a request (a delete where deletes are disabled: what
            was deleted before stays deleted; the message names the manifest).
    """
    if keep_last is not None and keep_last < 1:
        raise FormatError(f"--keep-last {keep_last}: expected 1 or more")
    for pattern in keep:
        check_pattern(pattern)
    parsed = parse(layout, bare="layout") if not isinstance(layout, os.PathLike) else None
    if isinstance(parsed, StaticReference):
        return _gc_static(parsed, tuple(keep), keep_last, dry_run)
    if isinstance(parsed, ImageName):
        return _gc_registry(parsed, tuple(keep), keep_last, dry_run, options or RegistryOptions())
    if keep or keep_last is not None:
        raise FormatError(
            f"{layout}: --keep and --keep-last work on static: trees and docker:// repositories; "
            "remove a layout's tags with pyoci untag"
        )
    ref = layout_directory(layout, "gc works on")
    if ref.tag is not None:
        raise FormatError(f"{ref}: gc works on a whole layout; drop the tag")
    store = ImageLayout.open(ref.path)
    with store.gc_lock():
        live = reachable(store)
        garbage: list[tuple[Path, Garbage]] = []
        blobs = store.root / "blobs"
        shared = [p for p in (blobs, *blobs.iterdir()) if p.is_symlink()]
        if shared:
            raise LayoutError(
                f"{shared[0]}: a symlink to a shared blob store ({os.path.realpath(shared[0])}); gc removes only"
                " blobs the layout owns, and other layouts may use these: nothing removed"
            )
        for algorithm in sorted(p for p in blobs.iterdir() if p.is_dir()):
            for path in sorted(algorithm.iterdir()):
                if not path.is_file() or path.is_symlink():
                    continue
                try:
                    digest = Digest(algorithm.name, path.name)
                except FormatError:
                    continue  # not a blob name: not ours to remove
                if digest not in live:
                    garbage.append((path, Garbage(path.relative_to(store.root).as_posix(), _size(path), BLOB)))
        garbage += [(path, Garbage(path.name, _size(path), TEMP)) for path in _dead_writers(store.temp_files())]
        if not dry_run:
            _remove(path for path, _ in garbage)
        return GcResult(store.root, tuple(item for _, item in garbage), len(live), dry_run)


def created_time(text: str) -> datetime | None:
    """An image's ``created`` (RFC 3339, image-spec ``config.md``) as an aware datetime; None when absent or invalid.

    A time without an offset is taken as UTC.
    """
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def check_pattern(pattern: str) -> None:
    """Refuse a ``--keep`` glob that is empty or has a ``[`` without its ``]`` (fnmatch would take it literally).

    Raises:
        FormatError: naming the pattern.
    """
    if not pattern:
        raise FormatError("--keep '': an empty pattern matches no tag")
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1 + (pattern[i + 1 : i + 2] in ("!", "^"))
            j = pattern.find("]", j + 1)
            if j < 0:
                raise FormatError(f"--keep {pattern!r}: '[' at {i + 1} has no closing ']'")
            i = j
        i += 1


def _unmatched(where: str, keep: Sequence[str], tags: dict[str, Sequence[str]], kept: int) -> tuple[str, ...]:
    """Notes for the ``--keep`` patterns that match no tag of any repository.

    Raises:
        FormatError: such a pattern, and the rules keep no tag at all while some tag exists (a typo
            in the pattern would otherwise remove every tag): nothing is removed.
    """
    unmatched = [p for p in keep if not any(matches(repo, tag, [p]) for repo, names in tags.items() for tag in names)]
    if unmatched and kept == 0 and any(tags.values()):
        patterns = ", ".join(repr(p) for p in unmatched)
        raise FormatError(f"{where}: --keep {patterns} matched no tag and the rules keep none: nothing removed")
    return tuple(f"--keep {p!r} matched no tag" for p in unmatched)


def matches(repository: str, tag: str, patterns: Sequence[str]) -> bool:
    """True when a glob pattern matches ``tag`` (a ``REPO:TAG`` pattern: ``repository:tag``), case-sensitively."""
    return any(fnmatch.fnmatchcase(f"{repository}:{tag}" if ":" in p else tag, p) for p in patterns)


def keep_tags(
    repository: str, created: dict[str, datetime | None], keep: Sequence[str], keep_last: int | None
) -> set[str]:
    """The tags of ``repository`` the retention rules keep (see the module docstring).

    Args:
        repository: the repository, for ``REPO:TAG`` patterns.
        created: ``{tag: created time or None}`` of the tags ranked by ``keep_last``.
        keep: glob patterns (:func:`matches`).
        keep_last: how many of the newest tags to keep, or None.

    Returns:
        Every tag when there is no rule at all; else those a rule keeps.
    """
    if not keep and keep_last is None:
        return set(created)
    kept = {tag for tag in created if matches(repository, tag, keep)}
    if keep_last is not None:
        ranked = sorted(created, key=lambda tag: (created[tag] or _EPOCH, tag), reverse=True)
        kept.update(ranked[:keep_last])
    return kept


def _image_created(repo: walk.DocumentReader, descriptor: Descriptor) -> datetime | None:
    """The newest ``created`` of the images ``descriptor`` holds; None for an artifact or no date.

    Raises:
        PyociError: a document of the image is missing or corrupt.
    """
    try:
        images = walk.platform_images(repo, descriptor)
    except FormatError:
        return None  # not an image (an artifact): no date
    times = [t for t in (created_time(image.config.created) for image in images) if t is not None]
    return max(times) if times else None


@dataclass
class _RepoPlan:
    """What gc keeps and removes in one repository of a static tree."""

    repo: StaticRepository
    kept_tags: list[str]
    removed_tags: list[str]
    reach: set[Digest]
    removals: list[tuple[Path, str]]

    @property
    def emptied(self) -> bool:
        return not self.kept_tags


def _reach(repo: walk.DocumentReader, roots: Iterable[Descriptor]) -> set[Digest]:
    """Every digest the walk from ``roots`` yields (subjects followed); refuses entries it cannot follow."""
    seen: set[Digest] = set()
    for node in walk.walk(repo, roots, subjects=True):
        if node.kind == walk.UNKNOWN and node.via in ("root", "manifests"):
            raise LayoutError(f"{repo.name}: {node.digest}: gc cannot follow media type {node.descriptor.media_type!r}")
        seen.add(node.digest)
    return seen


def _named_descriptor(file: ManifestFile) -> Descriptor:
    """The descriptor a manifest file by digest claims: its kind's media type, the digest of its name, its size."""
    return Descriptor(file.media_type, Digest.parse(file.reference), file.path.stat().st_size)


def _referrers(repo: StaticRepository, files: Iterable[ManifestFile]) -> dict[Digest, tuple[Descriptor, Digest]]:
    """``{digest: (descriptor, subject digest)}`` of the manifests by digest that have a ``subject``.

    A file that does not read or parse is no referrer (unreachable, it is removed as garbage).
    """
    found = {}
    for file in files:
        descriptor = _named_descriptor(file)
        try:
            document = walk.read_node(repo, descriptor).document
        except PyociError:
            continue
        if isinstance(document, Manifest | Index) and document.subject is not None:
            found[descriptor.digest] = (descriptor, document.subject.digest)
    return found


@contextlib.contextmanager
def _nothing_removed() -> Iterator[None]:
    """Re-raise a failure to read what is kept with "; nothing removed" added to its message.

    The exception keeps its type and attributes (a :class:`RegistryError`'s status and codes), except
    that a FormatError becomes a LayoutError.
    """
    try:
        yield
    except FormatError as exc:
        raise LayoutError(f"{exc}; nothing removed") from exc
    except PyociError as exc:
        exc.args = (f"{exc}; nothing removed", *exc.args[1:])
        raise


def _retain(
    reader: walk.DocumentReader,
    repository: str,
    descriptors: dict[str, Descriptor],
    keep: Sequence[str],
    keep_last: int | None,
    referrers: dict[Digest, tuple[Descriptor, Digest]],
) -> tuple[set[str], set[Digest]]:
    """``(kept tags, digests they reach)`` under the retention rules (see the module docstring).

    Args:
        reader: the repository's documents.
        repository: its name, for ``REPO:TAG`` patterns.
        descriptors: ``{tag: descriptor}`` of every tag.
        keep: glob patterns.
        keep_last: how many of the newest tags to keep, or None.
        referrers: ``{digest: (descriptor, subject digest)}`` of untagged manifests with a ``subject``.

    Raises:
        PyociError: a tag's or kept image's documents cannot be read whole.
    """
    referrer_tags = {tag for tag in descriptors if referrer_subject(tag) is not None}
    if not keep and keep_last is None:
        kept = set(descriptors)
    else:
        ranked = [tag for tag in descriptors if tag not in referrer_tags]
        dates = {tag: _image_created(reader, descriptors[tag]) if keep_last is not None else None for tag in ranked}
        kept = keep_tags(repository, dates, keep, keep_last)
        kept |= {tag for tag in referrer_tags if matches(repository, tag, keep)}
    reach = _reach(reader, [descriptors[tag] for tag in sorted(kept)])
    while True:
        more = [d for digest, (d, subject) in referrers.items() if subject in reach and digest not in reach]
        tags = [tag for tag in sorted(referrer_tags - kept) if referrer_subject(tag) in reach]
        if not more and not tags:
            return kept, reach
        kept.update(tags)
        reach |= _reach(reader, [*more, *(descriptors[tag] for tag in tags)])


def _plan_repository(repo: StaticRepository, keep: Sequence[str], keep_last: int | None) -> _RepoPlan:
    """Decide what one repository keeps (module docstring): tags, then the closure over walks and referrers."""
    served, shadowed = repo.scan()
    tags = {ref: f for ref, f in sorted(served.items()) if f.is_tag}
    by_digest = {ref: f for ref, f in served.items() if not f.is_tag}
    descriptors = {tag: repo.resolve(tag) for tag in tags}
    kept, reach = _retain(repo, repo.repository, descriptors, keep, keep_last, _referrers(repo, by_digest.values()))

    def kind_of(file: ManifestFile) -> str:
        return TAG if file.is_tag else INDEX if file.media_type in mediatype.INDEX_TYPES else MANIFEST

    removals = [
        (f.path, kind_of(f))
        for ref, f in served.items()
        if ref not in kept and not f.is_tag and Digest.parse(ref) not in reach
    ]
    removals += [(f.path, TAG) for tag, f in tags.items() if tag not in kept]
    removals += [(f.path, kind_of(f)) for f in shadowed]
    removals += [(path, BLOB) for path in repo.blobs() if Digest.parse(path.name) not in reach]
    return _RepoPlan(repo, sorted(kept), [tag for tag in tags if tag not in kept], reach, removals)


def _through_symlink(tree: StaticTree, path: Path) -> bool:
    """True when a directory between the tree root and ``path`` is a symbolic link (gc never removes through one)."""
    real = tree.root.resolve()
    return path.parent.resolve() != real / path.parent.relative_to(tree.root)


def _gc_static(ref: StaticReference, keep: tuple[str, ...], keep_last: int | None, dry_run: bool) -> GcResult:
    """Retention gc of a static tree (see the module docstring)."""
    if ref.repository is not None:
        raise FormatError(f"{ref}: gc works on a whole static tree (static:DIR); narrow it with --keep REPO:TAG")
    tree = StaticTree(ref.root)
    tree.check_exists()
    with tree.gc_lock():
        if not dry_run:
            tree.upgrade()
        with _nothing_removed():
            plans = [_plan_repository(tree.repository(name), keep, keep_last) for name in tree.repositories()]
        notes = _unmatched(
            f"static:{tree.root}",
            keep,
            {p.repo.repository: [*p.kept_tags, *p.removed_tags] for p in plans},
            sum(len(p.kept_tags) for p in plans),
        )
        order = {TAG: 0, INDEX: 1, MANIFEST: 2, BLOB: 3}
        garbage: list[tuple[Path, str]] = sorted(
            ((path, kind) for plan in plans for path, kind in plan.removals), key=lambda pk: order[pk[1]]
        )
        for plan in plans:
            if plan.emptied:
                listing = plan.repo.directory / "tags" / "list"
                if listing.is_file():
                    garbage.append((listing, LISTING))
        garbage += [(path, TEMP) for path in _dead_writers(tree.temp_files())]
        garbage = [(path, kind) for path, kind in garbage if not _through_symlink(tree, path)]
        items = [Garbage(path.relative_to(tree.root).as_posix(), _size(path), kind) for path, kind in garbage]
        still_linked = _still_linked([path for path, kind in garbage if kind == BLOB])
        if not dry_run:
            tree.write_listings({plan.repo.repository: plan.kept_tags for plan in plans if not plan.emptied})
            _remove(path for path, _ in garbage)
            for plan in plans:
                if plan.emptied:
                    _remove_repository(tree, plan.repo)
            tree.finish()
        kept_digests = {d for plan in plans for d in plan.reach}
        return GcResult(
            tree.root,
            tuple(items),
            len(kept_digests),
            dry_run,
            tuple(sorted(f"{p.repo.repository}:{t}" for p in plans for t in p.kept_tags)),
            tuple(sorted(f"{p.repo.repository}:{t}" for p in plans for t in p.removed_tags)),
            still_linked,
            notes,
        )


def _still_linked(paths: list[Path]) -> int:
    """Bytes of ``paths`` whose inode keeps a link outside them (hard links into repositories that keep the blob)."""
    removed: dict[tuple[int, int], int] = {}
    stats = {}
    for path in paths:
        st = path.lstat()
        key = (st.st_dev, st.st_ino)
        removed[key] = removed.get(key, 0) + 1
        stats[key] = st
    return sum(
        stats[key].st_size * (count if stats[key].st_nlink > count else count - 1) for key, count in removed.items()
    )


def _dead_writers(paths: Iterable[Path]) -> list[Path]:
    """The temporary files and directories (``.pyoci-tmp-<pid>-...``) whose process is gone."""
    return [path for path in paths if (pid := temp_pid(path.name)) is not None and not process_alive(pid)]


def _remove(paths: Iterable[Path]) -> None:
    """Remove files (and temporary directories) in order; fsync each directory touched.

    Raises:
        LayoutError: a file cannot be removed.
    """
    done = []
    for path in paths:
        done.append(path)
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LayoutError(f"{path}: cannot remove: {exc.strerror}") from exc
    for directory in sorted({path.parent for path in done}):
        if directory.is_dir():
            fsync_dir(directory)


def _remove_repository(tree: StaticTree, repo: StaticRepository) -> None:
    """Remove an emptied repository's own folders, then its directory and parents left empty.

    A nested repository (``team`` and ``team/app``) keeps its directories.
    """
    for name in ("manifests", "blobs", "tags"):
        folder = repo.directory / name
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
    directory = repo.directory
    while directory != tree.v2 and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def _gc_registry(
    ref: ImageName, keep: tuple[str, ...], keep_last: int | None, dry_run: bool, options: RegistryOptions
) -> GcResult:
    """Retention gc of a registry repository (see the module docstring)."""
    if ref.tag is not None or ref.digest is not None:
        raise FormatError(f"{ref.uri}: gc works on a whole repository; drop the tag")
    name = f"docker://{ref.domain}/{ref.repository}"
    with registry_client(ref.domain, options) as client:
        from pyoci.targets.registry import RegistrySource  # httpx, as the client: only for registries

        source = RegistrySource(client, ref)
        tags = sorted(source.tags())
        descriptors = {tag: source.fetch_manifest(tag)[0] for tag in tags}
        with _nothing_removed():
            kept, reach = _retain(source, ref.repository, descriptors, keep, keep_last, {})
        notes = list(_unmatched(name, keep, {ref.repository: tags}, len(kept)))
        removed_tags = [tag for tag in tags if tag not in kept]
        deletions: list[tuple[Descriptor, str]] = []  # parents first: each removed root, then what only it reaches
        seen: set[Digest] = set()
        for node in walk.walk(source, [descriptors[tag] for tag in removed_tags]):
            if node.raw is not None and node.digest not in reach and node.digest not in seen:
                seen.add(node.digest)
                deletions.append((node.descriptor, INDEX if node.kind == walk.INDEX else MANIFEST))
        shared = [tag for tag in removed_tags if descriptors[tag].digest in reach]
        if dry_run:
            notes += [
                f"{name}:{tag}: a kept tag holds the same image: this tag goes only where the registry deletes "
                "a tag alone (distribution 2.8 does not)"
                for tag in shared
            ]
        else:
            for descriptor, _ in deletions:
                source.delete_manifest(str(descriptor.digest))
            for tag in list(shared):
                try:
                    source.delete_manifest(tag)
                except RegistryError as exc:
                    shared.remove(tag)
                    removed_tags.remove(tag)
                    notes.append(
                        f"{name}:{tag}: not removed: a kept tag holds the same image, and the registry "
                        f"refused to delete the tag alone ({exc})"
                    )
        items = [Garbage(f"{ref.repository}@{d.digest}", d.size, kind) for d, kind in deletions]
        items += [Garbage(f"{ref.repository}:{tag}", 0, TAG) for tag in shared]
        return GcResult(
            name,
            tuple(items),
            len(reach),
            dry_run,
            tuple(f"{ref.repository}:{t}" for t in sorted(kept)),
            tuple(f"{ref.repository}:{t}" for t in removed_tags),
            notes=tuple(notes),
        )
