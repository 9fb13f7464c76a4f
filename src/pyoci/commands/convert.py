"""``pyoci convert``: a docker-archive into an OCI image layout, in one streaming pass.

Rules (and where they come from):

* layers are checked against the config's ``rootfs.diff_ids`` (image-spec ``config.md``);
* the config bytes are copied verbatim under the OCI config media type, so the config digest
  (Docker's image ID) is preserved;
* each index.json entry carries ``org.opencontainers.image.ref.name`` and the platform read from the
  config (image-spec ``image-layout.md``, ``image-index.md``); without a destination tag each RepoTag
  gives one entry whose ref.name is the tag and ``io.containerd.image.name`` the full name, as Docker
  writes; an untagged image gets ``latest``;
* image selection follows skopeo: ``:NAME:TAG`` or ``:@N``, an error listing the images otherwise.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyoci import mediatype
from pyoci.archive.reader import ArchiveImage, ScannedArchive, StagedLayer, scan
from pyoci.archive.source import open_archive
from pyoci.descriptor import CONTAINERD_IMAGE_NAME, REF_NAME, Descriptor
from pyoci.digest import Digest
from pyoci.errors import ArchiveError, DiffIDMismatchError, FormatError, LayoutError
from pyoci.layout.ociarchive import write_layout_tar
from pyoci.layout.store import ImageLayout, writing
from pyoci.manifest import ImageConfig, Manifest
from pyoci.progress import Progress
from pyoci.reference import (
    ArchiveReference,
    BarePath,
    ImageName,
    LayoutReference,
    Reference,
    check_layout_tag,
    parse_reference,
)
from pyoci.transcode import LayerOptions

DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class ConvertedImage:
    """One image written by :func:`convert`.

    Attributes:
        manifest: the index.json entry of the image manifest (without annotations), with platform.
        config: the config descriptor.
        layers: the layer descriptors, base layer first.
        diff_ids: the layers' diff_ids.
        tags: the ``org.opencontainers.image.ref.name`` values written for it.
        source: the manifest.json entry it came from.
    """

    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[Digest, ...]
    tags: tuple[str, ...]
    source: ArchiveImage


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert` wrote.

    Attributes:
        destination: the layout directory (or oci-archive file) written.
        images: the converted images, in manifest.json order.
    """

    destination: Path
    images: tuple[ConvertedImage, ...]


def as_archive_reference(ref: Reference | str) -> ArchiveReference:
    """Interpret a source argument as a docker-archive reference (a bare path is taken whole).

    Raises:
        FormatError: the reference names another transport.
    """
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    if isinstance(ref, BarePath):
        return ArchiveReference(ref.path)
    if not isinstance(ref, ArchiveReference):
        raise FormatError(f"{ref}: expected a docker-archive (a path, '-' or docker-archive:PATH)")
    return ref


def as_layout_reference(ref: Reference | str, tag: str | None = None) -> LayoutReference:
    """Interpret a destination argument as an OCI layout reference; ``tag`` fills a missing tag.

    Raises:
        FormatError: another transport, or a tag given twice with different values.
    """
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    if isinstance(ref, BarePath):
        ref = LayoutReference(ref.path)
    if not isinstance(ref, LayoutReference):
        raise FormatError(f"{ref}: expected an OCI layout (a directory, oci:DIR[:TAG] or oci-archive:FILE)")
    if tag is not None:
        check_layout_tag(tag, "--tag")
        if ref.tag is not None and ref.tag != tag:
            raise FormatError(f"{ref}: tag given twice ({ref.tag!r} and --tag {tag!r})")
        ref = LayoutReference(ref.path, tag, ref.archive)
    return ref


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


def _tag_annotations(image: ArchiveImage, tag: str | None, where: str) -> list[dict[str, str]]:
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
class PlannedImage:
    """An archive image checked and staged, not yet written.

    Attributes:
        image: its manifest.json entry.
        config: its parsed config (with the exact bytes).
        layers: its staged layers, base first, each matching the config's diff_id.
        annotations: one index.json annotation set per tag to write.
    """

    image: ArchiveImage
    config: ImageConfig
    layers: list[StagedLayer]
    annotations: list[dict[str, str]]


def plan_image(
    archive: ScannedArchive, image: ArchiveImage, tag: str | None, progress: Progress | None = None
) -> PlannedImage:
    """Check one image of a scanned archive: config parsed, every layer staged and matched to its diff_id.

    Args:
        archive: the scanned archive.
        image: the manifest.json entry to plan.
        tag: the destination tag, or None for the image's RepoTags.
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
    return PlannedImage(image, config, layers, _tag_annotations(image, tag, f"{archive.name}: manifest.json"))


def _check_unique_tags(planned: list[PlannedImage], where: str) -> None:
    seen: dict[str, ArchiveImage] = {}
    for plan in planned:
        for entry in plan.annotations:
            name = entry[REF_NAME]
            other = seen.get(name)
            if other is not None:
                raise ArchiveError(
                    f"{where}: images {other.label()} and {plan.image.label()} would both be tagged {name!r}"
                    " in one layout; convert them separately with a destination tag"
                )
            seen[name] = plan.image


def _write(layout: ImageLayout, planned: list[PlannedImage]) -> list[ConvertedImage]:
    layer_blobs = [(staged.writer, staged.result.media_type) for plan in planned for staged in plan.layers]
    committed = iter(layout.commit_blobs(layer_blobs))
    results = []
    for plan in planned:
        layer_descriptors = [next(committed) for _ in plan.layers]
        config = layout.put_blob(plan.config.raw, mediatype.IMAGE_CONFIG)
        manifest = Manifest.build(config, layer_descriptors)
        layout.put_blob(manifest.raw, manifest.media_type)
        results.append(
            ConvertedImage(
                manifest=manifest.descriptor(platform=plan.config.platform),
                config=config,
                layers=tuple(layer_descriptors),
                diff_ids=plan.config.diff_ids,
                tags=tuple(a[REF_NAME] for a in plan.annotations),
                source=plan.image,
            )
        )
    layout.sync()
    entries = [
        image.manifest.with_annotations(annotations)
        for image, plan in zip(results, planned, strict=True)
        for annotations in plan.annotations
    ]
    names = {entry.ref_name for entry in entries}
    layout.update_index(lambda current: [d for d in current if d.ref_name not in names] + entries)
    return results


def convert(
    source: Reference | str,
    destination: Reference | str,
    *,
    tag: str | None = None,
    all_images: bool = False,
    options: LayerOptions | None = None,
    progress: Progress | None = None,
) -> ConvertResult:
    """Convert a docker-archive into an OCI image layout (or oci-archive), in one streaming pass.

    Args:
        source: ``PATH``, ``-`` (stdin) or ``docker-archive:PATH[:NAME:TAG|:@N]``; plain, gzip or zstd.
        destination: ``DIR``, ``oci:DIR[:TAG]`` or ``oci-archive:FILE[:TAG]``.
        tag: the destination tag when the reference has none.
        all_images: convert every image of the archive.
        options: layer compression, level, threads.
        progress: receives per-layer byte counts.

    Returns:
        The images written, with their manifest descriptors.

    Raises:
        FormatError: a malformed reference or option.
        ArchiveError: the archive is unreadable, ambiguous or inconsistent (nothing is written).
        DiffIDMismatchError: a layer does not match its diff_id (nothing is written).
        LayoutError: the destination is not a layout or cannot be written.
    """
    src = as_archive_reference(source)
    dest = as_layout_reference(destination, tag)
    options = options or LayerOptions()
    if all_images and dest.tag is not None:
        raise FormatError(f"{dest}: --all writes each image's own tags; drop the destination tag")
    if dest.archive:
        return _convert_to_oci_archive(src, dest, all_images, options, progress)
    name = "stdin" if src.path == "-" else src.path
    with (
        open_archive(src.path) as stream,
        writing(dest.path) as layout,
        scan(stream, name, layout, options, progress) as archive,
    ):
        chosen = select_images(archive.images(), src, all_images)
        planned = [plan_image(archive, image, dest.tag, progress) for image in chosen]
        _check_unique_tags(planned, name)
        images = _write(layout, planned)
    return ConvertResult(Path(dest.path), tuple(images))


def _convert_to_oci_archive(
    src: ArchiveReference, dest: LayoutReference, all_images: bool, options: LayerOptions, progress: Progress | None
) -> ConvertResult:
    # follow a symlink to the file it names; replace only a regular file (never a device or FIFO)
    target = Path(os.path.realpath(dest.path))
    if target.exists() and not target.is_file():
        raise LayoutError(f"{dest.path}: exists and is not a regular file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LayoutError(f"{dest.path}: cannot create its directory: {exc.strerror}") from exc
    with tempfile.TemporaryDirectory(prefix=".pyoci-tmp-", dir=target.parent) as tmp:
        staging = os.path.join(tmp, "layout")
        result = convert(
            src, LayoutReference(staging, dest.tag), all_images=all_images, options=options, progress=progress
        )
        write_layout_tar(Path(staging), target)
        shutil.rmtree(staging)
    return ConvertResult(target, result.images)
