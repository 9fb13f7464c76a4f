"""What to take from a scanned docker-archive, and how it becomes OCI images in a layout.

* image selection follows skopeo: ``:NAME:TAG`` or ``:@N``, an error listing the images otherwise;
* each layer is checked against the config's ``rootfs.diff_ids`` (image-spec ``config.md``);
* the config bytes are copied verbatim under the OCI config media type, so the config digest
  (Docker's image ID) is preserved, and each image gets an OCI manifest (``manifest.md``);
* tags follow Docker: one index.json entry per RepoTag (``image-layout.md``), ``latest`` when untagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from pyoci import mediatype
from pyoci.archive.reader import (
    BACKGROUND_WRITE_MIN,
    MANIFEST_FILE,
    ArchiveImage,
    S,
    ScannedArchive,
    SinkFactory,
    StagedLayer,
    scan,
)
from pyoci.archive.source import open_archive
from pyoci.descriptor import CONTAINERD_IMAGE_NAME, REF_NAME, Descriptor
from pyoci.digest import Digest
from pyoci.errors import ArchiveError, DiffIDMismatchError, FormatError
from pyoci.layout.store import BlobWriter, ImageLayout
from pyoci.manifest import ImageConfig, Index, Manifest
from pyoci.mediatype import LayerOptions
from pyoci.progress import Progress
from pyoci.reference import DEFAULT_TAG, ArchiveReference, ImageName


def layout_sinks(layout: ImageLayout) -> SinkFactory[BlobWriter]:
    """Layers staged as temporary blobs of ``layout`` (large ones written on a thread of their own)."""

    def new_sink(size: int) -> BlobWriter:
        return layout.new_blob(background=size > BACKGROUND_WRITE_MIN)

    return new_sink


def select_images(images: list[ArchiveImage], ref: ArchiveReference, all_images: bool) -> list[ArchiveImage]:
    """Choose the images of ``ref`` among the archive's, as skopeo does.

    Raises:
        ArchiveError: no image matches, or several images and no selector (the message lists them).
    """
    listing = "; ".join(image.label() for image in images)
    if all_images:
        if ref.name is not None or ref.position is not None:
            raise FormatError(f"{ref}: --all converts every image; drop the selector")
        return images
    if ref.position is not None:
        if ref.position >= len(images):
            raise ArchiveError(f"{ref.path}: no image @{ref.position}; the archive holds {listing}")
        return [images[ref.position]]
    if ref.name is not None:
        for image in images:
            if any(_same_name(tag, ref.name) for tag in image.repo_tags):
                return [image]
        raise ArchiveError(f"{ref.path}: no image named {ref.name.familiar()}; the archive holds {listing}")
    if len(images) > 1:
        raise ArchiveError(
            f"{ref.path}: holds {len(images)} images, choose one with :@N or :NAME:TAG, or --all: {listing}"
        )
    return images


def _same_name(repo_tag: str, wanted: ImageName) -> bool:
    try:
        return ImageName.parse(repo_tag) == wanted
    except FormatError:
        return False


def tag_annotations(image: ArchiveImage, tag: str | None, where: str) -> list[dict[str, str]]:
    """The index.json annotations of ``image``: one set per tag to write (image-spec ``image-layout.md``).

    With ``tag``, that one ``org.opencontainers.image.ref.name``; else one set per RepoTag (ref.name =
    the tag, ``io.containerd.image.name`` = the full name, as Docker writes), or ``latest``.

    Raises:
        ArchiveError: a RepoTag that is not an image name (``where`` opens the message).
    """
    if tag is not None:
        return [{REF_NAME: tag}]
    if not image.repo_tags:
        return [{REF_NAME: DEFAULT_TAG}]
    out = []
    for repo_tag in dict.fromkeys(image.repo_tags):  # a tag listed twice is written once
        try:
            name = ImageName.parse(repo_tag)
        except FormatError as exc:
            raise ArchiveError(f"{where}: RepoTags: {exc}") from exc
        out.append({CONTAINERD_IMAGE_NAME: str(name), REF_NAME: name.tag or DEFAULT_TAG})
    return out


@dataclass
class PlannedImage(Generic[S]):
    """An archive image checked and staged, not yet written.

    Attributes:
        image: its manifest.json entry.
        config: its parsed config (with the exact bytes).
        layers: its staged layers, base first, each matching the config's diff_id.
    """

    image: ArchiveImage
    config: ImageConfig
    layers: list[StagedLayer[S]]


def plan_image(
    archive: ScannedArchive[S], image: ArchiveImage, progress: Progress | None = None
) -> PlannedImage[S]:
    """Check one image of a scanned archive: config parsed, every layer staged and matched to its diff_id.

    Args:
        archive: the scanned archive.
        image: the manifest.json entry to plan.
        progress: receives byte counts for small layers staged now.

    Raises:
        ArchiveError: an invalid config, or a layer count that differs from the diff_ids.
        DiffIDMismatchError: a layer whose sha256 is not its diff_id (image-spec ``config.md``).
    """
    where = f"{archive.name}: {image.config}"
    try:
        config = ImageConfig.parse(archive.document(image.config), where)
    except FormatError as exc:
        raise ArchiveError(str(exc)) from exc
    if len(config.diff_ids) != len(image.layers):
        raise ArchiveError(
            f"{where}: config lists {len(config.diff_ids)} diff_ids but manifest.json lists {len(image.layers)} layers"
        )
    layers = []
    for position, (path, expected) in enumerate(zip(image.layers, config.diff_ids, strict=True)):
        staged = archive.layer(path, progress)
        if not staged.result.is_tar:
            raise ArchiveError(f"{archive.name}: layer {position} ({path}): not a tar archive")
        if staged.result.diff_id != expected:
            raise DiffIDMismatchError(
                f"{archive.name}: layer {position} ({path}): diff_id mismatch: "
                f"config says {expected}, layer data is {staged.result.diff_id}"
            )
        layers.append(staged)
    return PlannedImage(image, config, layers)


def check_unique_tags(tagged: list[tuple[ArchiveImage, list[dict[str, str]]]], where: str) -> None:
    """Refuse two images of one import that would get the same tag in one layout.

    Raises:
        ArchiveError: they would (the message names both images).
    """
    seen: dict[str, ArchiveImage] = {}
    for image, annotation_sets in tagged:
        for entry in annotation_sets:
            name = entry[REF_NAME]
            other = seen.get(name)
            if other is not None:
                raise ArchiveError(
                    f"{where}: images {other.label()} and {image.label()} would both be tagged {name!r}"
                    " in one layout; convert them separately with a destination tag"
                )
            seen[name] = image


@dataclass(frozen=True)
class ConvertedImage:
    """One archive image written into a layout and tagged in its index.json.

    Attributes:
        manifest: the index.json entry of the image manifest (without annotations), with platform.
        config: the config descriptor.
        layers: the layer descriptors, base layer first.
        diff_ids: the layers' diff_ids.
        tags: the ``org.opencontainers.image.ref.name`` values written for it.
        source: the manifest.json entry it came from.
        warnings: what the config departs from the OCI schema in and was kept (see ``ImageConfig.warnings``).
    """

    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[Digest, ...]
    tags: tuple[str, ...]
    source: ArchiveImage
    warnings: tuple[str, ...] = ()


def import_archive(
    ref: ArchiveReference,
    layout: ImageLayout,
    options: LayerOptions,
    progress: Progress | None = None,
    *,
    tag: str | None = None,
    all_images: bool = False,
) -> list[ConvertedImage]:
    """Read the docker-archive of ``ref`` in one pass and write the images it selects into ``layout``.

    Layers stream through the layer pipeline into temporary blobs of ``layout``; only when every
    selected image checks out (config, diff_ids, tags) are they committed by :func:`import_images`.

    Args:
        ref: the archive and its selector.
        layout: the destination, opened for writing.
        options: layer compression, level, threads.
        progress: receives per-layer byte counts.
        tag: the one tag to write; None for each image's RepoTags (``latest`` when untagged).
        all_images: take every image of the archive (no selector allowed).

    Returns:
        The images written, in manifest.json order.

    Raises:
        ArchiveError: the archive is unreadable, ambiguous or inconsistent, or an image config is
            not one the OCI schema and Go tools accept (nothing is written).
        DiffIDMismatchError: a layer does not match its diff_id (nothing is written).
        LayoutError: the layout cannot be written.
    """
    name = ref.display
    with open_archive(ref.path) as stream, scan(stream, name, layout_sinks(layout), options, progress) as archive:
        chosen = select_images(archive.images(), ref, all_images)
        planned = [plan_image(archive, image, progress) for image in chosen]
        return import_images(layout, planned, tag, name)


def import_images(
    layout: ImageLayout, planned: list[PlannedImage[BlobWriter]], tag: str | None, where: str
) -> list[ConvertedImage]:
    """Write the planned images into ``layout`` and tag them in its index.json (see :func:`tag_annotations`).

    Every tag, descriptor, manifest and index entry is built, and every document serialised, before
    the first blob is committed: input that cannot be written raises with the layout untouched, and
    the scan removes the temporary blobs. Only filesystem writes follow the first commit; if one fails
    (a full disk), the blobs committed so far stay unreferenced until ``pyoci gc`` removes them (doing
    it here could race with another writer that commits the same blob meanwhile). The layers are made
    durable with one filesystem flush.

    Args:
        layout: the destination (held with :func:`pyoci.layout.store.writing`).
        planned: the images, each checked by :func:`plan_image`.
        tag: the destination tag, or None for each image's RepoTags.
        where: the archive's name for messages.

    Raises:
        ArchiveError: a RepoTag that is not an image name, or two images for one tag.
        LayoutError: a blob or index.json could not be written.
    """
    tagged = [(plan.image, tag_annotations(plan.image, tag, f"{where}: {MANIFEST_FILE}")) for plan in planned]
    check_unique_tags(tagged, where)
    images: list[ConvertedImage] = []
    documents: list[tuple[bytes, str]] = []
    entries: list[Descriptor] = []
    for plan, (_, annotation_sets) in zip(planned, tagged, strict=True):
        layers = tuple(Descriptor(s.result.media_type, s.writer.finish(), s.writer.size) for s in plan.layers)
        config = Descriptor(mediatype.IMAGE_CONFIG, plan.config.digest, len(plan.config.raw))
        manifest = Manifest.build(config, layers)
        descriptor = manifest.descriptor(platform=plan.config.platform)
        entries += [descriptor.with_annotations(annotations) for annotations in annotation_sets]
        documents += [(plan.config.raw, mediatype.IMAGE_CONFIG), (manifest.raw, manifest.media_type)]
        tags = tuple(annotations[REF_NAME] for annotations in annotation_sets)
        images.append(
            ConvertedImage(descriptor, config, layers, plan.config.diff_ids, tags, plan.image, plan.config.warnings)
        )
    Index.build(entries)  # serialised now: an entry that cannot be written fails before any commit
    layout.commit_blobs([(staged.writer, staged.result.media_type) for plan in planned for staged in plan.layers])
    for raw, media_type in documents:
        layout.put_blob(raw, media_type)
    layout.sync()
    names = {entry.ref_name for entry in entries}
    layout.update_index(lambda current: [d for d in current if d.ref_name not in names] + entries)
    return images
