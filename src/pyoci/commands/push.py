"""``pyoci push``: publish an image from a layout or docker-archive to registries and static trees.

The source is opened by :mod:`pyoci.sources`, walked once (:mod:`pyoci.walk`, children before
parents), and copied into each destination by the one copy loop (:mod:`pyoci.targets.copy`): for
each blob, skip what exists, mount it from repositories already pushed in this run on the same
registry and from ``mount_from``, else put it; manifests go up with their exact bytes, child
manifests by digest, the top one under the destination's tag (or by digest). Several destinations
on one registry upload each blob once; more tags of a repository already pushed only add the tag.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyoci.digest import Digest
from pyoci.errors import FormatError, TagError
from pyoci.mediatype import LayerOptions
from pyoci.progress import Progress
from pyoci.reference import DEFAULT_TAG, ImageName, Reference, StaticReference, check_registry_tag, expect, parse
from pyoci.sources import open_source
from pyoci.targets.copy import CopyStats, copy_image
from pyoci.targets.options import RegistryOptions
from pyoci.targets.session import Destinations

log = logging.getLogger("pyoci.push")

Destination = ImageName | StaticReference


@dataclass
class PushedDestination(CopyStats):
    """What one destination received: the counts of :class:`~pyoci.targets.copy.CopyStats` and where.

    Attributes:
        reference: the full reference written, e.g. ``docker://host/repo:tag`` or ``static:DIR:REPO:TAG``.
    """

    reference: str = ""


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


def _reference_text(dest: Destination, tag: str | None, digest: Digest) -> str:
    if isinstance(dest, StaticReference):
        base = f"static:{dest.root}:{dest.repo()}"
    else:
        base = f"docker://{dest.domain}/{dest.repository}"
    return f"{base}:{tag}" if tag is not None else f"{base}@{digest}"


def push(
    source: Reference | str | os.PathLike[str],
    destinations: str | Destination | Sequence[str | Destination],
    *,
    options: RegistryOptions | None = None,
    mount_from: Sequence[str] = (),
    layer_options: LayerOptions | None = None,
    progress: Progress | None = None,
) -> PushResult:
    """Push one image to registries and/or static registry trees.

    Args:
        source: an OCI layout (``DIR``, ``oci:DIR[:TAG|@DIGEST]``), an oci-archive
            (``oci-archive:FILE[:TAG]``) or a docker-archive (``PATH``, ``docker-archive:PATH[:NAME:TAG|:@N]``,
            converted on the fly with ``layer_options``).
        destinations: one or more of ``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`` (or the bare form)
            and ``static:DIR:REPO[:TAG]``. Without a tag: the source's tag, else ``latest``.
        options: TLS, credentials, chunking and retries for registries.
        mount_from: repositories of the destination registry to try mounting blobs from.
        layer_options: layer compression for a docker-archive source.
        progress: receives per-blob byte counts (uploads, and the conversion of an archive).

    Returns:
        The pushed digest (the registry's, checked against the local one) and per-destination counts.

    Raises:
        FormatError: a malformed source or destination, or a destination digest that is not the image's.
        LayoutError: the layout is unreadable, or a blob is missing (``BlobNotFoundError``).
        DigestMismatchError: a local blob does not match its descriptor.
        RegistryError: a registry refused or failed an operation after the retries (``AuthError`` for access).
    """
    raw_dests = [destinations] if isinstance(destinations, str | ImageName | StaticReference) else destinations
    dests = [parse_destination(d) for d in raw_dests]
    if not dests:
        raise FormatError("push: no destination given")
    with (
        Destinations(options) as session,
        open_source(source, what="push reads", options=layer_options, progress=progress, session=session) as src,
    ):
        roots = src.roots()
        if len(roots) != 1:
            raise TagError(f"{src.name}: holds {len(roots)} untagged images; push takes one (name it with a tag)")
        root, source_tag = roots[0]
        for dest in dests:
            if dest.digest is not None and dest.digest != root.digest:
                raise FormatError(f"destination {dest}: digest differs from the image's {root.digest}")
        done: dict[str, list[str]] = {}
        results = []
        for dest in dests:
            if dest.tag is None and dest.digest is None and source_tag is not None:
                check_registry_tag(source_tag, f"{source}: tag (give the destination a tag)")
            tag = None if dest.digest is not None and dest.tag is None else dest.tag or source_tag or DEFAULT_TAG
            key, target = session.target(dest)
            repository = dest.repo() if isinstance(dest, StaticReference) else dest.repository
            pushed = done.setdefault(key, [])
            sources = [r for r in [*pushed, *mount_from] if r != repository]
            stats = copy_image(
                src,
                root,
                target,
                tag,
                mount_from=sources,
                progress=progress,
                only_tag=repository in pushed,  # a repository pushed in this run only needs the new tag
                jobs=session.options.jobs,
            )
            if repository not in pushed:
                pushed.append(repository)
            results.append(PushedDestination(**stats.to_json(), reference=_reference_text(dest, tag, root.digest)))
            log.info("%s: pushed %s", results[-1].reference, root.digest)
    return PushResult(root.digest, root.media_type, root.size, tuple(results))
