"""``pyoci convert``: a docker-archive into an OCI image layout, in one streaming pass.

Rules (and where they come from):

* the archive is read by :mod:`pyoci.archive` (layers checked against the config's diff_ids,
  the config kept byte for byte, see :mod:`pyoci.archive.plan`);
* each index.json entry carries ``org.opencontainers.image.ref.name`` and the platform read from the
  config (image-spec ``image-layout.md``, ``image-index.md``); without a destination tag each RepoTag
  gives one entry whose ref.name is the tag and ``io.containerd.image.name`` the full name, as Docker
  writes; an untagged image gets ``latest``;
* image selection follows skopeo: ``:NAME:TAG`` or ``:@N``, an error listing the images otherwise;
* ``platform`` sets or corrects the platform of the one image converted (Nix's ``dockerTools``
  writes ``arm`` without the variant): os and architecture must agree with the config
  (:meth:`~pyoci.platform.Platform.overridden_by`, the rule merge has). The override is recorded in
  the index.json entries' ``platform`` only, as merge records its own: the config keeps its exact
  bytes, so its digest stays the image ID Docker computes for the archive, the manifest digest is
  the one a plain convert gives, and an index entry's ``platform`` is what runtimes select on
  (``image-index.md``); a later ``pyoci merge`` of the layout carries it into the image index.
  The image is converted into a staging layout inside the destination first and linked in only
  once the platform agrees, so a refused override writes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyoci.archive.plan import ConvertedImage, import_archive
from pyoci.errors import FormatError
from pyoci.layout.ociarchive import write_tree_tar
from pyoci.layout.store import ImageLayout, writing
from pyoci.mediatype import LayerOptions
from pyoci.platform import Platform
from pyoci.progress import Progress
from pyoci.reference import ArchiveReference, LayoutReference, Reference, check_layout_tag, expect, parse
from pyoci.sources import staging_directory
from pyoci.targets.archive_files import output_file
from pyoci.targets.copy import copy_image
from pyoci.targets.layout import LayoutSource, layout_target


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert` wrote.

    Attributes:
        destination: the layout directory (or oci-archive file) written.
        images: the converted images, in manifest.json order.
    """

    destination: Path
    images: tuple[ConvertedImage, ...]


CONVERT_HINT = "to publish an image to a registry or a static tree, use 'pyoci push'"


def as_layout_reference(ref: Reference | str | os.PathLike[str], tag: str | None = None) -> LayoutReference:
    """Interpret a destination argument as an OCI layout reference; ``tag`` fills a missing tag.

    Raises:
        FormatError: another transport, a digest, or a tag given twice with different values.
    """
    dest = expect(parse(ref, bare="layout"), ("oci", "oci-archive"), "convert writes", CONVERT_HINT)
    assert isinstance(dest, LayoutReference)  # expect() allowed layouts only
    if dest.digest is not None:
        raise FormatError(f"{dest}: convert writes an image under a tag, not a digest")
    if tag is not None:
        check_layout_tag(tag, "--tag")
        if dest.tag is not None and dest.tag != tag:
            raise FormatError(f"{dest}: tag given twice ({dest.tag!r} and --tag {tag!r})")
        dest = LayoutReference(dest.path, tag, dest.archive)
    return dest


def convert(
    source: Reference | str | os.PathLike[str],
    destination: Reference | str | os.PathLike[str],
    *,
    tag: str | None = None,
    all_images: bool = False,
    platform: Platform | str | None = None,
    options: LayerOptions | None = None,
    progress: Progress | None = None,
) -> ConvertResult:
    """Convert a docker-archive into an OCI image layout (or oci-archive), in one streaming pass.

    Args:
        source: ``PATH``, ``-`` (stdin) or ``docker-archive:PATH[:NAME:TAG|:@N]``; plain, gzip or zstd.
        destination: ``DIR``, ``oci:DIR[:TAG]`` or ``oci-archive:FILE[:TAG]``.
        tag: the destination tag when the reference has none.
        all_images: convert every image of the archive.
        platform: ``os/arch[/variant]`` to record for the one image converted instead of its
            config's (see the module docstring).
        options: layer compression, level, threads.
        progress: receives per-layer byte counts.

    Returns:
        The images written, with their manifest descriptors.

    Raises:
        FormatError: a malformed reference, option or platform, or a platform whose os or
            architecture contradicts the config (nothing is written).
        ArchiveError: the archive is unreadable, ambiguous or inconsistent (nothing is written).
        DiffIDMismatchError: a layer does not match its diff_id (nothing is written).
        LayoutError: the destination is not a layout or cannot be written.
    """
    src = expect(parse(source, bare="archive"), ("docker-archive",), "convert reads")
    assert isinstance(src, ArchiveReference)  # expect() allowed archives only
    dest = as_layout_reference(destination, tag)
    options = options or LayerOptions()
    if all_images and dest.tag is not None:
        raise FormatError(f"{dest}: --all writes each image's own tags; drop the destination tag")
    override = Platform.parse(platform) if isinstance(platform, str) else platform
    if all_images and override is not None:
        raise FormatError(f"{src}: --platform sets the platform of one image; drop --all")
    if dest.archive:
        return _convert_to_oci_archive(src, dest, all_images, override, options, progress)
    if override is not None:
        return _convert_with_platform(src, dest, override, options, progress)
    with writing(dest.path) as layout:
        images = import_archive(src, layout, options, progress, tag=dest.tag, all_images=all_images)
    return ConvertResult(Path(dest.path), tuple(images))


def _convert_with_platform(
    src: ArchiveReference, dest: LayoutReference, platform: Platform, options: LayerOptions, progress: Progress | None
) -> ConvertResult:
    """Convert into a staging layout, check the override, then link the image in with its entries' platform set."""
    with layout_target(dest.path) as target, staging_directory(target.layout.root) as tmp:
        staged = ImageLayout.create(tmp / "layout")
        [image] = import_archive(src, staged, options, progress, tag=dest.tag)
        assert image.manifest.platform is not None  # import_archive records the config's platform
        chosen = image.manifest.platform.overridden_by(platform, str(src))
        source = LayoutSource(staged, verified=True)
        copy_image(source, image.manifest, target, None)
        target.commit()
        entries = [dataclasses.replace(entry, platform=chosen) for entry in staged.read_index().manifests]
        names = {entry.ref_name for entry in entries}
        target.layout.update_index(lambda current: [d for d in current if d.ref_name not in names] + entries)
    converted = dataclasses.replace(image, manifest=dataclasses.replace(image.manifest, platform=chosen))
    return ConvertResult(Path(dest.path), (converted,))


def _convert_to_oci_archive(
    src: ArchiveReference,
    dest: LayoutReference,
    all_images: bool,
    platform: Platform | None,
    options: LayerOptions,
    progress: Progress | None,
) -> ConvertResult:
    target = output_file(dest.path)  # a symlink followed; only a regular file is replaced
    with tempfile.TemporaryDirectory(prefix=".pyoci-tmp-", dir=target.parent) as tmp:
        staging = os.path.join(tmp, "layout")
        result = convert(
            src,
            LayoutReference(staging, dest.tag),
            all_images=all_images,
            platform=platform,
            options=options,
            progress=progress,
        )
        write_tree_tar(Path(staging), target)
        shutil.rmtree(staging)
    return ConvertResult(target, result.images)
