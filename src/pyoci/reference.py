"""Every reference pyoci reads or writes, parsed in one place, per role (source or destination).

Transports, in skopeo's syntax (the transport ends at the first colon; ``oci:`` and ``static:``
paths end at the next one, so a tag or repository never swallows part of the path):

* ``docker-archive:PATH[:NAME:TAG|:@N]``: a docker-archive and an optional image selector (as a
  destination: ``docker-archive:PATH[:NAME:TAG]``, the name written into ``RepoTags``);
* ``oci:DIR[:TAG|@DIGEST]``: an OCI image layout and a tag (``org.opencontainers.image.ref.name``)
  or a manifest digest;
* ``oci-archive:FILE[:TAG]``: an OCI image layout stored as a tar file;
* ``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]``: a registry repository (:class:`ImageName`; Docker
  Hub names expand as Docker does: ``user/app`` is ``docker.io/user/app``);
* ``static:DIR[:REPO[:TAG|@DIGEST]]``: a static registry tree, or one repository of it;
* ``s3://BUCKET[/PREFIX]``: an S3-compatible bucket (the destination of ``pyoci sync``).

An argument with no transport prefix is taken whole as a path (colons included) or, where a
command says so, as a registry name; ``-`` is standard input. ``os.PathLike`` values are always
paths. Each command states which transports it takes in which role with :func:`expect`, which
names the command that takes a refused one. Names and tags are matched whole (full-match
semantics: a trailing newline is not a valid tag).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pyoci.digest import Digest
from pyoci.errors import FormatError

STDIN = "-"
DEFAULT_TAG = "latest"
"""The tag a reference without one means (Docker's and skopeo's rule)."""
DOCKER_HUB = "docker.io"
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_TAG_RULE = "up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::([0-9]{1,5}))?")
_REF_NAME_COMPONENT = re.compile(r"[A-Za-z0-9]+(?:[-._:@+][A-Za-z0-9]+)*")
_DIGEST_SUFFIX = re.compile(r"(.+)@((?:sha256|sha512):[^:@/]*)")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_UNSUPPORTED = ("dir", "docker-daemon", "containers-storage", "sif", "ostree", "tarball")


def check_layout_tag(tag: str, where: str) -> str:
    """Return ``tag`` if it is a valid ``org.opencontainers.image.ref.name``.

    The grammar is image-spec ``annotations.md``: components of ``A-Za-z0-9`` joined by one of
    ``-._:@+``, separated by ``/`` (so no empty, ``..`` or leading-separator names), at most 255
    characters here.

    Raises:
        FormatError: the tag does not follow that grammar.
    """
    if len(tag) > 255 or not all(_REF_NAME_COMPONENT.fullmatch(part) for part in tag.split("/")):
        raise FormatError(f"{where}: invalid tag {tag!r} (letters and digits joined by - . _ : @ + or /)")
    return tag


def check_registry_tag(tag: str, where: str) -> str:
    """Return ``tag`` if it is a valid registry tag (distribution-spec: ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``).

    Raises:
        FormatError: it is not.
    """
    if not _TAG.fullmatch(tag):
        raise FormatError(f"{where}: {tag!r} is not a valid registry tag ({_TAG_RULE})")
    return tag


def check_repository(path: str, where: str) -> str:
    """Return ``path`` if it is a valid repository name (distribution-spec: lower-case components joined by ``/``).

    Raises:
        FormatError: it is not.
    """
    if not path or len(path) > 255 or not all(_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise FormatError(f"{where}: invalid repository {path!r} (lower-case a-z, 0-9, . _ -)")
    return path


@dataclass(frozen=True)
class ImageName:
    """A registry repository and optional tag or digest, normalised as Docker does (``docker.io``, ``library/``).

    Attributes:
        domain: registry host[:port], e.g. ``docker.io`` or ``localhost:5000``.
        repository: the repository path, e.g. ``library/alpine``.
        tag: the tag, or None.
        digest: the digest, or None.
    """

    domain: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> ImageName:
        """Parse ``[DOMAIN/]PATH[:TAG][@DIGEST]`` with Docker's normalisation rules.

        The first component is a domain when it contains ``.`` or ``:`` or is ``localhost``;
        otherwise the domain is ``docker.io``, and a one-component path there gains ``library/``.

        Raises:
            FormatError: an invalid component, tag or digest.
        """
        rest, digest = text, None
        if "@" in rest:
            rest, _, digest_text = rest.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except FormatError as exc:
                raise FormatError(f"image name {text!r}: {exc}") from exc
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, _, tag = rest.rpartition(":")
            if not _TAG.fullmatch(tag):
                raise FormatError(f"image name {text!r}: invalid tag {tag!r} ({_TAG_RULE})")
        first, sep, remainder = rest.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            domain, path = first, remainder
            port = _DOMAIN.fullmatch(domain)
            if port is None or not 0 < int(port[1] or "1") < 65536:
                raise FormatError(f"image name {text!r}: invalid registry {domain!r}")
        else:
            domain, path = DOCKER_HUB, rest
        if domain == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        check_repository(path, f"image name {text!r}")
        return cls(domain, path, tag, digest)

    def __str__(self) -> str:
        text = f"{self.domain}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def uri(self) -> str:
        """The reference with its transport: ``docker://HOST/REPO[:TAG][@DIGEST]``."""
        return f"docker://{self}"

    def familiar(self) -> str:
        """The short form Docker prints (``alpine:3``, ``user/app:1``, ``host/app:1``)."""
        text = str(self)
        if self.domain == DOCKER_HUB:
            text = text.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
        return text


@dataclass(frozen=True)
class ArchiveReference:
    """``docker-archive:PATH[:NAME:TAG|:@N]``.

    Attributes:
        path: the archive file, or ``-`` for stdin.
        name: the ``NAME:TAG`` selector (a destination: the name written into ``RepoTags``), or None.
        position: the ``@N`` selector, or None.
    """

    path: str
    name: ImageName | None = None
    position: int | None = None

    @property
    def display(self) -> str:
        """The archive's name in messages: its path, or ``stdin``."""
        return "stdin" if self.path == STDIN else self.path

    def __str__(self) -> str:
        if self.name is not None:
            return f"docker-archive:{self.path}:{self.name.familiar()}"
        if self.position is not None:
            return f"docker-archive:{self.path}:@{self.position}"
        return f"docker-archive:{self.path}"


@dataclass(frozen=True)
class LayoutReference:
    """``oci:DIR[:TAG|@DIGEST]`` or ``oci-archive:FILE[:TAG]``.

    Attributes:
        path: the layout directory (or tar file when ``archive``).
        tag: the ``org.opencontainers.image.ref.name`` to read or write, or None.
        archive: True for ``oci-archive:``.
        digest: a manifest or index digest (``oci:DIR@DIGEST``), or None.
    """

    path: str
    tag: str | None = None
    archive: bool = False
    digest: Digest | None = None

    def __str__(self) -> str:
        prefix = "oci-archive" if self.archive else "oci"
        if self.digest is not None:
            return f"{prefix}:{self.path}@{self.digest}"
        return f"{prefix}:{self.path}:{self.tag}" if self.tag else f"{prefix}:{self.path}"


@dataclass(frozen=True)
class StaticReference:
    """``static:DIR[:REPO[:TAG|@DIGEST]]``: a static registry tree, or one repository of it.

    Attributes:
        root: the tree's directory.
        repository: the repository path, or None for the whole tree.
        tag: the tag, or None.
        digest: the digest, or None.
    """

    root: Path
    repository: str | None = None
    tag: str | None = None
    digest: Digest | None = None

    def repo(self) -> str:
        """The repository, for commands that work on one.

        Raises:
            FormatError: the reference names the whole tree (``static:DIR``).
        """
        if self.repository is None:
            raise FormatError(f"{self}: name a repository (static:DIR:REPO[:TAG])")
        return self.repository

    def __str__(self) -> str:
        text = f"static:{self.root}"
        if self.repository is not None:
            text += f":{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class BucketReference:
    """``s3://BUCKET[/PREFIX]``: an S3-compatible bucket and a key prefix.

    Attributes:
        bucket: the bucket name.
        prefix: the key prefix, empty or ending with ``/``.
    """

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


Reference = ArchiveReference | LayoutReference | ImageName | StaticReference | BucketReference
"""Any parsed reference."""

Bare = Literal["source", "archive", "layout", "registry", "none"]
"""How an argument without a transport is read: ``source`` (``-`` or a file: a docker-archive; a
directory: an OCI layout), ``archive``, ``layout``, ``registry`` (an image name), ``none`` (refused)."""


def parse(text: str | os.PathLike[str] | Reference, bare: Bare = "source") -> Reference:
    """Parse a reference argument (see the module docstring); ``bare`` says how to read one with no transport.

    Raises:
        FormatError: a malformed reference, an unknown or unsupported transport, or a bare
            argument where ``bare`` is ``"none"``.
    """
    if isinstance(text, ArchiveReference | LayoutReference | ImageName | StaticReference | BucketReference):
        return text
    if isinstance(text, os.PathLike):
        return _bare(os.fspath(text), bare if bare != "registry" else "source", typed=False)
    if not text:
        raise FormatError("reference: empty")
    transport, sep, rest = text.partition(":")
    if sep and rest.startswith("//"):
        return _url(text, transport, rest[2:])
    if not sep or transport not in ("docker-archive", "oci", "oci-archive", "static", *_UNSUPPORTED):
        return _bare(text, bare)
    if transport in _UNSUPPORTED:
        raise FormatError(f"reference {text!r}: the {transport}: transport is not supported by pyoci")
    if transport == "static":
        return _static(text, rest)
    digest_form = _DIGEST_SUFFIX.fullmatch(rest) if transport == "oci" else None
    if digest_form is not None:
        try:
            return LayoutReference(digest_form.group(1), digest=Digest.parse(digest_form.group(2)))
        except FormatError as exc:
            raise FormatError(f"reference {text!r}: {exc}") from exc
    path, sep, selector = rest.partition(":")
    if not path:
        raise FormatError(f"reference {text!r}: empty path")
    if transport == "docker-archive":
        if not sep:
            return ArchiveReference(path)
        if selector.startswith("@"):
            if not selector[1:].isdigit() or not selector[1:].isascii():
                raise FormatError(f"reference {text!r}: '@' must be followed by an image number")
            return ArchiveReference(path, position=int(selector[1:]))
        name = ImageName.parse(selector)
        if name.digest is not None or name.tag is None:
            raise FormatError(f"reference {text!r}: the image selector must be NAME:TAG")
        return ArchiveReference(path, name=name)
    tag = check_layout_tag(selector, f"reference {text!r}") if sep else None
    return LayoutReference(path, tag, archive=transport == "oci-archive")


def _url(text: str, transport: str, rest: str) -> Reference:
    if transport == "docker":
        try:
            return ImageName.parse(rest)
        except FormatError as exc:
            raise FormatError(f"reference {text!r}: {exc}") from exc
    if transport == "s3":
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise FormatError(f"reference {text!r}: invalid bucket name {bucket!r}")
        prefix = prefix.strip("/")
        return BucketReference(bucket, f"{prefix}/" if prefix else "")
    raise FormatError(
        f"reference {text!r}: unknown transport {transport}:// (the URL transports are docker://, and s3:// for sync)"
    )


def _static(text: str, rest: str) -> StaticReference:
    directory, sep, name = rest.partition(":")
    if not directory:
        raise FormatError(f"reference {text!r}: expected static:DIR[:REPO[:TAG]]")
    if not sep:
        return StaticReference(Path(directory))
    # ImageName checks repository, tag and digest; "localhost/" keeps Docker Hub's library/ prefix out
    try:
        parsed = ImageName.parse(f"localhost/{name}")
    except FormatError as exc:
        raise FormatError(f"reference {text!r}: {exc}") from exc
    return StaticReference(Path(directory), parsed.repository, parsed.tag, parsed.digest)


def _dir_tag(text: str) -> LayoutReference | None:
    """``DIR:TAG``, split at the last colon, when ``text`` names nothing and ``DIR`` is a directory."""
    path, sep, tag = text.rpartition(":")
    if sep and path and tag and "/" not in tag and not Path(text).exists() and Path(path).is_dir():
        return LayoutReference(path, check_layout_tag(tag, f"reference {text!r}"))
    return None


def _bare(text: str, bare: Bare, typed: bool = True) -> Reference:
    """``text`` with no transport, read as ``bare`` says.

    ``typed``: ``text`` is an argument (not a path object), in which a colon may be a misspelt
    transport or, for a source, ``DIR:TAG``.
    """
    if typed and bare in ("archive", "source") and ":" in text and not Path(text).exists():
        split = _dir_tag(text) if bare == "source" else None
        if split is not None:
            return split
        head = text.partition(":")[0]
        if Path(head).is_file():
            hint = f"an image of the archive {head} is docker-archive:{text}"
            raise FormatError(f"reference {text!r}: no such file; {hint}")
        raise FormatError(
            f"reference {text!r}: no such file or directory, and {head}: is not a transport"
            " (docker://, oci:, oci-archive:, docker-archive:, static:)"
        )
    if bare == "archive" or (bare == "source" and (text == STDIN or not Path(text).is_dir())):
        return ArchiveReference(text)
    if bare in ("layout", "source"):
        return LayoutReference(text)
    if bare == "registry":
        try:
            return ImageName.parse(text)
        except FormatError as exc:
            raise FormatError(f"reference {text!r}: {exc}") from exc
    raise FormatError(f"reference {text!r}: name a transport (docker://, oci:, oci-archive:, docker-archive:, static:)")


def transport_of(ref: Reference) -> str:
    """The transport name of ``ref`` (``docker-archive``, ``oci``, ``oci-archive``, ``docker``, ``static``, ``s3``)."""
    if isinstance(ref, ArchiveReference):
        return "docker-archive"
    if isinstance(ref, LayoutReference):
        return "oci-archive" if ref.archive else "oci"
    if isinstance(ref, ImageName):
        return "docker"
    if isinstance(ref, StaticReference):
        return "static"
    return "s3"


def expect(ref: Reference, transports: tuple[str, ...], what: str, hint: str = "") -> Reference:
    """Return ``ref`` if its transport is one of ``transports``, else refuse it in one line.

    Args:
        ref: the parsed reference.
        transports: the transport names the command takes here (see :func:`transport_of`).
        what: how the message opens, e.g. ``"convert writes"`` or ``"gc works on"``.
        hint: the command that does take it, e.g. ``"use 'pyoci copy' to publish"``.

    Raises:
        FormatError: another transport.
    """
    transport = transport_of(ref)
    if transport in transports:
        return ref
    accepted = ", ".join(_prefix(t) for t in transports)
    message = f"{_shown(ref)}: {what} {accepted} references, not {_prefix(transport)}"
    raise FormatError(f"{message}; {hint}" if hint else message)


def _shown(ref: Reference) -> str:
    """``ref`` as a user writes it, transport included."""
    return ref.uri if isinstance(ref, ImageName) else str(ref)


def _prefix(transport: str) -> str:
    return f"{transport}://" if transport in ("docker", "s3") else f"{transport}:"


def layout_directory(ref: str | os.PathLike[str] | Reference, action: str) -> LayoutReference:
    """Interpret ``ref`` as an OCI layout directory: ``DIR``, ``DIR:TAG`` or ``oci:DIR[:TAG|@DIGEST]``.

    A bare ``DIR:TAG`` is split at its last colon when the whole does not name a directory and the
    part before the colon does. ``action`` opens the error message, e.g. ``"merge writes"``.

    Raises:
        FormatError: a malformed reference, or one naming another transport or an oci-archive.
    """
    parsed = parse(ref, bare="layout")
    if isinstance(parsed, LayoutReference) and not parsed.archive and isinstance(ref, str) and parsed.path == ref:
        parsed = _dir_tag(ref) or parsed
    if not isinstance(parsed, LayoutReference) or parsed.archive:
        raise FormatError(f"{_shown(parsed)}: {action} an OCI layout directory (DIR, DIR:TAG or oci:DIR[:TAG])")
    return parsed
