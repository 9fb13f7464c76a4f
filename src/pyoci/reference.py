"""References in skopeo's transport syntax, and Docker image names.

Transports (as ``skopeo`` and containers-image parse them, splitting at the first colon):

* ``docker-archive:PATH[:NAME:TAG|:@N]``: an archive and an optional image selector;
* ``oci:DIR[:TAG]``: an OCI image layout and an optional tag (``org.opencontainers.image.ref.name``);
* ``oci-archive:FILE[:TAG]``: an OCI image layout in a tar file;
* ``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]``: a registry (see :class:`ImageName`).

A bare argument with no known transport prefix is a path taken whole (no colon splitting); its
kind (archive file or layout directory) is decided by the command.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pyoci.digest import Digest
from pyoci.errors import FormatError

DOCKER_HUB = "docker.io"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class ArchiveReference:
    """``docker-archive:PATH[:NAME:TAG|:@N]``.

    Attributes:
        path: the archive file, or ``-`` for stdin.
        name: the ``NAME:TAG`` selector, or None.
        position: the ``@N`` selector, or None.
    """

    path: str
    name: ImageName | None = None
    position: int | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return f"docker-archive:{self.path}:{self.name.familiar()}"
        if self.position is not None:
            return f"docker-archive:{self.path}:@{self.position}"
        return f"docker-archive:{self.path}"


@dataclass(frozen=True)
class LayoutReference:
    """``oci:DIR[:TAG]`` or ``oci-archive:FILE[:TAG]``.

    Attributes:
        path: the layout directory (or tar file when ``archive``).
        tag: the ``org.opencontainers.image.ref.name`` to read or write, or None.
        archive: True for ``oci-archive:``.
    """

    path: str
    tag: str | None = None
    archive: bool = False

    def __str__(self) -> str:
        prefix = "oci-archive" if self.archive else "oci"
        return f"{prefix}:{self.path}:{self.tag}" if self.tag else f"{prefix}:{self.path}"


@dataclass(frozen=True)
class BarePath:
    """An argument without a transport: a path taken whole."""

    path: str

    def __str__(self) -> str:
        return self.path


Reference = ArchiveReference | LayoutReference | BarePath


_REF_NAME_COMPONENT = re.compile(r"^[A-Za-z0-9]+(?:[-._:@+][A-Za-z0-9]+)*$")


def check_layout_tag(tag: str, where: str) -> str:
    """Return ``tag`` if it is a valid ``org.opencontainers.image.ref.name``.

    The grammar is image-spec ``annotations.md``: components of ``A-Za-z0-9`` joined by one of
    ``-._:@+``, separated by ``/`` (so no empty, ``..`` or leading-separator names), at most 255
    characters here.

    Raises:
        FormatError: the tag does not follow that grammar.
    """
    if len(tag) > 255 or not all(_REF_NAME_COMPONENT.match(part) for part in tag.split("/")):
        raise FormatError(f"{where}: invalid tag {tag!r} (letters and digits joined by - . _ : @ + or /)")
    return tag


def check_registry_tag(tag: str, where: str) -> str:
    """Return ``tag`` if it is a valid registry tag (distribution-spec: ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``).

    Raises:
        FormatError: it is not.
    """
    if not _TAG.match(tag):
        raise FormatError(f"{where}: {tag!r} is not a valid registry tag")
    return tag


def parse_reference(text: str) -> Reference:
    """Parse a source or destination argument.

    Raises:
        FormatError: a transport prefix with a malformed remainder.
    """
    transport, sep, rest = text.partition(":")
    if not sep or transport not in ("docker-archive", "oci", "oci-archive"):
        if not text:
            raise FormatError("reference: empty")
        return BarePath(text)
    path, sep, selector = rest.partition(":")
    if not path:
        raise FormatError(f"reference {text!r}: empty path")
    if transport == "docker-archive":
        if not sep:
            return ArchiveReference(path)
        if selector.startswith("@"):
            if not selector[1:].isdigit():
                raise FormatError(f"reference {text!r}: '@' must be followed by an image index")
            return ArchiveReference(path, position=int(selector[1:]))
        name = ImageName.parse(selector)
        if name.digest is not None or name.tag is None:
            raise FormatError(f"reference {text!r}: the image selector must be NAME:TAG")
        return ArchiveReference(path, name=name)
    tag = check_layout_tag(selector, f"reference {text!r}") if sep else None
    return LayoutReference(path, tag, archive=transport == "oci-archive")


def layout_directory(ref: Reference | str | os.PathLike[str], action: str) -> LayoutReference:
    """Interpret ``ref`` as an OCI layout directory (``DIR`` taken whole, or ``oci:DIR[:TAG]``).

    ``action`` opens the error message, e.g. ``"merge writes"``.

    Raises:
        FormatError: a malformed reference, or one naming another transport or an oci-archive.
    """
    parsed = ref if isinstance(ref, LayoutReference | BarePath | ArchiveReference) else parse_reference(os.fspath(ref))
    if isinstance(parsed, BarePath):
        parsed = LayoutReference(parsed.path)
    if not isinstance(parsed, LayoutReference) or parsed.archive:
        raise FormatError(f"{parsed}: {action} an OCI layout directory (DIR or oci:DIR[:TAG])")
    return parsed


STDIN = "-"
SourceReference = LayoutReference | ArchiveReference
"""A source that is an OCI layout (``oci:DIR[:TAG]``) or a docker-archive."""


def source_reference(ref: Reference | str) -> SourceReference:
    """Interpret a source argument as an OCI layout or a docker-archive.

    ``oci:DIR[:TAG]`` is a layout, ``docker-archive:PATH[:NAME:TAG|:@N]`` an archive; a bare path
    is a layout when it is a directory and an archive otherwise (``-`` is stdin).

    Raises:
        FormatError: a malformed reference, or ``oci-archive:`` (not read as a source).
    """
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    if isinstance(ref, BarePath):
        if ref.path != STDIN and Path(ref.path).is_dir():
            return LayoutReference(ref.path)
        return ArchiveReference(ref.path)
    if isinstance(ref, LayoutReference) and ref.archive:
        raise FormatError(f"{ref}: oci-archive is not read as a source; extract the tar into a directory first")
    return ref



@dataclass(frozen=True)
class ImageName:
    """A Docker image name, normalised as Docker does (``docker.io``, ``library/``).

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
            digest = Digest.parse(digest_text)
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, _, tag = rest.rpartition(":")
            if not _TAG.match(tag):
                raise FormatError(f"image name {text!r}: invalid tag {tag!r}")
        first, sep, remainder = rest.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            domain, path = first, remainder
            if not _DOMAIN.match(domain):
                raise FormatError(f"image name {text!r}: invalid registry {domain!r}")
        else:
            domain, path = DOCKER_HUB, rest
        if domain == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
            raise FormatError(f"image name {text!r}: invalid repository {path!r} (lower-case a-z, 0-9, . _ -)")
        return cls(domain, path, tag, digest)

    def __str__(self) -> str:
        text = f"{self.domain}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """The short form Docker prints (``alpine:3``, ``user/app:1``, ``host/app:1``)."""
        text = str(self)
        if self.domain == DOCKER_HUB:
            text = text.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
        return text
