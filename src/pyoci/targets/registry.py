"""A registry repository as a target (push) and as a source (pull): distribution-spec ``spec.md``.

Target, and the rule for each step:

* blobs ("Pushing Blobs"): ``HEAD`` first; cross-repository mount (``POST ?mount=&from=``, 201 =
  mounted, 202 = an upload session we then use); otherwise ``POST`` then a streamed ``PUT
  ?digest=``, or for blobs larger than ``chunk_size`` a series of ``PATCH`` requests with
  ``Content-Range`` and a final empty ``PUT``; a blob whose upload fails midway starts again from a
  new session (a registry's upload state cannot be trusted after a cut request);
* manifests ("Pushing Manifests"): ``PUT`` of the exact bytes with the media type as
  ``Content-Type``; a ``Docker-Content-Digest`` answer must equal the local digest.

Source ("Pulling Manifests", "Pulling Blobs"): manifests are fetched with an ``Accept`` list of the
OCI and Docker schema 2 manifest and index types; their digest is computed from the bytes, checked
against the digest asked for and against ``Docker-Content-Digest``; blobs stream through a
verifying reader (digest and size checked at the end), following redirects to storage hosts,
which never receive credentials.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from pyoci import mediatype
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import AuthError, BlobNotFoundError, DigestMismatchError, RegistryError
from pyoci.jsonio import load_json
from pyoci.manifest import Index
from pyoci.progress import Progress
from pyoci.reference import ImageName
from pyoci.streams import Readable, ReaderBase, VerifyingReader
from pyoci.targets import BlobSource
from pyoci.targets.auth import repository_scope
from pyoci.targets.client import Answer, RegistryClient
from pyoci.targets.http import MAX_ERROR_BODY, RETRY_STATUSES, Transient, read_bounded, retry_after
from pyoci.targets.referrers import referrer_subject

READ_SIZE = 1 << 20
"""Bytes read from a source (and sent) at a time."""
MAX_MANIFEST_SIZE = 4 << 20
"""Largest manifest, index or config read from a registry, in bytes (the distribution registry's own
limit on manifest bodies; real ones are a few KiB)."""
MANIFEST_ACCEPT = ", ".join(
    (mediatype.IMAGE_INDEX, mediatype.IMAGE_MANIFEST, mediatype.DOCKER_MANIFEST_LIST, mediatype.DOCKER_MANIFEST)
)
"""The ``Accept`` header of a manifest request: every manifest and index type pyoci reads."""


def _check_digest(answer: Answer, expected: Digest, what: str, domain: str) -> None:
    sent = answer.headers.get("docker-content-digest")
    if sent and sent != str(expected):
        raise RegistryError(
            f"{domain}: {what}: registry computed {sent[:80]}, expected {expected}", status=answer.status
        )


class RegistryTarget:
    """One repository of a registry, as a :class:`~pyoci.targets.Target` and :class:`~pyoci.targets.Mount`.

    Args:
        client: the registry client (shared by every repository of the registry).
        repository: the repository path, e.g. ``library/alpine``.
    """

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository
        client.note_repository(repository)
        self._scope = frozenset({repository_scope(repository, "pull,push")})
        self._sessions: dict[Digest, str] = {}
        """Upload sessions a mount request opened instead of mounting (202), by blob digest."""

    @property
    def name(self) -> str:
        """``docker://DOMAIN/REPOSITORY``."""
        return f"docker://{self.client.domain}/{self.repository}"

    def _path(self, kind: str, reference: str) -> str:
        return f"/v2/{self.repository}/{kind}/{reference}"

    def _exists(self, kind: str, descriptor: Descriptor) -> bool:
        headers = {"Accept": descriptor.media_type} if kind == "manifests" else None
        answer = self.client.request(
            "HEAD",
            self._path(kind, str(descriptor.digest)),
            scopes=self._scope,
            headers=headers,
            what=f"HEAD {kind[:-1]} {descriptor.digest}",
        )
        if answer.status == 200:
            return True
        if answer.status == 404:
            return False
        raise self.client.error(answer, f"{self.repository}: HEAD {kind[:-1]} {descriptor.digest}")

    def has_blob(self, descriptor: Descriptor) -> bool:
        """``HEAD /v2/<name>/blobs/<digest>``: 200 is True, 404 False.

        Raises:
            RegistryError: another answer, after the retries.
        """
        return self._exists("blobs", descriptor)

    def has_manifest(self, descriptor: Descriptor, tag: str | None = None) -> bool:
        """``HEAD /v2/<name>/manifests/<digest>``: 200 is True, 404 False; with ``tag``, ``HEAD`` of the tag.

        A tag counts as present when its ``Docker-Content-Digest`` is the descriptor's digest.

        Raises:
            RegistryError: another answer, after the retries.
        """
        if tag is None:
            return self._exists("manifests", descriptor)
        answer = self.client.request(
            "HEAD",
            self._path("manifests", tag),
            scopes=self._scope,
            headers={"Accept": MANIFEST_ACCEPT},
            what=f"HEAD manifest {tag}",
        )
        if answer.status not in (200, 404):
            raise self.client.error(answer, f"{self.repository}: HEAD manifest {tag}")
        return answer.status == 200 and answer.headers.get("docker-content-digest") == str(descriptor.digest)

    def mount_blob(self, descriptor: Descriptor, from_repository: str) -> bool:
        """``POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>``: 201 is True.

        A 202 (the registry started an upload instead) keeps the session for :meth:`put_blob`. A
        source repository the credentials cannot read gives False, not an error.
        """
        scopes = self._scope | {repository_scope(from_repository, "pull")}
        url = self.client.url(self._path("blobs", "uploads/")).copy_merge_params(
            {"mount": str(descriptor.digest), "from": from_repository}
        )
        try:
            answer = self.client.request("POST", url, scopes=scopes, what=f"mount {descriptor.digest}")
        except AuthError:
            return False
        if answer.status == 201:
            _check_digest(answer, descriptor.digest, f"mount {descriptor.digest}", self.client.domain)
            return True
        if answer.status == 202 and answer.headers.get("location"):
            self._sessions[descriptor.digest] = answer.headers["location"]
            return False
        raise self.client.error(answer, f"{self.repository}: mount {descriptor.digest} from {from_repository}")

    def _start_upload(self, descriptor: Descriptor) -> str:
        session = self._sessions.pop(descriptor.digest, None)
        if session is not None:
            return session
        answer = self.client.request("POST", self._path("blobs", "uploads/"), scopes=self._scope, what="start upload")
        if answer.status != 202 or not answer.headers.get("location"):
            raise self.client.error(answer, f"{self.repository}: start upload of {descriptor.digest}")
        return answer.headers["location"]

    def put_blob(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        """Upload a blob (streamed, chunked above ``chunk_size``), retrying from a new session on failure.

        Raises:
            DigestMismatchError: the source's blob does not match ``descriptor`` (not retried).
            RegistryError: the registry refused it, or every attempt failed.
        """

        def attempt() -> None:
            progress.start(f"{descriptor.digest.encoded[:12]}", descriptor.size)
            try:
                self._upload(descriptor, source, progress)
            finally:
                progress.finish()

        what = f"upload of {descriptor.digest}"
        self.client.retrying(attempt, what, f"{self.name}: {what}")  # a new upload session per attempt

    def _upload(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        location = self._start_upload(descriptor)
        chunk = self.client.options.chunk_size
        size = descriptor.size
        with source.open_blob(descriptor) as reader:
            if chunk and size > chunk:
                offset = 0
                while offset < size:
                    count = min(chunk, size - offset)
                    headers = {
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + count - 1}",
                        "Content-Length": str(count),
                    }
                    answer = self._data("PATCH", location, headers, _body(reader, count, progress))
                    if answer.status != 202 or not answer.headers.get("location"):
                        raise self._upload_error(answer, f"PATCH {offset}-{offset + count - 1}")
                    location = answer.headers["location"]
                    offset += count
                final = self._data("PUT", self._with_digest(location, descriptor), {"Content-Length": "0"}, b"")
            else:
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                body = _body(reader, size, progress)
                final = self._data("PUT", self._with_digest(location, descriptor), headers, body)
        if final.status != 201:
            raise self._upload_error(final, "PUT")
        _check_digest(final, descriptor.digest, f"upload of {descriptor.digest}", self.client.domain)

    def _with_digest(self, location: str, descriptor: Descriptor) -> httpx.URL:
        return self.client.url(location).copy_merge_params({"digest": str(descriptor.digest)})

    def _data(
        self, method: str, url: str | httpx.URL, headers: dict[str, str], body: bytes | Iterator[bytes]
    ) -> Answer:
        answer = self.client.send(method, url, scopes=self._scope, headers=headers, content=body)
        if answer.status == 401:
            # the auth flow learned the new challenge; a streamed body cannot be resent: start again
            raise Transient(f"{method}: HTTP 401, authenticating again", status=401)
        return answer

    def _upload_error(self, answer: Answer, what: str) -> Exception:
        # a cut or refused step leaves the session in an unknown state: start again from POST
        if answer.status in RETRY_STATUSES or answer.status == 404:
            return Transient(f"{what}: HTTP {answer.status}", _retry_after(answer), answer.status)
        return self.client.error(answer, f"{self.repository}: upload {what}")

    def put_manifest(self, descriptor: Descriptor, raw: bytes, tag: str | None) -> None:
        """``PUT /v2/<name>/manifests/<tag or digest>`` with the exact bytes and media type.

        Raises:
            RegistryError: the registry refused the manifest or computed another digest, or the
                manifest is named by a digest other than sha256: the distribution registry names
                a manifest by the sha256 of its bytes and refuses any other (``DIGEST_INVALID``),
                so such a manifest is refused here, before its tag could be written.
        """
        if descriptor.digest.algorithm != "sha256":
            raise RegistryError(
                f"{self.name}: manifest {descriptor.digest}: registries name manifests by sha256; copy it into"
                " a layout or static tree instead"
            )
        reference = tag or str(descriptor.digest)
        answer = self.client.request(
            "PUT",
            self._path("manifests", reference),
            scopes=self._scope,
            headers={"Content-Type": descriptor.media_type},
            content=raw,
            what=f"PUT manifest {reference}",
        )
        if answer.status != 201:
            raise self.client.error(answer, f"{self.repository}: PUT manifest {reference}")
        _check_digest(answer, descriptor.digest, f"manifest {reference}", self.client.domain)


def _retry_after(answer: Answer) -> float | None:
    return retry_after(httpx.Response(answer.status, headers=answer.headers))


def _body(reader: Readable, count: int, progress: Progress) -> Iterator[bytes]:
    """Yield the next ``count`` bytes of ``reader`` in pieces, reporting each to ``progress``."""
    remaining = count
    while remaining > 0:
        data = reader.read(min(READ_SIZE, remaining))
        if not data:
            raise DigestMismatchError(f"blob ended {remaining} bytes early")
        remaining -= len(data)
        progress.advance(len(data))
        yield data


class RegistrySource:
    """One image of a registry repository, read: a :class:`~pyoci.targets.Source`.

    Args:
        client: the registry client.
        name: the repository and the tag or digest to read (no tag and no digest: ``latest``).
    """

    def __init__(self, client: RegistryClient, name: ImageName) -> None:
        self.client = client
        self.image = name
        self.repository = name.repository
        client.note_repository(name.repository)
        self._scope = frozenset({repository_scope(name.repository, "pull")})
        self._documents: dict[Digest, bytes] = {}

    @property
    def name(self) -> str:
        """``docker://HOST/REPO[:TAG][@DIGEST]``."""
        return self.image.uri

    @property
    def verified(self) -> bool:
        """False: every blob is hashed on the way."""
        return False

    def _path(self, kind: str, reference: str) -> str:
        return f"/v2/{self.repository}/{kind}/{reference}"

    def fetch_manifest(self, reference: str) -> tuple[Descriptor, bytes]:
        """``GET /v2/<name>/manifests/<reference>``: the descriptor (media type from ``Content-Type``) and bytes.

        Raises:
            RegistryError: the manifest is unknown (``MANIFEST_UNKNOWN``, 404), access is denied, or
                the answer is too large or not a manifest type pyoci reads.
            DigestMismatchError: the bytes do not match the digest asked for or the one the registry sent.
        """
        answer = self.client.request(
            "GET",
            self._path("manifests", reference),
            scopes=self._scope,
            headers={"Accept": MANIFEST_ACCEPT},
            limit=MAX_MANIFEST_SIZE,
            strict=True,
            what=f"GET manifest {reference}",
        )
        where = f"{self.client.domain}/{self.repository}: manifest {reference}"
        if answer.status != 200:
            raise self.client.error(answer, f"{self.repository}: GET manifest {reference}")
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in mediatype.MANIFEST_TYPES | mediatype.INDEX_TYPES:
            message = f"{where}: answered {media_type[:100]!r}, not a manifest or index"
            raise RegistryError(message, status=answer.status)
        digest = Digest.of_bytes(answer.body)
        expected = Digest.parse(reference) if reference.startswith(("sha256:", "sha512:")) else None
        if expected is not None and Digest.of_bytes(answer.body, expected.algorithm) != expected:
            raise DigestMismatchError(f"{where}: the bytes do not match the digest", expected=str(expected))
        sent = answer.headers.get("docker-content-digest")
        if expected is None and sent and sent != str(digest):
            raise DigestMismatchError(f"{where}: registry says {sent[:80]}, the bytes are {digest}", actual=str(digest))
        descriptor = Descriptor(media_type, expected or digest, len(answer.body))
        self._documents[descriptor.digest] = answer.body
        return descriptor, answer.body

    def referrers(self, subject: Digest) -> list[tuple[Descriptor, str | None]]:
        """The referrers of ``subject``, from the referrers API and the referrers-schema tags.

        The API (``GET /v2/<name>/referrers/<digest>``) is asked where the registry has it; the tags
        (``sha256-HEX``, cosign's ``.sig``, ``.att``) are looked at in any case.

        Raises:
            RegistryError: access is denied, or an answer is not what the API promises.
        """
        found: dict[Digest, tuple[Descriptor, str | None]] = {}
        answer = self.client.request(
            "GET",
            self._path("referrers", str(subject)),
            scopes=self._scope,
            headers={"Accept": mediatype.IMAGE_INDEX},
            limit=MAX_MANIFEST_SIZE,
            strict=True,
            what=f"GET referrers {subject}",
        )
        if answer.status == 200:
            index = Index.parse(answer.body, f"{self.name}: referrers of {subject}")
            found = {d.digest: (d, None) for d in index.manifests}
        elif answer.status not in (400, 404, 405):
            raise self.client.error(answer, f"{self.repository}: GET referrers {subject}")
        for tag in self.tags():
            if referrer_subject(tag) == subject:
                descriptor, _ = self.fetch_manifest(tag)
                found[descriptor.digest] = (descriptor, tag)
        return list(found.values())

    def tags(self) -> list[str]:
        """``GET /v2/<name>/tags/list``: every tag, in the registry's order.

        Pages (``?n=1000``) are followed by their ``Link: <...>; rel="next"`` header (distribution-spec
        ``spec.md`` "Listing Tags").

        Raises:
            RegistryError: the repository is unknown, access is denied, or an answer is not a tag list.
        """
        found: list[str] = []
        url: str | httpx.URL = f"/v2/{self.repository}/tags/list?n=1000"
        for _ in range(10_000):
            answer = self.client.request(
                "GET", url, scopes=self._scope, limit=MAX_MANIFEST_SIZE, strict=True, what="GET tags/list"
            )
            if answer.status != 200:
                raise self.client.error(answer, f"{self.repository}: GET tags/list")
            try:
                tags = load_json(answer.body, f"{self.client.domain}/{self.repository}: tags/list").get("tags") or []
            except AttributeError:
                tags = None
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise RegistryError(f"{self.client.domain}/{self.repository}: tags/list is not a tag list")
            found.extend(tags)
            following = httpx.Response(200, headers=answer.headers).links.get("next", {}).get("url")
            if not following:
                return found
            url = answer.url.join(following)
        raise RegistryError(f"{self.client.domain}/{self.repository}: tags/list pages do not end")

    def delete_manifest(self, reference: str) -> None:
        """``DELETE /v2/<name>/manifests/<reference>`` (a digest; a tag where the registry allows it).

        Distribution-spec ``spec.md`` "Deleting Manifests": 202 Accepted. Deleting by digest removes
        every tag pointing at it too.

        Raises:
            RegistryError: refused (405 or ``UNSUPPORTED`` where deletes are disabled), unknown, or denied.
        """
        answer = self.client.request(
            "DELETE",
            self._path("manifests", reference),
            scopes=frozenset({repository_scope(self.repository, "delete")}),
            what=f"DELETE manifest {reference}",
        )
        if answer.status not in (200, 202):
            raise self.client.error(answer, f"{self.repository}: DELETE manifest {reference}")

    def roots(self) -> list[tuple[Descriptor, str | None]]:
        """The manifest or index the reference names, with its tag (``latest`` when none is given).

        Raises:
            RegistryError: unknown tag or digest, or access denied.
        """
        reference = str(self.image.digest) if self.image.digest else self.image.tag or "latest"
        descriptor, _ = self.fetch_manifest(reference)
        return [(descriptor, self.image.tag if self.image.digest else self.image.tag or "latest")]

    def read_document(self, descriptor: Descriptor) -> bytes:
        """A manifest or index (``GET /manifests/<digest>``) or a config (``GET /blobs/<digest>``), verified.

        Raises:
            RegistryError: absent, denied, or larger than the document limit.
            DigestMismatchError: the bytes differ from ``descriptor``.
        """
        cached = self._documents.get(descriptor.digest)
        if cached is not None:
            return cached
        if descriptor.size > MAX_MANIFEST_SIZE:
            raise RegistryError(f"{self.name}: {descriptor.digest}: {descriptor.size} bytes is too large a document")
        if descriptor.media_type in mediatype.MANIFEST_TYPES | mediatype.INDEX_TYPES:
            _, raw = self.fetch_manifest(str(descriptor.digest))
        else:
            with self.open_blob(descriptor) as reader:
                raw = b"".join(iter(lambda: reader.read(READ_SIZE), b""))
        if len(raw) != descriptor.size:
            raise DigestMismatchError(
                f"{self.name}: {descriptor.digest}: size: expected {descriptor.size} bytes, got {len(raw)}",
                expected=descriptor.size,
                actual=len(raw),
            )
        self._documents[descriptor.digest] = raw
        return raw

    @contextlib.contextmanager
    def open_blob(self, descriptor: Descriptor) -> Iterator[Readable]:
        """``GET /v2/<name>/blobs/<digest>`` streamed through a verifying reader (redirects followed, bare).

        Raises:
            BlobNotFoundError: the registry does not have it (404).
            RegistryError: another answer, or the connection failed (after the retries for the request).
            DigestMismatchError: (from ``read``) the bytes differ from ``descriptor``.
        """
        path = self._path("blobs", str(descriptor.digest))

        def attempt() -> contextlib.AbstractContextManager[httpx.Response]:
            stack = contextlib.ExitStack()
            response = stack.enter_context(self.client.stream("GET", path, scopes=self._scope, follow_redirects=True))
            if response.status_code in RETRY_STATUSES:
                stack.close()
                raise Transient(f"GET blob {descriptor.digest}: HTTP {response.status_code}", retry_after(response))
            return _Owned(response, stack)

        with self.client.retrying(attempt, f"GET blob {descriptor.digest}") as response:
            if response.status_code == 404:
                raise BlobNotFoundError(f"{self.name}: blob {descriptor.digest} is missing")
            if response.status_code != 200:
                body = read_bounded(response, MAX_ERROR_BODY, self.name, truncate=True)
                answer = Answer(response.status_code, response.headers, body, response.url)
                raise self.client.error(answer, f"{self.repository}: GET blob {descriptor.digest}")
            yield VerifyingReader(_ResponseReader(response), descriptor.digest, descriptor.size, self.name)

    def has_blob(self, descriptor: Descriptor) -> bool:
        """``HEAD /v2/<name>/blobs/<digest>`` (redirects followed).

        Raises:
            RegistryError: another answer than 200 or 404.
        """
        answer = self.client.request(
            "HEAD",
            self._path("blobs", str(descriptor.digest)),
            scopes=self._scope,
            follow_redirects=True,
            what=f"HEAD blob {descriptor.digest}",
        )
        if answer.status in (200, 404):
            return answer.status == 200
        raise self.client.error(answer, f"{self.repository}: HEAD blob {descriptor.digest}")

    def blob_path(self, descriptor: Descriptor) -> Path | None:
        """None: a registry's blobs are not local files."""
        return None


class _Owned(contextlib.AbstractContextManager[httpx.Response]):
    """A response and the stack that closes it."""

    def __init__(self, response: httpx.Response, stack: contextlib.ExitStack) -> None:
        self.response = response
        self.stack = stack

    def __enter__(self) -> httpx.Response:
        return self.response

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


class _ResponseReader(ReaderBase):
    """``read(n)`` over a streamed response's body."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_bytes(READ_SIZE)
        self._pending = b""

    def read(self, n: int = -1, /) -> bytes:
        """Return up to ``n`` bytes (all that is left when ``n`` < 0); ``b""`` at the end."""
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return b""
            except httpx.TransportError as exc:
                raise RegistryError(f"blob download failed: {type(exc).__name__}: {exc}") from exc
        if n < 0 or n >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:n], self._pending[n:]
        return data
