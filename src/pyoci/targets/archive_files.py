"""Targets that are single files: a docker-archive (for ``docker load``) and an oci-archive.

**docker-archive** (Docker's ``image/spec/v1.2`` save format, as ``skopeo copy ... docker-archive:``
writes it): ``manifest.json`` lists one entry per image (``Config``, ``RepoTags``, ``Layers``), each
config as ``<hex>.json`` (its bytes kept, so the image ID is the source's config digest) and each
layer **uncompressed** as ``<diff_id hex>.tar``, as Docker stores them. Each layer is decompressed
and hashed on its way in; when the image is complete its diff_ids must equal the config's
``rootfs.diff_ids`` (image-spec ``config.md``). Only image manifests can go in: an image index has
to be narrowed to its platforms first.

**oci-archive**: an OCI image layout staged beside the file and written as one deterministic tar.

Both are staged in a temporary directory beside the destination file and written whole when the
command succeeds (:meth:`finish`): the file is replaced atomically, never left half-written.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyoci import mediatype
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest, Digester
from pyoci.errors import DiffIDMismatchError, FormatError, LayoutError
from pyoci.fsutil import temp_name
from pyoci.jsonio import dump_json
from pyoci.layout.ociarchive import write_tree_tar
from pyoci.layout.store import ImageLayout
from pyoci.manifest import ImageConfig, Manifest
from pyoci.progress import Progress
from pyoci.reference import ImageName
from pyoci.targets import BlobSource
from pyoci.targets.layout import LayoutTarget

MANIFEST_FILE = "manifest.json"
_CHUNK = 1 << 20


def output_file(path: str) -> Path:
    """The file a path names (a symlink followed), checked to be a regular file or absent.

    The path's missing parent directories are created, but never along a symbolic link: a dangling
    link (the file's or a directory's) into a directory that does not exist is refused.

    Raises:
        LayoutError: it exists and is not a regular file (a device, a FIFO, a directory), its directory
            cannot be created, or a symbolic link leads into something that is not a directory.
    """
    given = Path(path)
    try:
        if not given.is_symlink():
            given.parent.mkdir(parents=True, exist_ok=True)  # a dangling link on the way: FileExistsError
    except OSError as exc:
        raise LayoutError(f"{path}: cannot create its directory: {exc.strerror}") from exc
    target = given.resolve()
    if target.exists() and not target.is_file():
        raise LayoutError(f"{path}: exists and is not a regular file")
    if not target.parent.is_dir():
        raise LayoutError(f"{path}: a symbolic link into {target.parent}, which is not a directory")
    return target


@contextlib.contextmanager
def staging_beside(target: Path) -> Iterator[Path]:
    """A temporary directory beside ``target``, removed at exit."""
    directory = temp_name(target.parent)
    directory.mkdir()
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class _Layer:
    path: Path
    diff_id: Digest


class DockerArchiveTarget:
    """Collects images (config and uncompressed layers) for a docker-archive written by :meth:`finish`.

    Args:
        path: the archive file to write (replaced when it exists).
        staging: an empty directory beside it, for the layers.
        name: the ``RepoTags`` entry of every image (``docker-archive:FILE:NAME:TAG``), or None.
    """

    def __init__(self, path: Path, staging: Path, name: ImageName | None) -> None:
        self.path = path
        self.staging = staging
        self.repo_tag = name.familiar() if name is not None else None
        self.configs: dict[Digest, bytes] = {}
        self.layers: dict[Digest, _Layer] = {}
        self.images: list[tuple[Digest, list[Digest]]] = []

    @property
    def name(self) -> str:
        """``docker-archive:FILE``."""
        return f"docker-archive:{self.path}"

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the blob was taken already (a layer shared by two images is stored once)."""
        return descriptor.digest in self.configs or descriptor.digest in self.layers

    def has_manifest(self, descriptor: Descriptor, tag: str | None = None) -> bool:
        """False: a docker-archive keeps no manifests (each image is written from its config and layers)."""
        return False

    def put_blob(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        """Take a config (kept in memory, bounded) or a layer (decompressed into a staging file, hashed).

        Raises:
            DigestMismatchError: the source's bytes differ from ``descriptor``.
            FormatError: a layer's compressed data is corrupt, or a blob is neither an image config nor
                a layer.
            LayoutError: the layer cannot be staged (a full disk) or its source file cannot be read.
        """
        declared = mediatype.layer_compression(descriptor.media_type)
        if descriptor.media_type in mediatype.CONFIG_TYPES:
            self.configs[descriptor.digest] = source.read_document(descriptor)
            return
        if declared is None:
            raise FormatError(f"{self.name}: {descriptor.media_type!r} is neither an image config nor a layer")
        from pyoci import compression  # the codecs: loaded only by a run that writes a docker-archive

        path = temp_name(self.staging)
        digester = Digester()
        progress.start(f"{descriptor.digest.encoded[:12]}", descriptor.size)
        try:
            with source.open_blob(descriptor) as stored, open(path, "wb") as out:
                actual, _, whole = compression.sniff(stored)
                if actual is not declared:
                    raise FormatError(
                        f"{source.name}: layer {descriptor.digest}: media type says {declared.value},"
                        f" the bytes are {actual.value}"
                    )
                plain = compression.open_reader(actual, whole)
                while chunk := plain.read(_CHUNK):
                    digester.update(chunk)
                    with _writing(self.name):
                        out.write(chunk)
                    progress.advance(len(chunk))
                with _writing(self.name):
                    out.flush()  # so that closing it has nothing left to fail on
                while stored.read(_CHUNK):  # the verifying reader checks the stored blob at its end
                    pass
        except compression.DECODE_ERRORS as exc:
            if (failed := compression.io_error(exc)) is not None:  # the source file's read, not its data
                raise LayoutError(f"{source.name}: layer {descriptor.digest}: cannot read: {failed.strerror}") from exc
            message = f"{source.name}: layer {descriptor.digest}: corrupt {declared.value} data: {exc}"
            raise FormatError(message) from exc
        finally:
            progress.finish()
        self.layers[descriptor.digest] = _Layer(path, digester.finish())

    def put_manifest(self, descriptor: Descriptor, raw: bytes, tag: str | None) -> None:
        """Record an image manifest (its config and layers must be in already); an index is refused.

        Raises:
            FormatError: an image index, or a manifest whose config is not an image config.
            DiffIDMismatchError: a layer's uncompressed digest differs from the config's diff_id.
        """
        if descriptor.media_type not in mediatype.MANIFEST_TYPES:
            raise FormatError(f"{self.name}: holds single-platform images; choose the platforms with --platform")
        manifest = Manifest.parse(raw, f"{self.name}: manifest {descriptor.digest}", descriptor.media_type)
        config = ImageConfig.parse(self.configs[manifest.config.digest], f"{self.name}: config")
        diff_ids = [self.layers[layer.digest].diff_id for layer in manifest.layers]
        if list(config.diff_ids) != diff_ids:
            raise DiffIDMismatchError(
                f"{self.name}: manifest {descriptor.digest}: the layers' diff_ids differ from the config's rootfs"
            )
        self.images.append((manifest.config.digest, [layer.digest for layer in manifest.layers]))

    def finish(self) -> None:
        """Write the archive: configs, layers and ``manifest.json``, as one deterministic tar (atomically).

        Raises:
            LayoutError: no image was copied, or the file cannot be written.
        """
        if not self.images:
            raise LayoutError(f"{self.name}: no image to write")
        tree = self.staging / "tree"
        tree.mkdir()
        entries = []
        for config_digest, layer_digests in self.images:
            config_name = f"{config_digest.encoded}.json"
            (tree / config_name).write_bytes(self.configs[config_digest])
            names = []
            for digest in layer_digests:
                layer = self.layers[digest]
                name = f"{layer.diff_id.encoded}.tar"
                if not (tree / name).exists():
                    layer.path.rename(tree / name)
                names.append(name)
            tags = [self.repo_tag] if self.repo_tag is not None else None
            entries.append({"Config": config_name, "RepoTags": tags, "Layers": names})
        (tree / MANIFEST_FILE).write_bytes(dump_json(entries))
        try:
            write_tree_tar(tree, self.path)
        except OSError as exc:
            raise LayoutError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc


class OciArchiveTarget(LayoutTarget):
    """A :class:`LayoutTarget` on a staging layout, written as an oci-archive file by :meth:`finish`.

    Args:
        path: the oci-archive file to write (replaced when it exists).
        staging: an empty directory beside it (the staging layout is created in it).
    """

    def __init__(self, path: Path, staging: Path) -> None:
        super().__init__(ImageLayout.create(staging / "layout"))
        self.path = path

    @property
    def name(self) -> str:
        """``oci-archive:FILE``."""
        return f"oci-archive:{self.path}"

    def finish(self) -> None:
        """Write the staged layout as the oci-archive file (atomically).

        Raises:
            LayoutError: the file cannot be written.
        """
        try:
            write_tree_tar(self.layout.root, self.path)
        except OSError as exc:
            raise LayoutError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc



@contextlib.contextmanager
def _writing(name: str) -> Iterator[None]:
    """Writes to a staging file of destination ``name``: their failure (a full disk) is a LayoutError naming it."""
    try:
        yield
    except OSError as exc:
        raise LayoutError(f"{name}: cannot write: {exc.strerror or exc}") from exc
