"""The one copy loop: an image's blobs, then its manifests, children before parents, into any target.

First the target is asked, parents first, for each manifest and index by digest: one it holds is
not looked into (its blobs are there), so copying an image that is already there costs one
question (two with a tag: the tag is only written when it points elsewhere). Each image manifest
it reads is checked before anything is written (:func:`pyoci.walk.check_image`: its config parses,
one layer per diff_id, layer media types); layer bytes are only checked against their digests.
Then, for each blob
left (image-spec ``descriptor.md``; distribution-spec ``spec.md`` "Pushing blobs"): skip what the
target has; mount it from another repository of the same destination when the target can;
otherwise put it, streamed and verified against its digest. Blobs go ``jobs`` at a time, each in a
thread of its own with its own 1 MiB buffers, so memory stays flat whatever the number in flight.
Manifests follow, once every blob is in, with their exact bytes, each after everything it
references (a registry refuses a manifest whose blobs are missing), child manifests by digest and
the root last, under the tag. A non-distributable layer the source lacks is left out (see
:mod:`pyoci.walk`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.manifest import Manifest
from pyoci.progress import NoProgress, Progress
from pyoci.targets import BlobSource, Mount, RegistryRepository, Target
from pyoci.targets.options import DEFAULT_JOBS
from pyoci.walk import INDEX, MANIFEST, UNKNOWN, Node, check_image, is_image, kind_of, walk

log = logging.getLogger("pyoci.copy")


@dataclass
class CopyStats:
    """What one target received.

    Attributes:
        uploaded: blobs sent.
        mounted: blobs mounted (registry) or linked (static tree) from another repository.
        skipped: blobs the target already had.
        bytes_uploaded: bytes of the blobs sent.
        manifests: manifests and indexes written (children included; a tag counts as one).
        manifests_skipped: manifests and indexes the target already held (their blobs not asked about).
    """

    uploaded: int = 0
    mounted: int = 0
    skipped: int = 0
    bytes_uploaded: int = 0
    manifests: int = 0
    manifests_skipped: int = 0

    def to_json(self) -> dict[str, int]:
        """The counts as a JSON-ready dict."""
        return asdict(self)

    def add(self, other: CopyStats) -> None:
        """Add ``other``'s counts to these."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def mount_sources(source: BlobSource, target: Target) -> list[str]:
    """Where ``target`` may mount the source's blobs from: the source's repository, when both are on one registry.

    "One registry" is one client of the command's :class:`~pyoci.targets.session.Destinations`
    (distribution-spec ``spec.md`` "Mounting a blob from another repository").
    """
    if not isinstance(source, RegistryRepository) or not isinstance(target, RegistryRepository):
        return []
    same_registry = source.client is target.client and source.repository != target.repository
    return [source.repository] if same_registry else []


def copy_blob(
    source: BlobSource,
    node: Node,
    target: Target,
    mount_from: Sequence[str] = (),
    progress: Progress | None = None,
) -> str:
    """Copy one blob node: skip, mount or put (see the module docstring).

    Returns:
        What happened: ``"skipped"``, ``"mounted"``, ``"uploaded"``, or ``"foreign"`` (a
        non-distributable layer the source lacks, left out).

    Raises:
        DigestMismatchError: the source's bytes differ from the descriptor.
        PyociError: the source cannot be read or the target refused the blob.
    """
    descriptor = node.descriptor
    if node.foreign and not source.has_blob(descriptor):
        return "foreign"  # clients fetch a non-distributable layer from its urls
    if target.has_blob(descriptor):
        log.info("%s: blob %s exists", target.name, descriptor.digest)
        return "skipped"
    if isinstance(target, Mount):
        for repository in mount_from:
            if target.mount_blob(descriptor, repository):
                log.info("%s: blob %s mounted from %s", target.name, descriptor.digest, repository)
                return "mounted"
    target.put_blob(descriptor, source, progress or NoProgress())
    log.info("%s: blob %s stored (%d bytes)", target.name, descriptor.digest, descriptor.size)
    return "uploaded"


class _Labelled:
    """A :class:`Progress` that names its blob (``linux/arm64 layer 2/3``) instead of what the target calls it."""

    def __init__(self, inner: Progress, label: str) -> None:
        self._inner = inner
        self._label = label

    def start(self, name: str, total: int) -> None:
        self._inner.start(self._label, total)

    def advance(self, count: int) -> None:
        self._inner.advance(count)

    def finish(self) -> None:
        self._inner.finish()

    def fork(self) -> Progress:
        return _Labelled(self._inner.fork(), self._label)


def blob_labels(nodes: Sequence[Node]) -> dict[Digest, str]:
    """A progress label for each config and layer of the manifests among ``nodes``: platform, role, position."""
    labels: dict[Digest, str] = {}
    for node in nodes:
        if isinstance(node.document, Manifest):
            platform = f"{node.descriptor.platform} " if node.descriptor.platform is not None else ""
            labels.setdefault(node.document.config.digest, f"{platform}config")
            count = len(node.document.layers)
            for position, layer in enumerate(node.document.layers, 1):
                labels.setdefault(layer.digest, f"{platform}layer {position}/{count}")
    return labels


def copy_blobs(
    source: BlobSource,
    nodes: Sequence[Node],
    target: Target,
    stats: CopyStats,
    *,
    mount_from: Sequence[str] = (),
    progress: Progress | None = None,
    jobs: int = DEFAULT_JOBS,
    labelled: Sequence[Node] = (),
) -> None:
    """Copy blob ``nodes``, ``jobs`` at a time; the counts go to ``stats``.

    ``labelled``: nodes whose manifests name the blobs for progress bars (see :func:`blob_labels`).
    With several jobs, ``progress`` shows the total (every blob's bytes, those not sent counted
    once decided) and each transfer reports to a :meth:`~pyoci.progress.Progress.fork` of it.

    The first failure is raised once the transfers already running have ended; the ones not
    started are not started.

    Raises:
        DigestMismatchError, PyociError: as :func:`copy_blob`.
    """
    progress = progress or NoProgress()
    labels = blob_labels(labelled) if labelled else {}

    def one(node: Node) -> tuple[Node, str]:
        shown = progress.fork() if jobs > 1 else progress
        label = labels.get(node.digest)
        outcome = copy_blob(source, node, target, mount_from, _Labelled(shown, label) if label else shown)
        if outcome != "uploaded" and jobs > 1:
            shown.advance(node.descriptor.size)  # counts toward the total: nothing left to send
        return node, outcome

    if jobs <= 1 or len(nodes) <= 1:
        outcomes = [one(node) for node in nodes]
    else:
        progress.start(f"{len(nodes)} blobs", sum(node.descriptor.size for node in nodes))
        with ThreadPoolExecutor(min(jobs, len(nodes)), thread_name_prefix="pyoci-transfer") as pool:
            futures = [pool.submit(one, node) for node in nodes]
            try:
                outcomes = [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            finally:
                progress.finish()
    for node, outcome in outcomes:
        if outcome == "skipped":
            stats.skipped += 1
        elif outcome == "mounted":
            stats.mounted += 1
        elif outcome == "uploaded":
            stats.uploaded += 1
            stats.bytes_uploaded += node.descriptor.size


def copy_image(
    source: BlobSource,
    root: Descriptor,
    target: Target,
    tag: str | None,
    *,
    mount_from: Sequence[str] = (),
    progress: Progress | None = None,
    only_tag: bool = False,
    jobs: int = DEFAULT_JOBS,
) -> CopyStats:
    """Copy the image ``root`` names from ``source`` into ``target`` (see the module docstring).

    Args:
        source: where the documents and blobs are read.
        root: the manifest or index to copy.
        target: where they go.
        tag: the tag to put the root under; None to store it by digest only.
        mount_from: repositories of the target's destination to try mounting blobs from.
        progress: receives per-blob byte counts.
        only_tag: the caller knows the image is there (copied to this repository in this run): only
            the tag is written.
        jobs: blobs transferred at once (1: one after the other).

    Returns:
        The counts of what was sent, mounted and skipped.

    Raises:
        FormatError: the root is not a manifest or index, or an image breaks a rule of :func:`~pyoci.walk.check_image`.
        DigestMismatchError: a source blob differs from its descriptor.
        PyociError: the source cannot be read or the target refused a write.
    """
    if kind_of(root.media_type) == UNKNOWN:
        raise FormatError(f"{source.name}: {root.digest}: {root.media_type!r} is not a manifest or an image index")
    stats = CopyStats()
    raw = source.read_document(root)
    if not only_tag and not target.has_manifest(root):

        def absent(node: Node) -> bool:
            return node.digest == root.digest or not target.has_manifest(node.descriptor)

        walked = list(walk(source, [root], children_first=True, enter=absent))
        for node in walked:
            if isinstance(node.document, Manifest) and is_image(node.document):
                check_image(source, node.document, f"{source.name}: manifest {node.digest}")
        nodes = [node for node in walked if node.digest != root.digest]
        stats.manifests_skipped += sum(1 for node in nodes if node.kind in (INDEX, MANIFEST) and node.raw is None)
        blobs = [node for node in nodes if node.raw is None and node.kind not in (INDEX, MANIFEST)]
        copy_blobs(
            source, blobs, target, stats, mount_from=mount_from, progress=progress, jobs=jobs, labelled=nodes
        )
        for node in nodes:
            if node.raw is not None:
                target.put_manifest(node.descriptor, node.raw, None)
                stats.manifests += 1
    if target.has_manifest(root, tag):
        stats.manifests_skipped += 1
    else:
        target.put_manifest(root, raw, tag)
        stats.manifests += 1
    return stats
