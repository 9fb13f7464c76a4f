"""The exception tree of pyoci.

Every error pyoci raises for bad input or a failed operation derives from :class:`PyociError`;
the command line turns it into one line on stderr and a non-zero exit status::

    PyociError
     +-- FormatError            a reference, digest, platform, option or JSON document that does not parse
     +-- ArchiveError           a docker-archive that cannot be read or is inconsistent
     |    +-- DiffIDMismatchError   a layer whose sha256 differs from the config's diff_id
     +-- LayoutError            an OCI image layout that cannot be read or written
     |    +-- BlobNotFoundError     a descriptor whose blob is absent
     |    +-- TagError              a tag that is missing or ambiguous in a layout
     +-- DigestMismatchError    bytes whose digest or size differ from what was declared (.expected, .actual)
     +-- PlatformConflictError  two images of one merge for the same platform
     +-- StreamNotConsumedError a stream result asked for before the stream was read to its end
     +-- RegistryError          a registry or static registry tree refused or failed an operation
          |                         (.status: the HTTP status; .codes: distribution-spec error codes)
          +-- AuthError             credentials missing, unreadable or refused by a registry

Messages are lower case, in the form ``"<what>: <why>"``, and name the file, member or reference.
A message is always one line: line breaks it quotes from a file name or a document are escaped.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    r"""``text`` with carriage returns and line feeds shown as ``\r`` and ``\n``: one line on a terminal."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class PyociError(Exception):
    """Base class of every error pyoci reports to its user; ``str()`` of one is one line (see :func:`one_line`)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(one_line(arg) if isinstance(arg, str) else arg for arg in args))


class FormatError(PyociError, ValueError):
    """A reference, digest, platform, option value or JSON document does not parse."""


class ArchiveError(PyociError):
    """A docker-archive cannot be read, or its contents are inconsistent."""


class DiffIDMismatchError(ArchiveError):
    """A layer's uncompressed sha256 differs from the diff_id in the image config."""


class LayoutError(PyociError):
    """An OCI image layout cannot be read or written."""


class BlobNotFoundError(LayoutError):
    """A blob named by a descriptor is absent from the layout."""


class TagError(LayoutError):
    """A tag (``org.opencontainers.image.ref.name``) is missing or ambiguous in a layout."""


class DigestMismatchError(PyociError):
    """Bytes whose digest or size differ from the descriptor that declared them.

    Attributes:
        expected: the declared digest (``"sha256:..."``) or size in bytes, when known.
        actual: the digest or size of the bytes, when known.
    """

    def __init__(self, message: str, *, expected: str | int | None = None, actual: str | int | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class PlatformConflictError(PyociError):
    """Two images of one merge are for the same platform (and ``replace`` was not asked for)."""


class StreamNotConsumedError(PyociError):
    """A digest or size was asked of a stream before the stream was read to its end."""


class RegistryError(PyociError):
    """A registry (or a static registry tree) refused or failed an operation.

    Attributes:
        status: the HTTP status of the answer, or None when there was none (a connection failure,
            a file system error in a static tree).
        codes: the distribution-spec error codes of the answer's body (``spec.md`` "Error Codes",
            e.g. ``MANIFEST_UNKNOWN``, ``DENIED``), in order.
    """

    def __init__(self, message: str, *, status: int | None = None, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes


class AuthError(RegistryError):
    """Credentials are missing, unreadable, or refused by a registry or its token service."""
