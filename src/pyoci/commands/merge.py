"""``pyoci merge``: one multi-platform image (an image index) from per-platform images.

Rules (and where they come from):

* the result is an image index (image-spec ``image-index.md``) whose ``manifests`` list each
  platform's manifest with its ``platform``, in a canonical order (:func:`canonical_order`) whatever
  the order of the sources or of concurrent appends, so the same set of images always gives the
  same bytes; index.json gets one entry for the tag, of media type image index, with
  ``org.opencontainers.image.ref.name`` (``image-layout.md``). With ``flat`` the platform entries go
  straight into index.json instead, untagged;
* per-platform manifests and configs are kept byte for byte (their digests do not change); each blob
  is stored once, and every source blob is checked against its digest while it is hard-linked (same
  filesystem) or copied (:meth:`~pyoci.layout.store.ImageLayout.blob_file`'s verifying reader);
* a source index's BuildKit attestation manifests (:func:`pyoci.walk.is_attestation`) are not
  platforms and are left out (``copy`` of the whole index keeps them);
* a platform comes from the image config, normalised, or from the source index entry's ``platform``
  when it has one (see :func:`pyoci.walk.entry_platform`); a source may override it (:class:`MergeSource`, CLI
  ``--platform N=os/arch[/variant]``);
* merging into an existing tag appends platforms (an existing platform is replaced only with
  ``replace``; a tag holding one manifest becomes an index holding it). In a layout, the read of
  the existing tag and the index.json update happen under one index lock, so concurrent merges into
  one tag lose nothing; blobs are staged under temporary names and renamed into place only once
  every check passed, so a failed merge leaves the destination as it was;
* the destination may also be a registry repository (``docker://``) or a static tree repository
  (``static:``): each platform's manifest is copied there by the one copy loop (blobs the repository
  has are skipped, blobs of another repository of the same registry are mounted, so merging images
  already pushed downloads no layer), then the index is put under the tag, last. A registry has no
  lock: two merges into one registry tag at once may lose one's platforms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyoci import mediatype
from pyoci.descriptor import REF_NAME, Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, LayoutError, PlatformConflictError, RegistryError, TagError
from pyoci.layout.store import INDEX_FILE, ImageLayout
from pyoci.manifest import ImageConfig, Index, Manifest
from pyoci.mediatype import LayerOptions
from pyoci.platform import Platform
from pyoci.progress import Progress
from pyoci.reference import (
    DEFAULT_TAG,
    ImageName,
    LayoutReference,
    Reference,
    StaticReference,
    expect,
    layout_directory,
    parse,
)
from pyoci.sources import ALL_SOURCES, open_source
from pyoci.targets import Target
from pyoci.targets.copy import copy_image, mount_sources
from pyoci.targets.layout import SOURCE_ONLY_ANNOTATIONS, LayoutTarget, layout_target
from pyoci.targets.options import RegistryOptions
from pyoci.targets.session import Destinations
from pyoci.walk import DocumentReader, PlatformImage, platform_images


@dataclass(frozen=True)
class MergeSource:
    """One source of :func:`merge`.

    Attributes:
        reference: ``oci:DIR[:TAG]``, a layout directory, or a docker-archive (any form
            :func:`pyoci.convert` reads).
        platform: the platform to record for the source's image instead of the one its config
            gives (for configs that lack a variant); only for single-image sources. os and
            architecture must agree with the config's.
    """

    reference: Reference | str
    platform: Platform | None = None


def parse_platform_override(text: str, count: int) -> tuple[int, Platform]:
    """Parse a ``--platform`` value: ``N=os/arch[/variant]``, or ``os/arch[/variant]`` with one source.

    ``N`` is the 1-based position of the source among the merge's sources (a platform never
    contains ``=``, so the form is unambiguous whatever the paths hold).

    Args:
        text: the option value.
        count: how many sources the merge has.

    Returns:
        The 0-based source position and the normalised platform.

    Raises:
        FormatError: not of that form, ``N`` out of range, or a platform that does not parse.
    """
    number, sep, platform_text = text.rpartition("=")
    if not sep:
        if count != 1:
            raise FormatError(f"--platform {text!r}: with {count} sources, say which: N=os/arch[/variant]")
        return 0, Platform.parse(text)
    if not number.isdigit() or not 1 <= int(number) <= count:
        raise FormatError(f"--platform {text!r}: {number!r} is not a source number from 1 to {count}")
    return int(number) - 1, Platform.parse(platform_text)


@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge` wrote.

    Attributes:
        destination: the layout directory, or the registry or static tree repository.
        tag: the tag written; None with ``flat``.
        index: the index.json entry of the image index (with its ref.name); None with ``flat``.
        manifests: the platform entries (with ``platform``) in canonical order (:func:`canonical_order`):
            those that were under the tag (or untagged, with ``flat``) before and the ones added.
        added: the digests of the manifests this merge added or replaced.
        warnings: what the merge accepted but a user should know (an ``arm`` image with no variant).
    """

    destination: str
    tag: str | None
    index: Descriptor | None
    manifests: tuple[Descriptor, ...]
    added: tuple[Digest, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())

    @property
    def digests(self) -> tuple[Digest, ...]:
        """What the CLI prints: the index digest, or with ``flat`` the platform manifest digests."""
        if self.index is not None:
            return (self.index.digest,)
        return tuple(d.digest for d in self.manifests)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "destination": self.destination,
            "tag": self.tag,
            "index": self.index.to_json() if self.index is not None else None,
            "manifests": [d.to_json() for d in self.manifests],
            "added": [str(d) for d in self.added],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class _Entry:
    """A platform entry of the image being built, and where it came from (for messages)."""

    descriptor: Descriptor
    platform: Platform | None
    origin: str


def _override(item: PlatformImage, platform: Platform, where: str) -> Platform:
    checked = item.config.platform.overridden_by(platform, where)
    return dataclasses.replace(checked, os_version=item.platform.os_version, os_features=item.platform.os_features)


def _child_descriptor(item: PlatformImage, platform: Platform) -> Descriptor:
    """The index entry of a platform image, with its platform and without the source's tags.

    It is the descriptor that pointed at the manifest: its digest, in its algorithm, was verified
    when the manifest was read.
    """
    annotations = {k: v for k, v in item.descriptor.annotations.items() if k not in SOURCE_ONLY_ANNOTATIONS}
    return dataclasses.replace(item.descriptor, annotations=annotations, platform=platform)


_ARCH_RANK = {"amd64": 0, "arm64": 1, "arm": 2, "386": 3}


def canonical_order(platform: Platform | None) -> tuple[int, str, int, str, tuple[int, ...], str, tuple[str, ...]]:
    """The sort key of an index entry, by its platform (entries with none, artifacts, sort last).

    Linux first, then by os; amd64, arm64, arm, 386, then other architectures by name; variants
    newest first (``v8``, ``v7``, ``v6``); then ``os.version`` and ``os.features``.

    The order does not depend on the sources' order or on the order concurrent merges append in,
    so one set of images gives one index digest (image-spec ``image-index.md`` leaves the order
    to the writer; clients pick the first match, and platforms never overlap here).
    """
    if platform is None:
        return (2, "", 0, "", (), "", ())
    norm = platform.normalized()
    variant = tuple(-int(d) for d in norm.variant.lstrip("v").split(".") if d.isdigit()) or (0,)
    return (
        0 if norm.os == "linux" else 1,
        norm.os,
        _ARCH_RANK.get(norm.architecture, len(_ARCH_RANK)),
        norm.architecture,
        variant,
        norm.os_version,
        norm.os_features,
    )


def _warnings(entries: Sequence[_Entry]) -> tuple[str, ...]:
    """An ``arm`` image without a variant: runtimes cannot tell ARMv6 from ARMv7 builds by it."""
    return tuple(
        f"{e.origin}: platform {e.platform} names no variant (its config has none); give it with"
        " --platform N=linux/arm/v6 or v7 so that runtimes choose the right image"
        for e in entries
        if e.platform is not None and e.platform.architecture == "arm" and not e.platform.variant
    )


def _combine(existing: list[_Entry], new: list[_Entry], replace_existing: bool) -> tuple[list[_Entry], list[Digest]]:
    """Add ``new`` to ``existing`` (a platform already present is an error, or replaced); sort canonically."""
    out = list(existing)
    added: list[Digest] = []
    for entry in new:
        same = next(
            (i for i, e in enumerate(out) if e.platform and entry.platform and e.platform.matches(entry.platform)), None
        )
        if same is None:
            out.append(entry)
        elif out[same].descriptor.digest == entry.descriptor.digest:
            continue  # the very same image again: nothing to do
        elif replace_existing:
            out[same] = entry
        else:
            raise PlatformConflictError(
                f"platform {entry.platform}: both {out[same].origin} ({out[same].descriptor.digest}) and"
                f" {entry.origin} ({entry.descriptor.digest}) provide it; use --replace to keep the later one"
            )
        added.append(entry.descriptor.digest)
    return sorted(out, key=lambda e: canonical_order(e.platform)), added


def _existing_entry(reader: DocumentReader, descriptor: Descriptor, origin: str) -> _Entry:
    """An entry already under the tag; without a ``platform`` field, its config says (None: not an image)."""
    platform = descriptor.platform
    if platform is None and descriptor.media_type in mediatype.MANIFEST_TYPES:
        name = f"{reader.name}: manifest {descriptor.digest}"
        manifest = Manifest.parse(reader.read_document(descriptor), name, descriptor.media_type)
        try:
            platform = ImageConfig.parse(reader.read_document(manifest.config), f"{name}: config").platform
        except FormatError:
            platform = None  # an artifact, not an image: kept, and no platform to clash with
    return _Entry(descriptor, platform, origin)


def _strip(descriptor: Descriptor) -> Descriptor:
    annotations = {k: v for k, v in descriptor.annotations.items() if k not in SOURCE_ONLY_ANNOTATIONS}
    return descriptor.with_annotations(annotations)


def _gather(
    target: Target,
    session: Destinations | None,
    sources: Sequence[MergeSource],
    options: LayerOptions,
    progress: Progress | None,
    jobs: int,
) -> list[_Entry]:
    staging = target.layout.root if isinstance(target, LayoutTarget) else None
    entries: list[_Entry] = []
    for position, item in enumerate(sources, 1):
        where = f"source {position} ({item.reference})"
        with open_source(
            item.reference, what="merge reads", staging=staging, options=options, progress=progress, session=session
        ) as source:
            images = [image for root, _ in source.roots() for image in platform_images(source, root)]
            if item.platform is not None and len(images) != 1:
                raise FormatError(f"{where}: holds {len(images)} platform images; --platform applies to one image")
            mount_from = mount_sources(source, target)
            for image in images:
                platform = image.platform if item.platform is None else _override(image, item.platform, where)
                copy_image(source, image.descriptor, target, None, mount_from=mount_from, progress=progress, jobs=jobs)
                entries.append(_Entry(_child_descriptor(image, platform), platform, where))
    return entries


def _destination(destination: Reference | str) -> LayoutReference | ImageName | StaticReference:
    ref: Reference | str = destination
    if isinstance(destination, str) and destination.startswith(("docker://", "static:")):
        ref = parse(destination)
    if not isinstance(ref, ImageName | StaticReference):
        return layout_directory(ref, "merge writes")
    if isinstance(ref, StaticReference):
        ref.repo()
    if ref.digest is not None:
        raise FormatError(f"{destination}: merge writes an image index under a tag, not a digest")
    return ref


def merge(
    sources: Sequence[MergeSource | Reference | str],
    destination: Reference | str,
    *,
    flat: bool = False,
    replace: bool = False,
    annotations: Mapping[str, str] | None = None,
    options: LayerOptions | None = None,
    registry: RegistryOptions | None = None,
    progress: Progress | None = None,
) -> MergeResult:
    """Merge per-platform images into one multi-platform image in a layout, a registry or a static tree.

    The result follows image-spec ``image-index.md`` (an index whose ``manifests`` carry ``platform``)
    and ``image-layout.md`` (index.json entry with ``org.opencontainers.image.ref.name``).

    Args:
        sources: the images, in the order their platforms are listed: any source pyoci reads
            (OCI layouts, ``oci:DIR[:TAG]`` or a directory; docker-archives, converted on the fly
            with ``options``; ``docker://``, ``static:``, ``oci-archive:``); a multi-platform image
            contributes all its platforms; a :class:`MergeSource` carries a platform override.
        destination: ``DIR`` or ``oci:DIR[:TAG]`` (created if needed), ``docker://HOST/REPO[:TAG]``
            or ``static:DIR:REPO[:TAG]``; tag ``latest`` when absent.
        flat: write the platform entries straight into index.json (untagged, with ``platform``)
            instead of an image index under the tag.
        replace: a platform given twice (or already under the tag) is replaced by the
            later image, in place, instead of being an error.
        annotations: the image index's own annotations (added to those it has).
        options: layer compression for docker-archive sources (as :func:`pyoci.convert`).
        registry: how to reach registries.
        progress: receives per-layer byte counts while archives are converted and blobs copied.

    Returns:
        The index written (or, with ``flat``, the platform entries).

    Raises:
        FormatError: a malformed reference, platform override or option combination.
        PlatformConflictError: two images for one platform without ``replace``.
        TagError: a source layout whose tag is absent or ambiguous, or has several images and no tag.
        LayoutError, ArchiveError: a source that is not an image.
        DigestMismatchError: a source blob whose bytes differ from its digest.
        RegistryError: a registry refused access or an operation.

    On any error a layout destination is left as it was; a registry or static tree gets the index
    (the tag) only once every platform is in.
    """
    items = [s if isinstance(s, MergeSource) else MergeSource(s) for s in sources]
    if not items:
        raise FormatError("merge: no source given")
    for item in items:
        expect(parse(item.reference), ALL_SOURCES, "merge reads")  # refuse bad references before writing
    options = options or LayerOptions()
    remote = _destination(destination)
    if not isinstance(remote, LayoutReference):
        if flat:
            raise FormatError(f"{destination}: --flat writes index.json entries, which only a layout has")
        return _merge_remote(items, remote, replace, annotations or {}, options, registry, progress)
    dest = remote
    if flat and dest.tag is not None:
        raise FormatError(f"{dest}: --flat writes untagged platform entries; drop the destination tag")
    if flat and annotations:
        raise FormatError(f"{dest}: --annotation sets the image index's annotations; --flat writes no image index")
    tag = None if flat else dest.tag or DEFAULT_TAG
    with layout_target(dest.path) as target:
        layout = target.layout
        new, _ = _combine(
            [], _gather(target, None, items, options, progress, (registry or RegistryOptions()).jobs), replace
        )
        outcome = _Outcome()

        def change(current: list[Descriptor]) -> list[Descriptor]:
            if tag is None:
                return _change_flat(layout, target, current, new, replace, outcome)
            return _change_tagged(layout, target, current, new, tag, replace, annotations or {}, outcome)

        layout.update_index(change)
    return MergeResult(
        str(layout.root), tag, outcome.index, tuple(outcome.manifests), tuple(outcome.added), _warnings(new)
    )


def _merge_remote(
    items: Sequence[MergeSource],
    dest: ImageName | StaticReference,
    replace_platforms: bool,
    annotations: Mapping[str, str],
    options: LayerOptions,
    registry: RegistryOptions | None,
    progress: Progress | None,
) -> MergeResult:
    tag = dest.tag or DEFAULT_TAG
    where = dest.uri if isinstance(dest, ImageName) else str(dest)
    current: ImageName | StaticReference
    if isinstance(dest, ImageName):
        current = ImageName(dest.domain, dest.repository, tag)
    else:
        current = StaticReference(dest.root, dest.repo(), tag)
    with Destinations(registry) as session:
        _, target = session.target(dest)
        new, _ = _combine(
            [], _gather(target, session, items, options, progress, session.options.jobs), replace_platforms
        )
        existing: list[_Entry] = []
        index_annotations: dict[str, str] = {}
        with open_source(current, what="merge reads", session=session) as reader:
            try:
                [(old, _)] = reader.roots()
            except (TagError, RegistryError) as exc:
                if isinstance(exc, RegistryError) and exc.status != 404:
                    raise
                old = None
            if old is not None and old.media_type in mediatype.INDEX_TYPES:
                old_index = Index.parse(reader.read_document(old), f"{where}: index {old.digest}")
                index_annotations = dict(old_index.annotations)
                existing = [_existing_entry(reader, child, where) for child in old_index.manifests]
            elif old is not None:
                found = _existing_entry(reader, old, where)
                existing = [_Entry(dataclasses.replace(old, platform=found.platform), found.platform, where)]
        combined, added = _combine(existing, new, replace_platforms)
        index = Index.build([e.descriptor for e in combined], {**index_annotations, **annotations})
        descriptor = Descriptor(mediatype.IMAGE_INDEX, index.digest, len(index.raw))
        target.put_manifest(descriptor, index.raw, tag)
    return MergeResult(where, tag, descriptor, tuple(e.descriptor for e in combined), tuple(added), _warnings(new))


@dataclass
class _Outcome:
    """What the index.json update decided (filled inside the index lock)."""

    index: Descriptor | None = None
    manifests: list[Descriptor] = field(default_factory=list)
    added: list[Digest] = field(default_factory=list)


def _change_flat(
    layout: ImageLayout,
    target: LayoutTarget,
    current: list[Descriptor],
    new: list[_Entry],
    replace_platforms: bool,
    outcome: _Outcome,
) -> list[Descriptor]:
    untagged = [i for i, d in enumerate(current) if d.ref_name is None]
    existing = [_existing_entry(layout, current[i], f"{INDEX_FILE} entry {i}") for i in untagged]
    combined, added = _combine(existing, new, replace_platforms)
    target.commit()
    out = list(current)
    for position, i in enumerate(untagged):
        out[i] = combined[position].descriptor
    out.extend(entry.descriptor for entry in combined[len(untagged) :])
    outcome.manifests, outcome.added = [e.descriptor for e in combined], added
    return out


def _change_tagged(
    layout: ImageLayout,
    target: LayoutTarget,
    current: list[Descriptor],
    new: list[_Entry],
    tag: str,
    replace_platforms: bool,
    annotations: Mapping[str, str],
    outcome: _Outcome,
) -> list[Descriptor]:
    positions = [i for i, d in enumerate(current) if d.ref_name == tag]
    if len({current[i].digest for i in positions}) > 1:
        raise TagError(f"{layout.root}: tag {tag!r} is ambiguous: {len(positions)} {INDEX_FILE} entries hold it")
    existing: list[_Entry] = []
    index_annotations: dict[str, str] = {}
    entry_annotations: dict[str, str] = {}
    origin = f"{layout.root}:{tag}"
    if positions:
        old = current[positions[0]]
        entry_annotations = dict(old.annotations)
        if old.media_type in mediatype.INDEX_TYPES:
            old_index = Index.parse(layout.read_blob(old), f"{layout.root}: index {old.digest}")
            index_annotations = dict(old_index.annotations)
            existing = [_existing_entry(layout, child, origin) for child in old_index.manifests]
        elif old.media_type in mediatype.MANIFEST_TYPES:
            found = _existing_entry(layout, _strip(old), origin)
            descriptor = found.descriptor
            if descriptor.platform is None and found.platform is not None:
                descriptor = dataclasses.replace(descriptor, platform=found.platform)
            existing = [_Entry(descriptor, found.platform, origin)]
        else:
            raise LayoutError(f"{layout.root}: tag {tag!r} points at {old.media_type!r}, not an image")
    combined, added = _combine(existing, new, replace_platforms)
    index = Index.build([e.descriptor for e in combined], {**index_annotations, **annotations})
    target.commit()
    written = layout.put_blob(index.raw, mediatype.IMAGE_INDEX)
    layout.sync()
    entry = written.with_annotations({**entry_annotations, REF_NAME: tag})
    out = [d for i, d in enumerate(current) if i not in positions[1:]]
    if positions:
        out[positions[0]] = entry
    else:
        out.append(entry)
    outcome.index, outcome.manifests, outcome.added = entry, [e.descriptor for e in combined], added
    return out
