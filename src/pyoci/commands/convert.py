"""``pyoci convert``: a docker-archive into an OCI image layout, in one streaming pass.

Rules (and where they come from):

* the archive is read by :mod:`pyoci.archive` (layers checked against the config's diff_ids,
  the config kept byte for byte, see :mod:`pyoci.archive.plan`);
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

from pyoci.archive.plan import import_images, layout_sinks, plan_image, select_images
from pyoci.archive.reader import ArchiveImage, scan
from pyoci.archive.source import open_archive
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, LayoutError
from pyoci.layout.ociarchive import write_layout_tar
from pyoci.layout.store import writing
from pyoci.progress import Progress
from pyoci.reference import (
    ArchiveReference,
    BarePath,
    LayoutReference,
    Reference,
    check_layout_tag,
    parse_reference,
)
from pyoci.transcode import LayerOptions


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
        warnings: what its config departs from the OCI config schema in and was kept as it is (a null
            field, a missing ``rootfs.diff_ids``: Go tools read them as absent), one message each.
    """

    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[Digest, ...]
    tags: tuple[str, ...]
    source: ArchiveImage
    warnings: tuple[str, ...] = ()


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
        ArchiveError: the archive is unreadable, ambiguous or inconsistent, or an image config is
            not one the OCI schema and Go tools accept (nothing is written).
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
        scan(stream, name, layout_sinks(layout), options, progress) as archive,
    ):
        chosen = select_images(archive.images(), src, all_images)
        planned = [plan_image(archive, image, progress) for image in chosen]
        images = [
            ConvertedImage(i.manifest, i.config, i.layers, i.diff_ids, i.tags, i.source, i.warnings)
            for i in import_images(layout, planned, dest.tag, name)
        ]
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
