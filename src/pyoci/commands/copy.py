"""``pyoci copy``: any source to any destination, in skopeo's argument order and transport names.

Sources: ``docker://``, ``oci:``, ``oci-archive:``, ``docker-archive:`` (file or ``-``), ``static:``
(:mod:`pyoci.sources`). Destinations: ``docker://``, ``oci:``, ``oci-archive:``, ``static:``,
``docker-archive:FILE[:NAME:TAG]`` (:mod:`pyoci.targets.session`). Rules:

* a multi-platform source is copied whole (its index and every platform, digests kept) unless
  platforms are chosen: one platform gives that platform's manifest (its digest kept), several a
  new image index listing them in the order given (image-spec ``image-index.md``; the source index's
  annotations kept), which is a new digest;
* layers keep their bytes between stores (registry, layout, static tree, oci-archive); a
  docker-archive destination holds uncompressed layers, one image per platform (by default the
  host's platform of a multi-platform source), as ``docker load`` wants them; a docker-archive
  source is converted with the layer options (:class:`~pyoci.transcode.LayerOptions`);
* between two repositories of one registry, blobs are mounted, not sent; what the destination
  holds is skipped (see :mod:`pyoci.targets.copy`);
* the destination tag is the one given, else the source's tag, else ``latest``; a digest
  destination (``docker://HOST/REPO@DIGEST``) must be the image's digest;
* with ``referrers``, the manifests that refer to what was copied (``subject``: signatures, SBOMs,
  attestations; found by the referrers API or the referrers tag schema, see
  :mod:`pyoci.targets.referrers`) come along, and theirs in turn, each under its tag if it has one
  (in a layout, untagged ones get an untagged index.json entry); without it they are left alone.

On any error nothing is left half-written: layouts stage until the end, files are written whole
at the end, registries and static trees get the root manifest (the tag) last.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoci import mediatype
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.jsonio import load_json
from pyoci.manifest import Index
from pyoci.mediatype import LayerOptions
from pyoci.platform import Platform
from pyoci.progress import Progress
from pyoci.reference import (
    DEFAULT_TAG,
    ArchiveReference,
    ImageName,
    LayoutReference,
    Reference,
    StaticReference,
    check_registry_tag,
    expect,
    parse,
)
from pyoci.sources import open_source
from pyoci.targets import Source, Target
from pyoci.targets.copy import CopyStats, copy_image, mount_sources
from pyoci.targets.layout import LayoutTarget
from pyoci.targets.options import RegistryOptions
from pyoci.targets.referrers import Referrers
from pyoci.targets.session import Destinations
from pyoci.walk import PlatformImage, platform_images

DESTINATIONS = ("docker", "oci", "oci-archive", "static", "docker-archive")


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy` wrote.

    Attributes:
        source: the source as given.
        destination: the destination written, with its tag or digest.
        digest: the digest of the root written (the index or manifest; for a docker-archive of
            several platform images, the source's root).
        media_type: its media type.
        size: its size in bytes.
        platforms: the platforms copied (empty for an image without a readable platform).
        stats: what was sent, mounted and skipped.
    """

    source: str
    destination: str
    digest: Digest
    media_type: str
    size: int
    platforms: tuple[Platform, ...] = ()
    stats: CopyStats = field(default_factory=CopyStats)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "source": self.source,
            "destination": self.destination,
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "size": self.size,
            "platforms": [str(p) for p in self.platforms],
            **self.stats.to_json(),
        }


def _destination(text: Reference | str | os.PathLike[str]) -> Reference:
    hint = "to upload a static tree to S3, use 'pyoci sync'"
    ref = expect(parse(text, bare="none"), DESTINATIONS, "copy writes", hint)
    if isinstance(ref, StaticReference):
        ref.repo()
    if isinstance(ref, ArchiveReference) and (ref.position is not None or ref.path == "-"):
        raise FormatError(f"{ref}: a docker-archive destination is a file, optionally with :NAME:TAG")
    if isinstance(ref, LayoutReference) and ref.digest is not None:
        raise FormatError(f"{ref}: a layout destination takes a tag, not a digest")
    return ref


def _staging(ref: Reference) -> Path | None:
    """Where to stage a docker-archive source: inside a local destination, so blobs can be linked."""
    if isinstance(ref, LayoutReference) and not ref.archive:
        return Path(ref.path)
    if isinstance(ref, StaticReference):
        return ref.root
    if isinstance(ref, LayoutReference | ArchiveReference):
        return Path(ref.path).resolve().parent
    return None


def _tag(dest: Reference, source_tag: str | None, source: str) -> str | None:
    if isinstance(dest, ImageName | StaticReference):
        if dest.tag is not None:
            return dest.tag
        if dest.digest is not None:
            return None
        if source_tag is not None:
            check_registry_tag(source_tag, f"{source}: tag (give the destination a tag)")
        return source_tag or DEFAULT_TAG
    if isinstance(dest, LayoutReference):
        return dest.tag or source_tag or DEFAULT_TAG
    return None


def _choose(
    source: Source, root: Descriptor, platforms: Sequence[Platform], every: bool, docker_archive: bool
) -> list[PlatformImage] | None:
    """The platform images to copy, or None to copy ``root`` whole."""
    is_index = root.media_type in mediatype.INDEX_TYPES
    if not platforms and (not is_index or (every or not docker_archive)):
        return None
    images = platform_images(source, root)
    wanted = list(platforms) or ([] if every else [Platform.host()])
    if not wanted:
        return images
    chosen: list[PlatformImage] = []
    for platform in wanted:
        match = next((image for image in images if image.platform.matches(platform)), None)
        if match is None:
            held = ", ".join(str(image.platform) for image in images) or "none"
            raise FormatError(f"{source.name}: no image for platform {platform} (it holds: {held})")
        if match not in chosen:
            chosen.append(match)
    return chosen


def copy(
    source: Reference | str | os.PathLike[str],
    destination: Reference | str | os.PathLike[str],
    *,
    platforms: Sequence[Platform | str] = (),
    all_platforms: bool = False,
    options: RegistryOptions | None = None,
    layer_options: LayerOptions | None = None,
    referrers: bool = False,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy an image from any source to any destination (see the module docstring for the rules).

    Args:
        source: ``docker://...``, ``oci:DIR[:TAG|@DIGEST]``, ``oci-archive:FILE[:TAG]``,
            ``docker-archive:PATH[:NAME:TAG|:@N]`` (or a path, or ``-``), ``static:DIR:REPO[:TAG]``.
        destination: ``docker://...``, ``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``,
            ``static:DIR:REPO[:TAG]``, ``docker-archive:FILE[:NAME:TAG]``.
        platforms: copy only these platforms (``os/arch[/variant]``), in this order.
        all_platforms: every platform (the default, except for a docker-archive destination, which
            takes the host's platform of a multi-platform source unless told otherwise).
        options: how to reach registries (TLS, credentials, retries).
        layer_options: layer compression for a docker-archive source.
        referrers: copy the referrers of what is copied too (not into a docker-archive).
        progress: receives per-blob byte counts.

    Returns:
        The digest written and what was sent, mounted and skipped (referrers included).

    Raises:
        FormatError: a malformed reference, a transport the role does not take, a platform the
            source lacks, or a digest destination that is not the image's.
        TagError, LayoutError, ArchiveError: an unreadable or ambiguous local source.
        RegistryError: a registry refused access or an operation (``MANIFEST_UNKNOWN`` for an absent
            tag, in ``codes``), after the retries.
        DigestMismatchError: a blob whose bytes differ from its descriptor.
    """
    wanted = [p if isinstance(p, Platform) else Platform.parse(p) for p in platforms]
    if wanted and all_platforms:
        raise FormatError("copy: --all and --platform exclude each other")
    dest = _destination(destination)
    if referrers and isinstance(dest, ArchiveReference):
        raise FormatError(f"{dest}: a docker-archive holds images, not their referrers; drop --referrers")
    src_ref = parse(source)
    with (
        Destinations(options) as session,
        open_source(
            src_ref,
            what="copy reads",
            staging=_staging(dest),
            options=layer_options,
            progress=progress,
            session=session,
        ) as src,
    ):
        roots = src.roots()
        if len(roots) != 1:
            raise FormatError(f"{src.name}: holds {len(roots)} untagged images; copy takes one (name it with a tag)")
        root, source_tag = roots[0]
        docker_archive = isinstance(dest, ArchiveReference)
        chosen = _choose(src, root, wanted, all_platforms, docker_archive)
        digest_wanted = dest.digest if isinstance(dest, ImageName | StaticReference) else None
        if digest_wanted is not None and (chosen is not None or digest_wanted != root.digest):
            raise FormatError(f"{dest}: digest differs from the image's {root.digest}")
        if isinstance(dest, ArchiveReference) and dest.name is None and isinstance(src_ref, ImageName):
            dest = ArchiveReference(dest.path, ImageName(src_ref.domain, src_ref.repository, source_tag or DEFAULT_TAG))
        _, target = session.target(dest)
        tag = _tag(dest, source_tag, str(source))
        mount_from = mount_sources(src, target)
        if chosen is None:
            copied = tuple(image.platform for image in _platforms_of(src, root))  # read before anything is written
            stats = copy_image(
                src, root, target, tag, mount_from=mount_from, progress=progress, jobs=session.options.jobs
            )
            written = root
        else:
            stats, written = _copy_platforms(
                src, root, chosen, target, tag, docker_archive, mount_from, progress, session.options.jobs
            )
            copied = tuple(image.platform for image in chosen)
        if referrers:
            subjects = [written.digest, *(image.descriptor.digest for image in chosen or ())]
            stats.add(_copy_referrers(src, subjects, target, mount_from, progress, session.options.jobs))
    text = f"{dest}" if not isinstance(dest, ImageName) else dest.uri
    return CopyResult(str(source), text, written.digest, written.media_type, written.size, copied, stats)


def _copy_referrers(
    source: Source,
    subjects: list[Digest],
    target: Target,
    mount_from: list[str],
    progress: Progress | None,
    jobs: int,
) -> CopyStats:
    """Copy the referrers of ``subjects`` (and of every manifest they hold), and theirs in turn."""
    if not isinstance(source, Referrers):
        raise FormatError(f"{source.name}: cannot list the referrers of an image")
    stats = CopyStats()
    pending = list(subjects)
    seen = set(subjects)
    while pending:
        subject = pending.pop(0)
        for descriptor, tag in source.referrers(subject):
            if descriptor.digest in seen:
                continue
            seen.add(descriptor.digest)
            stats.add(copy_image(source, descriptor, target, tag, mount_from=mount_from, progress=progress, jobs=jobs))
            if tag is None and isinstance(target, LayoutTarget):
                target.add_untagged(descriptor)
            pending.append(descriptor.digest)
    return stats


def _platforms_of(source: Source, root: Descriptor) -> list[PlatformImage]:
    try:
        return platform_images(source, root)
    except FormatError:
        return []  # an artifact, not an image: copied all the same


def _copy_platforms(
    source: Source,
    root: Descriptor,
    chosen: list[PlatformImage],
    target: Target,
    tag: str | None,
    docker_archive: bool,
    mount_from: list[str],
    progress: Progress | None,
    jobs: int,
) -> tuple[CopyStats, Descriptor]:
    """Copy the chosen platform images; several (and not into a docker-archive) get a new index."""
    total = CopyStats()
    if len(chosen) == 1 or docker_archive:
        for image in chosen:
            total.add(
                copy_image(source, image.descriptor, target, tag, mount_from=mount_from, progress=progress, jobs=jobs)
            )
        first = chosen[0].descriptor
        return total, Descriptor(first.media_type, first.digest, first.size) if len(chosen) == 1 else root
    for image in chosen:
        total.add(
            copy_image(source, image.descriptor, target, None, mount_from=mount_from, progress=progress, jobs=jobs)
        )
    annotations: dict[str, str] = {}
    if root.media_type in mediatype.INDEX_TYPES:
        obj = load_json(source.read_document(root), f"{source.name}: index")
        annotations = dict(obj.get("annotations") or {}) if isinstance(obj, dict) else {}
    entries = [
        Descriptor(i.descriptor.media_type, i.descriptor.digest, i.descriptor.size, platform=i.platform) for i in chosen
    ]
    index = Index.build(entries, annotations)
    descriptor = Descriptor(mediatype.IMAGE_INDEX, index.digest, len(index.raw))
    if target.has_manifest(descriptor, tag):
        total.manifests_skipped += 1
    else:
        target.put_manifest(descriptor, index.raw, tag)
        total.manifests += 1
    return total, descriptor
