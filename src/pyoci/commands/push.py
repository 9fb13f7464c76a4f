"""``pyoci push``: publish an image from a layout or docker-archive to registries and static trees.

One walk of the image (:mod:`pyoci.layout.walk`, children before parents) drives every destination
through the :class:`~pyoci.targets.Target` protocol. For each blob: ``has_blob`` (skip what
exists), then ``mount_blob`` from repositories already pushed in this run on the same registry and
from ``mount_from``, then ``put_blob``. Manifests go up with their exact bytes: child manifests by
digest, the top one by the destination's tag (or digest). Several destinations on one registry
upload each blob once; more tags of a repository already pushed only add the tag.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoci.archive.plan import DEFAULT_TAG
from pyoci.commands.convert import convert
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.layout.store import ImageLayout
from pyoci.progress import NoProgress, Progress
from pyoci.reference import ImageName, LayoutReference, Reference, StaticReference, check_registry_tag, expect, parse
from pyoci.targets import BlobOpener, Mount, Target
from pyoci.targets.registry import RegistryClient, RegistryOptions, RegistryTarget
from pyoci.targets.static import StaticTree
from pyoci.walk import Node, walk

log = logging.getLogger("pyoci.push")

Destination = ImageName | StaticReference


@dataclass(frozen=True)
class PushedDestination:
    """What one destination received.

    Attributes:
        reference: the full reference written, e.g. ``docker://host/repo:tag`` or ``static:DIR:REPO:TAG``.
        uploaded: blobs sent.
        mounted: blobs mounted (registry) or hard-linked (static tree) from another repository.
        skipped: blobs already present.
        bytes_uploaded: bytes of the blobs sent.
        manifests: manifests and indexes written (children included).
    """

    reference: str
    uploaded: int = 0
    mounted: int = 0
    skipped: int = 0
    bytes_uploaded: int = 0
    manifests: int = 0


@dataclass(frozen=True)
class PushResult:
    """The outcome of :func:`push`.

    Attributes:
        digest: the digest of the pushed manifest or index (equal to the registry's).
        media_type: its media type.
        size: its size in bytes.
        destinations: one entry per destination, in the order given.
    """

    digest: Digest
    media_type: str
    size: int
    destinations: tuple[PushedDestination, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return {
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "size": self.size,
            "destinations": [vars(d) for d in self.destinations],
        }


def parse_destination(text: str | Destination) -> Destination:
    """Parse ``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]``, its bare form, or ``static:DIR:REPO[:TAG]``.

    Docker Hub names expand as Docker does (``user/app`` is ``docker.io/user/app``).

    Raises:
        FormatError: another transport, a static tree without a repository, or an invalid name.
    """
    ref = expect(parse(text, bare="registry"), ("docker", "static"), "push writes")
    if isinstance(ref, StaticReference):
        ref.repo()
    assert isinstance(ref, ImageName | StaticReference)  # what expect() allowed
    return ref


@contextlib.contextmanager
def open_source(
    source: Reference | str | os.PathLike[str], progress: Progress | None = None
) -> Iterator[tuple[ImageLayout, Descriptor, str | None]]:
    """Yield ``(layout, index.json entry, tag)`` for a push source.

    A directory (or ``oci:DIR[:TAG]``) is read in place; a docker-archive (a file path or
    ``docker-archive:PATH[:NAME:TAG|:@N]``) is converted into a temporary layout first, removed at exit.

    Raises:
        FormatError: another transport, or a malformed reference.
        TagError: the tag is absent, or the layout holds several images and no tag was given.
    """
    ref = expect(parse(source), ("oci", "docker-archive"), "push reads")
    if isinstance(ref, LayoutReference):
        layout = ImageLayout.open(ref.path)
        root = layout.resolve(ref.tag)
        yield layout, root, ref.tag or root.ref_name
        return
    with tempfile.TemporaryDirectory(prefix=".pyoci-tmp-push-") as tmp:
        result = convert(ref, LayoutReference(str(Path(tmp) / "layout")), progress=progress)
        if len(result.images) != 1:
            raise FormatError(f"{ref}: push takes one image; choose one with :@N or :NAME:TAG")
        image = result.images[0]
        layout = ImageLayout.open(result.destination)
        tag = image.tags[0] if image.tags else None
        yield layout, layout.resolve(tag), tag if image.source.repo_tags else None


class _Session:
    """The open destinations of one push: a client per registry, a tree per static root."""

    def __init__(self, options: RegistryOptions, stack: contextlib.ExitStack) -> None:
        self.options = options
        self.stack = stack
        self.clients: dict[str, RegistryClient] = {}
        self.trees: dict[Path, StaticTree] = {}

    def target(self, dest: Destination) -> tuple[str, Target]:
        """``(destination key, target)``; repositories with the same key can mount from each other."""
        if isinstance(dest, StaticReference):
            root = dest.root.absolute()
            if root not in self.trees:
                self.trees[root] = StaticTree(root)
            return f"static:{root}", self.trees[root].target(dest.repo())
        if dest.domain not in self.clients:
            self.clients[dest.domain] = self.stack.enter_context(RegistryClient(dest.domain, self.options))
        return f"docker://{dest.domain}", RegistryTarget(self.clients[dest.domain], dest.repository)


def _reference_text(dest: Destination, reference: str) -> str:
    if isinstance(dest, StaticReference):
        base = f"static:{dest.root}:{dest.repository}"
    else:
        base = f"docker://{dest.domain}/{dest.repository}"
    return f"{base}@{reference}" if ":" in reference else f"{base}:{reference}"


def _push_blob(
    target: Target, node: Node, opener: BlobOpener, sources: Sequence[str], progress: Progress, stats: dict[str, int]
) -> None:
    descriptor = node.descriptor
    if target.has_blob(descriptor):
        log.info("%s: blob %s exists", target.name, descriptor.digest)
        stats["skipped"] += 1
        return
    if isinstance(target, Mount):
        for repository in sources:
            if target.mount_blob(descriptor, repository):
                log.info("%s: blob %s mounted from %s", target.name, descriptor.digest, repository)
                stats["mounted"] += 1
                return
    target.put_blob(descriptor, opener, progress)
    log.info("%s: blob %s uploaded (%d bytes)", target.name, descriptor.digest, descriptor.size)
    stats["uploaded"] += 1
    stats["bytes_uploaded"] += descriptor.size


def push(
    source: Reference | str | os.PathLike[str],
    destinations: str | Destination | Sequence[str | Destination],
    *,
    options: RegistryOptions | None = None,
    mount_from: Sequence[str] = (),
    progress: Progress | None = None,
) -> PushResult:
    """Push one image to registries and/or static registry trees.

    Args:
        source: an OCI layout (``DIR``, ``oci:DIR[:TAG]``) or a docker-archive (``PATH``,
            ``docker-archive:PATH[:NAME:TAG|:@N]``).
        destinations: one or more of ``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`` (or the bare form)
            and ``static:DIR:REPO[:TAG]``. Without a tag: the source's tag, else ``latest``.
        options: TLS, credentials, chunking and retries for registries.
        mount_from: repositories of the destination registry to try mounting blobs from.
        progress: receives per-blob byte counts (uploads, and the conversion of an archive).

    Returns:
        The pushed digest (the registry's, checked against the local one) and per-destination counts.

    Raises:
        FormatError: a malformed source or destination, or a destination digest that is not the image's.
        LayoutError: the layout is unreadable, or a blob is missing (``BlobNotFoundError``).
        DigestMismatchError: a local blob does not match its descriptor.
        PushError: a registry refused or failed an operation after the retries (``AuthError`` for access).
    """
    raw_dests = [destinations] if isinstance(destinations, str | ImageName | StaticReference) else destinations
    dests = [parse_destination(d) if isinstance(d, str) else d for d in raw_dests]
    if not dests:
        raise FormatError("push: no destination given")
    options = options or RegistryOptions()
    shown = progress or NoProgress()
    with open_source(source, progress) as (layout, root, source_tag), contextlib.ExitStack() as stack:
        nodes = list(walk(layout, [root], children_first=True))
        for dest in dests:
            if dest.digest is not None and dest.digest != root.digest:
                raise FormatError(f"destination {dest}: digest differs from the image's {root.digest}")
        session = _Session(options, stack)
        done: dict[str, list[str]] = {}
        results = []
        for dest in dests:
            if dest.tag is None and dest.digest is None and source_tag is not None:
                check_registry_tag(source_tag, f"{source}: tag (give the destination a tag)")
            reference = dest.tag or (str(dest.digest) if dest.digest else None) or source_tag or DEFAULT_TAG
            key, target = session.target(dest)
            repository = dest.repo() if isinstance(dest, StaticReference) else dest.repository
            stats = dict.fromkeys(("uploaded", "mounted", "skipped", "bytes_uploaded", "manifests"), 0)
            pushed = done.setdefault(key, [])
            sources = [r for r in [*pushed, *mount_from] if r != repository]
            for node in nodes if repository not in pushed else nodes[-1:]:
                if node.raw is None:
                    descriptor = node.descriptor
                    if node.foreign and not layout.has_blob(descriptor.digest):
                        continue  # a non-distributable layer: clients fetch it from its urls

                    def opener(descriptor: Descriptor = descriptor) -> contextlib.AbstractContextManager[Any]:
                        return layout.blob_file(descriptor)

                    _push_blob(target, node, opener, sources, shown, stats)
                else:
                    is_root = node.descriptor.digest == root.digest
                    ref = reference if is_root else str(node.descriptor.digest)
                    target.put_manifest(node.descriptor, node.raw, ref)
                    stats["manifests"] += 1
            if repository not in pushed:
                pushed.append(repository)
            results.append(PushedDestination(_reference_text(dest, reference), **stats))
            log.info("%s: pushed %s", results[-1].reference, root.digest)
        for tree in session.trees.values():
            tree.finish()
    return PushResult(root.digest, root.media_type, root.size, tuple(results))
