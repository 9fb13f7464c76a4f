"""``pyoci build``: images from files and static binaries, for several platforms in one command, reproducibly.

Rules (and where they come from):

* **One image per platform** (``--platform``, in order): one platform gives an image manifest; several
  give an image index whose entries carry ``platform`` (image-spec ``image-index.md``), each
  pointing at its own manifest and config (``manifest.md``, ``config.md``).
* **Base**: ``scratch`` (no layers) or any source :func:`pyoci.sources.open_source` reads. Its layers
  are kept with their descriptors and bytes; its config is the starting point of the new one. A
  multi-platform base gives each platform the image its index lists for it (a missing platform is an
  error naming it); a single-image base serves the one platform it is for (os and architecture must
  agree with its config, the variant may be set: :meth:`~pyoci.platform.Platform.overridden_by`).
  Without ``--platform``, every platform of the base is built (entries for ``unknown/unknown``, the
  attestation manifests buildx adds, are left out).
* **New layers**, on top of the base's: each ``--layer`` file (a tar, plain, gzip or zstd, through
  :func:`~pyoci.transcode.transcode_layer`: kept byte for byte when already in the output codec),
  then one layer holding every ``--add``, written by :mod:`pyoci.tarwrite` (the reproducibility
  rules are there) with every parent directory. ``{os}``, ``{arch}`` and ``{variant}`` in a source
  path are replaced per platform (``{variant}`` is empty when the platform has none, and for
  ``arm64/v8``). Platforms
  whose layer comes out the same share it.
* **``--add SRC:DEST``**, as Dockerfile ``COPY``: DEST is absolute; a file lands at DEST (inside it
  when DEST ends with ``/``); a directory's contents land below DEST. SRC is followed when it is a
  symbolic link; links inside a tree are stored as links, never followed (a link pointing out of
  the tree stays a link). Two ``--add`` writing one path is an error unless both write a directory
  there; so is a path written below something another ``--add`` writes as a file or link.
* **Config** (``config.md``): ``created`` and a history entry per new layer at
  ``SOURCE_DATE_EPOCH`` (epoch 0 when unset), ``rootfs.diff_ids`` extended, os, architecture and
  variant of the platform; ``User``, ``WorkingDir``, ``Entrypoint`` and ``Cmd`` replaced when given,
  ``Env``, ``Labels`` and ``ExposedPorts`` merged key by key; as in a Dockerfile, a new entrypoint
  without a new cmd drops the base's cmd. A build that only changes the config adds one
  ``empty_layer`` history entry. Every other field of the base config is kept in place.
* **Annotations** go on the image index and on each manifest.
* **Destination**: any target of :class:`~pyoci.targets.session.Destinations` (``oci:``,
  ``oci-archive:``, ``docker://``, ``static:``, and ``docker-archive:`` for one platform: it holds
  single-platform images). New blobs are staged in a temporary layout (in the destination layout
  when it is one, so they hard-link into place) and the image goes out through the one copy loop,
  children first; a layout or file destination changes only at the end, so a failed build writes
  nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoci import mediatype
from pyoci.archive.reader import BACKGROUND_WRITE_MIN
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, TagError
from pyoci.jsonio import dump_json, load_json
from pyoci.layout.store import BlobWriter, ImageLayout
from pyoci.manifest import Index, Manifest
from pyoci.mediatype import LayerOptions
from pyoci.platform import Platform
from pyoci.progress import NoProgress, Progress
from pyoci.reference import (
    DEFAULT_TAG,
    ArchiveReference,
    ImageName,
    LayoutReference,
    Reference,
    StaticReference,
    expect,
    parse,
)
from pyoci.sources import ALL_SOURCES, open_source, staging_directory
from pyoci.streams import Readable
from pyoci.targets import BlobSource, Source, Target
from pyoci.targets.copy import copy_image
from pyoci.targets.layout import LayoutSource, LayoutTarget
from pyoci.targets.options import RegistryOptions
from pyoci.targets.session import Destinations
from pyoci.tarwrite import DIRECTORY, Stamp, TarEntry, TarStream, check_name, parent_entries, tree_entries
from pyoci.transcode import transcode_layer
from pyoci.walk import PlatformImage, platform_images

DESTINATIONS = ("oci", "oci-archive", "docker", "static", "docker-archive")
SCRATCH = "scratch"
"""The ``--from`` value that names no base (a path named so is ``./scratch``)."""
"""The transports build writes."""

EPOCH_VARIABLE = "SOURCE_DATE_EPOCH"
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last time RFC 3339 can write
_PROTOCOLS = ("tcp", "udp", "sctp")
_PLACEHOLDERS = ("{os}", "{arch}", "{variant}")


def parse_command(text: str, option: str) -> tuple[str, ...]:
    """Parse an ``--entrypoint``/``--cmd`` value: a JSON array of strings, or a plain string as one argument.

    ``[]`` clears the value.

    Raises:
        FormatError: text starting with ``[`` that is not a JSON array of strings.
    """
    if not text.lstrip().startswith("["):
        return (text,)
    value = load_json(text.encode(), f"{option} {text!r}")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FormatError(f"{option} {text!r}: expected a JSON array of strings")
    return tuple(value)


def parse_port(text: str) -> str:
    """Parse ``--expose PORT[/PROTO]`` into the config's ``ExposedPorts`` key ``PORT/PROTO`` (tcp by default).

    Raises:
        FormatError: a port outside 1-65535 or a protocol other than tcp, udp or sctp.
    """
    port, _, protocol = text.partition("/")
    protocol = (protocol or "tcp").lower()
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535) or protocol not in _PROTOCOLS:
        raise FormatError(f"--expose {text!r}: expected PORT[/tcp|udp|sctp] with PORT from 1 to 65535")
    return f"{int(port)}/{protocol}"


def parse_chown(text: str) -> tuple[int, int]:
    """Parse ``--chown UID[:GID]`` (numeric; GID defaults to UID, as Docker's ``COPY --chown``).

    Raises:
        FormatError: not one or two non-negative integers below 2**32.
    """
    uid, sep, gid = text.partition(":")
    ids = [uid, gid if sep else uid]
    if not all(i.isascii() and i.isdigit() and int(i) < 1 << 32 for i in ids):
        raise FormatError(f"--chown {text!r}: expected UID[:GID], numeric")
    return int(ids[0]), int(ids[1])


def resolve_epoch(value: int | None) -> int:
    """The build time in seconds since the epoch: ``value``, else ``$SOURCE_DATE_EPOCH``, else 0.

    The variable follows reproducible-builds.org's specification (a decimal integer; empty means unset).

    Raises:
        FormatError: a malformed or negative value, or one past the year 9999.
    """
    where = "--source-date-epoch"
    if value is None:
        text = os.environ.get(EPOCH_VARIABLE, "").strip()
        if not text:
            return 0
        where = EPOCH_VARIABLE
        if not (text.isascii() and text.isdigit()):
            raise FormatError(f"{where} {text!r}: expected a non-negative integer (seconds since 1970-01-01 UTC)")
        value = int(text)
    if not 0 <= value <= _MAX_EPOCH:
        raise FormatError(f"{where} {value}: expected seconds from 0 to {_MAX_EPOCH}")
    return value


def rfc3339(epoch: int) -> str:
    """``epoch`` as the UTC timestamp image configs carry, e.g. ``1970-01-01T00:00:00Z``."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ConfigChanges:
    """What a build changes in the image config's ``config`` object (image-spec ``config.md``).

    Attributes:
        entrypoint: ``Entrypoint`` (empty: removed), or None to keep.
        cmd: ``Cmd`` (empty: removed), or None to keep.
        env: ``Env`` entries to set, key by key.
        labels: ``Labels`` to set, key by key.
        workdir: ``WorkingDir``, or None to keep.
        user: ``User``, or None to keep.
        expose: ``ExposedPorts`` keys to add (``PORT/PROTO``).
    """

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None
    expose: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise FormatError(f"--workdir {self.workdir!r}: expected an absolute path")

    def __bool__(self) -> bool:
        return self != ConfigChanges()

    def apply(self, inner: dict[str, Any]) -> None:
        """Change ``inner`` (a config's ``config`` object) in place; new keys in the image-spec's order."""
        if self.user is not None:
            inner["User"] = self.user
        if self.expose:
            inner["ExposedPorts"] = {**(inner.get("ExposedPorts") or {}), **{port: {} for port in self.expose}}
        if self.env:
            env = [str(item) for item in inner.get("Env") or []]
            for key, value in self.env.items():
                at = next((i for i, item in enumerate(env) if item.partition("=")[0] == key), None)
                if at is None:
                    env.append(f"{key}={value}")
                else:
                    env[at] = f"{key}={value}"
            inner["Env"] = env
        if self.entrypoint is not None:
            _set_or_drop(inner, "Entrypoint", self.entrypoint)
            if self.cmd is None:
                inner.pop("Cmd", None)  # Dockerfile ENTRYPOINT: the base's CMD no longer applies
        if self.cmd is not None:
            _set_or_drop(inner, "Cmd", self.cmd)
        if self.workdir is not None:
            inner["WorkingDir"] = self.workdir
        if self.labels:
            inner["Labels"] = {**(inner.get("Labels") or {}), **self.labels}


def _set_or_drop(inner: dict[str, Any], key: str, value: tuple[str, ...]) -> None:
    if value:
        inner[key] = list(value)
    else:
        inner.pop(key, None)


@dataclass(frozen=True)
class AddSpec:
    """One ``--add``.

    Attributes:
        text: the option value as given, for messages.
        source: the source path, placeholders not yet replaced.
        dest: the absolute destination; ends with ``/`` when a file goes inside it.
    """

    text: str
    source: str
    dest: str

    @classmethod
    def parse(cls, value: str | tuple[str, str]) -> AddSpec:
        """Parse ``SRC:DEST`` (DEST starts at the first ``:/``, so SRC may hold colons) or a ``(SRC, DEST)`` pair.

        Raises:
            FormatError: no absolute DEST, an empty SRC, or a ``..`` or refused name in DEST.
        """
        if isinstance(value, tuple):
            source, dest = value
            text = f"{source}:{dest}"
        else:
            text = value
            at = text.find(":/")
            source, dest = (text[:at], text[at + 1 :]) if at >= 0 else (text.rpartition(":")[0], "")
        if not dest.startswith("/"):
            raise FormatError(f"--add {text!r}: DEST must be an absolute path (SRC:/PATH)")
        if not source:
            raise FormatError(f"--add {text!r}: SRC is empty")
        parts = [part for part in dest.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise FormatError(f"--add {text!r}: DEST must not hold '..'")
        for part in parts:
            check_name(part, f"--add {text!r}: DEST")
        return cls(text, source, "/" + "/".join(parts) + ("/" if dest.endswith("/") and parts else ""))

    def entries(self, platform: Platform, stamp: Stamp) -> list[TarEntry]:
        """The tar entries of this ``--add`` for ``platform``.

        Raises:
            FormatError: the source is missing or unusable for this platform (the message names both).
        """
        source = Path(expand(self.source, platform))
        name = self.dest.strip("/")
        try:
            if (self.dest.endswith("/") or not name) and not source.is_dir():
                name = f"{name}/{check_name(source.name, str(source))}".lstrip("/")
            return tree_entries(source, name, stamp)
        except FormatError as exc:
            raise FormatError(f"--add {self.text!r}: {platform}: {exc}") from exc


def expand(template: str, platform: Platform) -> str:
    """``template`` with ``{os}``, ``{arch}`` and ``{variant}`` replaced by ``platform``'s.

    ``{variant}`` is empty for a platform without one, and for ``arm64/v8`` (the only arm64
    variant, equal to none when platforms are matched), as Go's ``GOARCH=arm64`` file names have it.
    """
    variant = "" if (platform.architecture, platform.variant) == ("arm64", "v8") else platform.variant
    values = (platform.os, platform.architecture, variant)
    for placeholder, value in zip(_PLACEHOLDERS, values, strict=True):
        template = template.replace(placeholder, value)
    return template


def layer_entries(adds: Sequence[AddSpec], platform: Platform, stamp: Stamp) -> tuple[TarEntry, ...]:
    """Every entry of the ``--add`` layer for ``platform``, parents included, sorted by name.

    Raises:
        FormatError: a source missing for this platform, two ``--add`` writing one path (unless both
            write a directory), or a path below a file or link another ``--add`` writes.
    """
    chosen: dict[str, tuple[TarEntry, AddSpec]] = {}
    for add in adds:
        for entry in add.entries(platform, stamp):
            known = chosen.get(entry.name)
            if known is None:
                chosen[entry.name] = (entry, add)
            elif not (known[0].kind == DIRECTORY and entry.kind == DIRECTORY):
                raise FormatError(f"--add {known[1].text!r} and --add {add.text!r} both write /{entry.name}")
    for name, (_, add) in chosen.items():
        parts = name.split("/")
        for depth in range(1, len(parts)):
            above = chosen.get("/".join(parts[:depth]))
            if above is not None and above[0].kind != DIRECTORY:
                raise FormatError(
                    f"--add {add.text!r} writes /{name} below /{above[0].name}, which --add {above[1].text!r}"
                    " writes as a file or link"
                )
    entries = [entry for entry, _ in chosen.values()]
    entries += parent_entries(chosen, stamp.mtime)
    return tuple(sorted(entries, key=lambda e: e.key))


@dataclass(frozen=True)
class BuiltImage:
    """One platform's image of a build.

    Attributes:
        platform: its platform.
        manifest: the manifest descriptor, with ``platform``.
        config: the config descriptor.
        layers: every layer descriptor, base layers first.
        added: how many layers at the end of :attr:`layers` this build added.
    """

    platform: Platform
    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    added: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "platform": self.platform.to_json(),
            "manifest": self.manifest.to_json(),
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
            "added": self.added,
        }


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` wrote.

    Attributes:
        destination: the destination as written, e.g. ``oci:out/app`` or ``docker://host/repo``.
        tag: the tag written.
        root: the descriptor of what the tag points at: the image index, or the one platform's manifest.
        images: one per platform, in order.
    """

    destination: str
    tag: str
    root: Descriptor
    images: tuple[BuiltImage, ...]

    @property
    def digest(self) -> Digest:
        """The digest the CLI prints: of the image index, or of the manifest for one platform."""
        return self.root.digest

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "destination": self.destination,
            "tag": self.tag,
            "digest": str(self.root.digest),
            "mediaType": self.root.media_type,
            "size": self.root.size,
            "images": [image.to_json() for image in self.images],
        }


@dataclass(frozen=True)
class _Recipe:
    """Everything a build takes, parsed and checked before anything is opened."""

    platforms: tuple[Platform, ...]
    layers: tuple[str, ...]
    adds: tuple[AddSpec, ...]
    changes: ConfigChanges
    stamp: Stamp
    annotations: Mapping[str, str]
    options: LayerOptions

    @property
    def created(self) -> str:
        return rfc3339(self.stamp.mtime)


class _Overlay:
    """The blobs of a build: the new ones staged in a layout, the rest from the base."""

    def __init__(self, new: LayoutSource, base: BlobSource | None) -> None:
        self._new = new
        self._base = base

    def _holder(self, descriptor: Descriptor) -> BlobSource:
        if self._base is None or self._new.has_blob(descriptor):
            return self._new
        return self._base

    @property
    def name(self) -> str:
        return self._base.name if self._base is not None else self._new.name

    @property
    def verified(self) -> bool:
        return self._base is None or self._base.verified

    def read_document(self, descriptor: Descriptor) -> bytes:
        return self._holder(descriptor).read_document(descriptor)

    def open_blob(self, descriptor: Descriptor) -> AbstractContextManager[Readable]:
        return self._holder(descriptor).open_blob(descriptor)

    def has_blob(self, descriptor: Descriptor) -> bool:
        return self._holder(descriptor).has_blob(descriptor)

    def blob_path(self, descriptor: Descriptor) -> Path | None:
        return self._holder(descriptor).blob_path(descriptor)


def build(
    destination: Reference | str | os.PathLike[str],
    *,
    platforms: Sequence[Platform | str] = (),
    base: Reference | str | os.PathLike[str] | None = None,
    add: Sequence[str | tuple[str, str]] = (),
    layers: Sequence[str | os.PathLike[str]] = (),
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    expose: Sequence[str] = (),
    annotations: Mapping[str, str] | None = None,
    chown: tuple[int, int] | None = None,
    source_date_epoch: int | None = None,
    options: LayerOptions | None = None,
    registry: RegistryOptions | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Build an image for one or more platforms from a base and files, and write it to ``destination``.

    See the module docstring for the rules; the added layer is reproducible (:mod:`pyoci.tarwrite`).

    Args:
        destination: ``oci:DIR[:TAG]`` (or a directory), ``oci-archive:FILE[:TAG]``,
            ``docker://HOST/REPO[:TAG]``, ``static:DIR:REPO[:TAG]`` (tag ``latest`` when absent) or,
            for one platform, ``docker-archive:FILE[:NAME:TAG]``.
        platforms: ``os/arch[/variant]`` values, in index order; empty: every platform of ``base``.
        base: the base image (any source :func:`pyoci.sources.open_source` reads: a layout, an
            archive, a registry or static tree image); None or ``"scratch"`` (as a Dockerfile's
            ``FROM scratch``): no base.
        add: ``SRC:DEST`` values or ``(SRC, DEST)`` pairs; together they make one layer.
        layers: tar files (plain, gzip or zstd) added as layers, before the ``add`` layer.
        entrypoint: ``Entrypoint`` (empty: removed); None keeps the base's.
        cmd: ``Cmd`` (empty: removed); None keeps the base's (unless ``entrypoint`` is given).
        env: ``Env`` variables to set.
        labels: ``Labels`` to set.
        workdir: ``WorkingDir`` (absolute).
        user: ``User``.
        expose: ``PORT[/PROTO]`` values for ``ExposedPorts``.
        annotations: set on the image index and on each manifest.
        chown: ``(uid, gid)`` of the added files; default ``(0, 0)``.
        source_date_epoch: the build time in seconds; None: ``$SOURCE_DATE_EPOCH``, else 0.
        options: compression of the new layers.
        registry: how to reach a registry destination.
        progress: receives per-layer byte counts.

    Returns:
        The tag's descriptor and one entry per platform.

    Raises:
        FormatError: a malformed reference or option, a missing ``--add`` source, a name clash, a
            platform missing from the base, or a ``--layer`` that is not a tar.
        TagError, LayoutError, ArchiveError, RegistryError: the base cannot be read.
        RegistryError: a registry destination refused the image.

    On any error a layout or file destination is left as it was.
    """
    dest = expect(parse(destination, bare="layout"), DESTINATIONS, "build writes")
    assert isinstance(dest, ArchiveReference | LayoutReference | ImageName | StaticReference)  # what expect() allowed
    if not isinstance(dest, ArchiveReference) and dest.digest is not None:
        raise FormatError(f"{dest}: build writes an image under a tag, not a digest")
    if isinstance(dest, StaticReference):
        dest.repo()
    requested = tuple(p if isinstance(p, Platform) else Platform.parse(p) for p in platforms)
    if base == SCRATCH:
        base = None
    if isinstance(dest, ArchiveReference) and len(requested) > 1:
        raise FormatError(f"{dest}: a docker-archive holds single-platform images; build one --platform per archive")
    for i, platform in enumerate(requested):
        if any(platform.matches(other) for other in requested[:i]):
            raise FormatError(f"--platform {platform}: given twice")
    if base is None and not requested:
        raise FormatError("build: name the platforms to build (--platform os/arch[/variant]) or a base (--from)")
    if base is not None:
        expect(parse(base), ALL_SOURCES, "build reads")
    recipe = _Recipe(
        platforms=requested,
        layers=tuple(os.fspath(layer) for layer in layers),
        adds=tuple(AddSpec.parse(a) for a in add),
        changes=ConfigChanges(
            tuple(entrypoint) if entrypoint is not None else None,
            tuple(cmd) if cmd is not None else None,
            dict(env or {}),
            dict(labels or {}),
            workdir,
            user,
            tuple(parse_port(p) for p in expose),
        ),
        stamp=Stamp(resolve_epoch(source_date_epoch), *(chown or (0, 0))),
        annotations=dict(annotations or {}),
        options=options or LayerOptions(),
    )
    for platform in requested:  # refuse missing sources and clashes before opening anything
        _check_inputs(recipe, platform)
    tag = _tag(dest)
    with Destinations(registry) as session:
        _, target = session.target(dest)
        root, images = _build_into(session, target, tag, base, recipe, progress)
    return BuildResult(_destination_text(dest), tag, root, images)


def _check_inputs(recipe: _Recipe, platform: Platform) -> None:
    for template in recipe.layers:
        path = expand(template, platform)
        if not os.path.isfile(path):
            raise FormatError(f"--layer {template!r}: {platform}: {path}: no such file")
    if recipe.adds:
        layer_entries(recipe.adds, platform, recipe.stamp)


def _tag(dest: ArchiveReference | LayoutReference | ImageName | StaticReference) -> str:
    tag = dest.name.tag if isinstance(dest, ArchiveReference) and dest.name is not None else None
    if not isinstance(dest, ArchiveReference):
        tag = dest.tag
    return tag or DEFAULT_TAG


def _destination_text(dest: ArchiveReference | LayoutReference | ImageName | StaticReference) -> str:
    if isinstance(dest, ArchiveReference):
        return f"docker-archive:{dest.path}"
    if isinstance(dest, LayoutReference):
        return str(LayoutReference(dest.path, archive=dest.archive))
    if isinstance(dest, ImageName):
        return f"docker://{dest.domain}/{dest.repository}"
    return f"static:{dest.root}:{dest.repo()}"


@contextlib.contextmanager
def _open_base(
    session: Destinations,
    base: Reference | str | os.PathLike[str] | None,
    staging: Path | None,
    recipe: _Recipe,
    progress: Progress | None,
) -> Iterator[Source | None]:
    if base is None:
        yield None
        return
    with open_source(
        base, what="build reads", staging=staging, options=recipe.options, progress=progress, session=session
    ) as source:
        yield source


def _build_into(
    session: Destinations,
    target: Target,
    tag: str,
    base: Reference | str | os.PathLike[str] | None,
    recipe: _Recipe,
    progress: Progress | None,
) -> tuple[Descriptor, tuple[BuiltImage, ...]]:
    """Stage the new blobs, then copy the image into ``target`` under ``tag``; return the root and images."""
    local = target.layout.root if isinstance(target, LayoutTarget) else None
    with staging_directory(local) as tmp, _open_base(session, base, local, recipe, progress) as source:
        staged = ImageLayout.create(tmp / "layout")
        pairs = _bases(source, recipe.platforms) if source is not None else [(p, None) for p in recipe.platforms]
        if source is not None and not recipe.platforms:
            for platform, _ in pairs:
                _check_inputs(recipe, platform)
        writer = _LayerWriter(staged, recipe, progress or NoProgress())
        images = tuple(_build_image(staged, writer, recipe, platform, image) for platform, image in pairs)
        writer.commit()
        if len(images) == 1:
            root = images[0].manifest
        else:
            index = Index.build([image.manifest for image in images], recipe.annotations)
            root = staged.put_blob(index.raw, mediatype.IMAGE_INDEX)
        copy_image(_Overlay(LayoutSource(staged, verified=True), source), root, target, tag, progress=progress)
    return root, images


def _bases(source: Source, requested: Sequence[Platform]) -> list[tuple[Platform, PlatformImage | None]]:
    """Each platform to build with its base image (see the module docstring).

    Raises:
        FormatError: a requested platform the base lacks, or one contradicting a single-image base.
        TagError: the base names no single image.
    """
    roots = source.roots()
    if len(roots) != 1:
        raise TagError(f"--from {source.name}: holds {len(roots)} images; name one with a tag")
    root = roots[0][0]
    images = platform_images(source, root)
    if not requested:
        # buildx lists its attestation manifests as unknown/unknown: they are no platform to build
        return [(image.platform, image) for image in images if image.platform.os != "unknown"]
    where = f"--from {source.name}"
    if root.media_type in mediatype.MANIFEST_TYPES:
        [image] = images
        known = image.platform
        return [
            (known.overridden_by(Platform(p.os, p.architecture, p.variant or known.variant), where), image)
            for p in requested
        ]
    pairs: list[tuple[Platform, PlatformImage | None]] = []
    for platform in requested:
        found = next((image for image in images if image.platform.matches(platform)), None)
        if found is None:
            held = ", ".join(str(image.platform) for image in images)
            raise FormatError(f"{where}: no image for platform {platform} (it holds {held})")
        pairs.append((found.platform, found))
    return pairs


class _LayerWriter:
    """Writes new layers into the staging layout; a layer that comes out the same for two platforms is written once."""

    def __init__(self, staged: ImageLayout, recipe: _Recipe, progress: Progress) -> None:
        self._staged = staged
        self._recipe = recipe
        self._progress = progress
        self._done: dict[object, tuple[Descriptor, Digest]] = {}
        self._writers: list[tuple[BlobWriter, str]] = []

    def layers(self, platform: Platform) -> list[tuple[Descriptor, Digest, str]]:
        """The new layers of ``platform``: (descriptor, diff_id, history ``created_by``), in order.

        Raises:
            FormatError: a ``--layer`` that is not a tar archive, or an ``--add`` source that changed.
            ArchiveError: a ``--layer`` whose compressed data is corrupt.
        """
        out = []
        for template in self._recipe.layers:
            path = Path(expand(template, platform))
            key = ("layer", path.resolve())
            if key not in self._done:
                with open(path, "rb") as f:
                    self._done[key] = self._write(f, f"--layer {path}", path.stat().st_size, must_be_tar=True)
            out.append((*self._done[key], f"pyoci build: layer {path.name}"))
        if self._recipe.adds:
            entries = layer_entries(self._recipe.adds, platform, self._recipe.stamp)
            if entries not in self._done:
                size = sum(entry.size for entry in entries)
                self._done[entries] = self._write(TarStream(entries, "--add layer"), f"--add layer ({platform})", size)
            dests = " ".join(add.dest for add in self._recipe.adds)
            out.append((*self._done[entries], f"pyoci build: add {dests}"))
        return out

    def _write(self, source: Readable, where: str, size: int, must_be_tar: bool = False) -> tuple[Descriptor, Digest]:
        writer = self._staged.new_blob(background=size > BACKGROUND_WRITE_MIN)
        self._progress.start(where, size)
        try:
            result = transcode_layer(source, writer, self._recipe.options, where, self._progress)
            if must_be_tar and not result.is_tar:
                raise FormatError(f"{where}: not a tar archive")
        except BaseException:
            writer.abort()
            raise
        finally:
            self._progress.finish()
        self._writers.append((writer, result.media_type))
        return Descriptor(result.media_type, writer.finish(), writer.size), result.diff_id

    def commit(self) -> None:
        """Move every layer written into the staging layout, with one filesystem flush."""
        self._staged.commit_blobs(self._writers)


def _build_image(
    staged: ImageLayout, writer: _LayerWriter, recipe: _Recipe, platform: Platform, base: PlatformImage | None
) -> BuiltImage:
    new = writer.layers(platform)
    history: list[dict[str, Any]] = [{"created": recipe.created, "created_by": by} for _, _, by in new]
    if not new and recipe.changes:
        history = [{"created": recipe.created, "created_by": "pyoci build: config", "empty_layer": True}]
    base_layers = base.manifest.layers if base is not None else ()
    raw = _config(
        base.config.raw if base is not None else None,
        platform,
        recipe,
        [diff_id for _, diff_id, _ in new],
        history,
        len(base_layers),
    )
    config = staged.put_blob(raw, mediatype.IMAGE_CONFIG)
    layers = (*base_layers, *(descriptor for descriptor, _, _ in new))
    manifest = Manifest.build(config, layers, recipe.annotations)
    staged.put_blob(manifest.raw, manifest.media_type)
    return BuiltImage(platform, manifest.descriptor(platform=platform), config, layers, len(new))


def _config(
    base: bytes | None,
    platform: Platform,
    recipe: _Recipe,
    diff_ids: list[Digest],
    history: list[dict[str, Any]],
    base_layers: int,
) -> bytes:
    """The new config's bytes (image-spec ``config.md``): the base's, changed as the module docstring says."""
    obj: dict[str, Any] = load_json(base, "base config") if base is not None else {}
    obj["created"] = recipe.created
    obj["architecture"] = platform.architecture
    obj["os"] = platform.os
    if platform.variant:
        obj["variant"] = platform.variant
    else:
        obj.pop("variant", None)
    inner = obj.get("config")
    inner = dict(inner) if isinstance(inner, dict) else {}
    recipe.changes.apply(inner)
    obj["config"] = inner
    rootfs = obj.get("rootfs")
    known = list(rootfs.get("diff_ids") or []) if isinstance(rootfs, dict) else []
    obj["rootfs"] = {"type": "layers", "diff_ids": known + [str(d) for d in diff_ids]}
    past = obj.get("history")
    if not isinstance(past, list):
        # a base without history: one empty entry per base layer keeps history aligned with the layers
        past = [{} for _ in range(base_layers)]
    if past or history:
        obj["history"] = past + history
    return dump_json(obj)
