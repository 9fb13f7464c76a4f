"""A client for OCI distribution registries (distribution-spec ``spec.md``), as a push :class:`Target`.

HTTP library: **httpx**. It types cleanly under ``mypy --strict`` (requests needs stubs and has no
typed event hooks), streams request bodies from a generator with the ``Content-Length`` we set
(so blobs are never held in memory and registries that refuse chunked transfer encoding still
work), takes an :class:`ssl.SSLContext` directly (``--cert-dir``, client certificates), honours the
standard proxy variables (``HTTPS_PROXY``, ``NO_PROXY``, ...), has timeouts by default, and gives
request/response hooks for a redacted ``--debug`` trace. HTTP/1.1 only: no optional h2 dependency.

What the client does, and where the rule comes from:

* scheme: HTTPS with certificate verification; plain HTTP only when HTTPS cannot connect and the
  registry is on a loopback address or ``tls_verify`` is off (Docker's and skopeo's rule);
* auth (distribution ``token.md``; RFC 7235/7617): a ``GET /v2/`` ping learns the scheme; Basic sends
  the credentials on every request; Bearer fetches a token from the challenge's realm for the
  scopes in use (``repository:NAME:pull,push``, plus ``pull`` on a mount source), reuses it until it
  expires, and on a 401 (``insufficient_scope``) fetches one for the widened scope and retries once;
* blobs (``spec.md`` "Pushing Blobs"): ``HEAD`` first; cross-repository mount
  (``POST ?mount=&from=``, 201 = mounted, 202 = an upload session we then use); otherwise
  ``POST`` then a streamed ``PUT ?digest=``, or for blobs larger than ``chunk_size`` a series of
  ``PATCH`` requests with ``Content-Range`` and a final empty ``PUT``;
* manifests (``spec.md`` "Pushing Manifests"): ``PUT`` of the exact bytes with the media type as
  ``Content-Type``; a ``Docker-Content-Digest`` answer must equal the local digest;
* retries: connection errors, 5xx and 429 (``Retry-After`` honoured) are retried with exponential
  backoff; a blob upload that fails midway starts again from a new session (a registry's upload
  state cannot be trusted after a cut request).

Secrets (passwords, identity tokens, bearer tokens) are removed from every log line and message.
"""

from __future__ import annotations

import base64
import importlib.metadata
import ipaddress
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import AuthError, FormatError, PushError
from pyoci.progress import Progress
from pyoci.reference import DOCKER_HUB
from pyoci.streams import Readable
from pyoci.targets import BlobSource
from pyoci.targets.auth import (
    Credentials,
    find_credentials,
    merge_scopes,
    parse_challenges,
    parse_creds,
    repository_scope,
)

log = logging.getLogger("pyoci.push")

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
READ_SIZE = 1 << 20
"""Bytes read from disk (and sent) at a time."""
DEFAULT_CHUNK_SIZE = 64 << 20
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach and authenticate to registries.

    Attributes:
        creds: ``USER:PASSWORD`` for every registry of the push (skopeo's ``--creds``).
        authfile: a containers-auth.json file to read instead of the default runtime one.
        cert_dir: a directory of ``*.crt`` CA certificates and ``*.cert``/``*.key`` client pairs
            (default: ``/etc/containers/certs.d/HOST`` and ``/etc/docker/certs.d/HOST`` when present).
        tls_verify: verify server certificates; when False, plain HTTP is also allowed.
        chunk_size: blobs larger than this many bytes are sent in ``PATCH`` chunks of this size; 0: never.
        retry_times: how many times a failed request or blob upload is retried.
        retry_delay: seconds before the first retry; doubled for each further one.
        timeout: seconds without progress on a connection before it counts as failed.
        environ: the environment for credential lookup (default ``os.environ``).
    """

    creds: str | None = field(default=None, repr=False)
    authfile: str | None = None
    cert_dir: str | None = None
    tls_verify: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    retry_times: int = 3
    retry_delay: float = 1.0
    timeout: float = 60.0
    environ: Mapping[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.chunk_size < 0 or self.retry_times < 0 or self.retry_delay < 0 or self.timeout <= 0:
            raise FormatError("registry options: chunk size, retries and delays must not be negative")


def is_loopback(domain: str) -> bool:
    """True when ``domain`` (``host[:port]``) is ``localhost`` or a loopback IP address."""
    host = domain
    if host.startswith("["):
        host = host[1 : host.index("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Retryable(Exception):
    """A failure worth another attempt (internal)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


Body = Callable[[], bytes | Iterator[bytes]]


class RegistryClient:
    """One registry: its connection pool, scheme, authentication state and retry policy.

    Args:
        domain: the registry as in an image name (``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``).
        options: TLS, credentials, chunking and retry settings.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, domain: str, options: RegistryOptions | None = None) -> None:
        self.domain = domain
        self.options = options or RegistryOptions()
        self.host = DOCKER_HUB_ENDPOINT if domain == DOCKER_HUB else domain
        self._base: httpx.URL | None = None
        self._scheme: str | None = None  # None (anonymous or unknown), "basic" or "bearer"
        self._challenge: Mapping[str, str] = {}
        self._token = ""
        self._token_scopes: frozenset[str] = frozenset()
        self._token_expiry = 0.0
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._secrets: set[str] = set()
        self._client = httpx.Client(
            verify=self._ssl_context(),
            trust_env=True,
            timeout=httpx.Timeout(self.options.timeout, connect=min(self.options.timeout, 30.0)),
            headers={"User-Agent": f"pyoci/{_version()}"},
            event_hooks={"request": [self._trace_request], "response": [self._trace_response]},
        )

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    # -- TLS, credentials, redaction ---------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.options.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        paths = ssl.get_default_verify_paths()
        if not any(p and Path(p).exists() for p in (paths.cafile, paths.capath)):
            import certifi

            ctx.load_verify_locations(certifi.where())
        if self.options.cert_dir is not None:
            dirs = [Path(self.options.cert_dir)]
        else:
            dirs = [Path("/etc/containers/certs.d") / self.domain, Path("/etc/docker/certs.d") / self.domain]
        for directory in dirs:
            if not directory.is_dir():
                continue
            try:
                for ca in sorted(directory.glob("*.crt")):
                    ctx.load_verify_locations(cafile=str(ca))
                for cert in sorted(directory.glob("*.cert")):
                    ctx.load_cert_chain(str(cert), str(cert.with_suffix(".key")))
            except (OSError, ssl.SSLError) as exc:
                raise PushError(f"{directory}: cannot load certificates: {exc}") from exc
        return ctx

    def credentials(self, repository: str = "") -> Credentials | None:
        """The credentials for this registry (``creds`` option first, then the credential files)."""
        if not self._credentials_loaded:
            if self.options.creds is not None:
                self._credentials = parse_creds(self.options.creds)
            else:
                self._credentials = find_credentials(
                    self.domain, repository, authfile=self.options.authfile, environ=self.options.environ
                )
            if self._credentials is not None:
                self._secrets.update(self._credentials.secrets())
            self._credentials_loaded = True
        return self._credentials

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    def _trace_request(self, request: httpx.Request) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", self.redact(f"> {request.method} {request.url} {_headers(request.headers)}"))

    def _trace_response(self, response: httpx.Response) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", self.redact(f"< {response.status_code} {response.url} {_headers(response.headers)}"))

    # -- requests ----------------------------------------------------------------------------

    def url(self, path: str) -> httpx.URL:
        """The absolute URL of a ``/v2/...`` path or of a (possibly relative) ``Location``."""
        return self.base().join(path)

    def base(self) -> httpx.URL:
        """The registry's base URL, found by a ``GET /v2/`` ping on first use."""
        if self._base is None:
            self._base = self._retrying(self._ping, "ping /v2/")
        return self._base

    def _ping(self) -> httpx.URL:
        https = httpx.URL(f"https://{self.host}/")
        try:
            response = self._client.get(https.join("/v2/"))
            base = https
        except httpx.TransportError as exc:
            problem = f"cannot connect over HTTPS: {_describe(exc)}"
            if not (is_loopback(self.host) or not self.options.tls_verify):
                if _is_certificate_error(exc):
                    raise PushError(f"{self.domain}: {problem} (use --cert-dir for a private CA)") from exc
                raise _Retryable(problem) from exc
            http = httpx.URL(f"http://{self.host}/")
            try:
                response = self._client.get(http.join("/v2/"))
            except httpx.TransportError as exc2:
                raise _Retryable(f"{problem}; over HTTP: {_describe(exc2)}") from exc2
            if response.status_code not in (200, 401, *RETRY_STATUSES):
                # An HTTPS server refusing plain HTTP: the HTTPS failure is the one that matters.
                raise PushError(f"{self.domain}: {problem}; over HTTP: HTTP {response.status_code}") from exc
            base = http
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(f"GET /v2/: HTTP {response.status_code}", _retry_after(response))
        if response.status_code == 401:
            self._learn_challenge(response)
        elif response.status_code != 200:
            raise PushError(f"{self.domain}: GET /v2/: HTTP {response.status_code}: not an OCI registry API")
        return base

    def _learn_challenge(self, response: httpx.Response) -> str:
        """Record the auth scheme a 401 asks for; return the scope it names (may be empty)."""
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        for challenge in challenges:
            if challenge.scheme == "bearer" and challenge.params.get("realm"):
                self._scheme, self._challenge = "bearer", challenge.params
                return challenge.params.get("scope", "")
        for challenge in challenges:
            if challenge.scheme == "basic":
                self._scheme = "basic"
                return ""
        raise AuthError(f"{self.domain}: HTTP 401 without a Basic or Bearer challenge")

    def _auth_header(self, scopes: frozenset[str], repository: str, refresh: bool) -> dict[str, str]:
        if self._scheme == "basic":
            creds = self.credentials(repository)
            if creds is None:
                raise AuthError(f"{self.domain}: authentication required and no credentials found")
            basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        if self._scheme == "bearer":
            wanted = merge_scopes(self._token_scopes | scopes)
            if refresh or not self._token or wanted != self._token_scopes or time.monotonic() >= self._token_expiry:
                self._fetch_token(wanted, repository)
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def _fetch_token(self, scopes: frozenset[str], repository: str) -> None:
        realm = httpx.URL(self._challenge["realm"])
        if realm.scheme != "https" and not (
            realm.scheme == "http" and (is_loopback(realm.netloc.decode()) or not self.options.tls_verify)
        ):
            raise AuthError(f"{self.domain}: token realm {realm} is not HTTPS; refusing to send credentials")
        creds = self.credentials(repository)
        query: dict[str, str | list[str]] = {"client_id": "pyoci", "scope": sorted(scopes)}
        if self._challenge.get("service"):
            query["service"] = self._challenge["service"]

        def send() -> httpx.Response:
            if creds is not None and creds.identity_token:
                form = {k: v for k, v in query.items() if isinstance(v, str)}
                form |= {"grant_type": "refresh_token", "refresh_token": creds.identity_token}
                form["scope"] = " ".join(sorted(scopes))
                return self._client.post(realm, data=form)
            auth = httpx.BasicAuth(creds.username, creds.password) if creds is not None else None
            return self._client.get(realm, params=query, auth=auth)

        def attempt() -> httpx.Response:
            try:
                response = send()
            except httpx.TransportError as exc:
                raise _Retryable(f"{self.domain}: token service {realm}: {_describe(exc)}") from exc
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(f"{self.domain}: token service: HTTP {response.status_code}", _retry_after(response))
            return response

        response = self._retrying(attempt, "token")
        if response.status_code in (401, 403):
            who = "anonymous access" if creds is None else f"the credentials from {creds.source}"
            raise AuthError(f"{self.domain}: token service refused {who} (HTTP {response.status_code})")
        if response.status_code != 200:
            raise AuthError(f"{self.domain}: token service: HTTP {response.status_code}")
        try:
            answer = response.json()
            token = answer.get("token") or answer.get("access_token")
            expires_in = int(answer.get("expires_in") or 60)
        except (ValueError, AttributeError):
            raise AuthError(f"{self.domain}: token service answered something other than a JSON token") from None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.domain}: token service answered no token")
        self._secrets.add(token)
        if isinstance(answer.get("refresh_token"), str):
            self._secrets.add(answer["refresh_token"])
        self._token, self._token_scopes = token, scopes
        self._token_expiry = time.monotonic() + max(expires_in - 10, 5)

    def send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        repository: str,
        scopes: frozenset[str],
        headers: Mapping[str, str] | None = None,
        body: Body | None = None,
        replayable: bool = True,
    ) -> httpx.Response:
        """Send one authenticated request; on a 401, authenticate (again) and resend once.

        Args:
            method: the HTTP method.
            url: a ``/v2/...`` path or an absolute URL (an upload ``Location``).
            repository: the repository, for repository-scoped credentials.
            scopes: the token scopes the request needs.
            headers: extra request headers.
            body: makes the request body (called once per send).
            replayable: False when ``body`` cannot be made twice; a 401 then raises a retryable failure.

        Raises:
            _Retryable: a connection error, or a 401 on a body that cannot be resent.
            AuthError: the registry still answers 401 after authenticating.
        """
        target = self.url(str(url))
        for auth_attempt in range(2):
            request_headers = dict(headers or {})
            request_headers.update(self._auth_header(scopes, repository, refresh=auth_attempt > 0))
            content = body() if body is not None else None
            try:
                response = self._client.request(
                    method,
                    target,
                    headers=request_headers,
                    content=content,
                    follow_redirects=method in ("GET", "HEAD"),
                )
            except httpx.TransportError as exc:
                raise _Retryable(f"{method} {target.path}: {_describe(exc)}") from exc
            finally:
                if isinstance(content, Iterator) and hasattr(content, "close"):
                    content.close()
            if response.status_code != 401:
                return response
            scope = self._learn_challenge(response)
            self._token_expiry = 0.0  # a token the registry refused is not reused
            if auth_attempt > 0 or (self._scheme == "basic" and "Authorization" in request_headers):
                break
            if scope:
                scopes = scopes | {scope}
            if not replayable:
                raise _Retryable(f"{method} {target.path}: HTTP 401, authenticating again")
        creds = self.credentials(repository)
        who = "anonymously" if creds is None else f"with the credentials from {creds.source}"
        raise AuthError(f"{self.domain}: {method} {target.path}: access denied {who} (HTTP 401)")

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        repository: str,
        scopes: frozenset[str],
        headers: Mapping[str, str] | None = None,
        body: Body | None = None,
        what: str = "",
    ) -> httpx.Response:
        """:meth:`send` with retries on connection errors, 5xx and 429 (for requests that can be resent)."""

        def attempt() -> httpx.Response:
            response = self.send(method, url, repository=repository, scopes=scopes, headers=headers, body=body)
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(f"{what or method}: HTTP {response.status_code}", _retry_after(response))
            return response

        response: httpx.Response = self._retrying(attempt, what or method)
        return response

    def _retrying(self, attempt: Callable[[], Any], what: str, label: str = "") -> Any:
        """Call ``attempt`` until it does not raise ``_Retryable``, with backoff; ``label`` opens the final error."""
        tries = self.options.retry_times + 1
        for number in range(tries):
            try:
                return attempt()
            except _Retryable as exc:
                if number + 1 == tries:
                    raise PushError(self.redact(f"{label or self.domain}: {exc} (after {tries} attempts)")) from None
                self.backoff(number, exc, what)
        raise AssertionError("unreachable")

    def backoff(self, number: int, exc: _Retryable, what: str) -> None:
        """Sleep before retry ``number + 1`` (exponential from ``retry_delay``, or ``Retry-After``)."""
        delay = min(self.options.retry_delay * (2**number), 30.0)
        if exc.retry_after is not None:
            delay = min(max(delay, exc.retry_after), 60.0)
        log.info("%s", self.redact(f"{self.domain}: {what}: {exc}; retrying in {delay:.1f} s"))
        time.sleep(delay)

    def error(self, response: httpx.Response, what: str) -> PushError:
        """A :class:`PushError` for an unexpected answer, with the registry's error codes."""
        detail = ""
        try:
            errors = response.json().get("errors") or []
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
        except (ValueError, AttributeError):
            pass
        text = f"{self.domain}: {what}: HTTP {response.status_code}" + (f" {detail[:300]}" if detail else "")
        return PushError(self.redact(text))


def _version() -> str:
    try:
        return importlib.metadata.version("pyoci")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _headers(headers: httpx.Headers) -> str:
    return " ".join(f"{k}: {'<redacted>' if k.lower() in _REDACTED_HEADERS else v}" for k, v in headers.multi_items())


def _describe(exc: httpx.TransportError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_certificate_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "certificate verify failed" in text or "certificate_verify_failed" in text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _check_digest(response: httpx.Response, expected: Digest, what: str, domain: str) -> None:
    sent = response.headers.get("docker-content-digest")
    if sent and sent != str(expected):
        raise PushError(f"{domain}: {what}: registry computed {sent}, expected {expected}")


class RegistryTarget:
    """One repository of a registry, as a push :class:`~pyoci.targets.Target` and :class:`Mount`.

    Args:
        client: the registry client (shared by every repository of the registry).
        repository: the repository path, e.g. ``library/alpine``.
    """

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository
        self._push_scope = frozenset({repository_scope(repository, "pull,push")})
        self._sessions: dict[Digest, str] = {}
        """The HTTP status each mount request got (201: mounted without an upload)."""

    @property
    def name(self) -> str:
        """``docker://DOMAIN/REPOSITORY``."""
        return f"docker://{self.client.domain}/{self.repository}"

    def _path(self, kind: str, reference: str) -> str:
        return f"/v2/{self.repository}/{kind}/{reference}"

    def has_blob(self, descriptor: Descriptor) -> bool:
        """``HEAD /v2/<name>/blobs/<digest>``: 200 is True, 404 False."""
        response = self.client.request(
            "HEAD",
            self._path("blobs", str(descriptor.digest)),
            repository=self.repository,
            scopes=self._push_scope,
            what=f"HEAD blob {descriptor.digest}",
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self.client.error(response, f"{self.repository}: HEAD blob {descriptor.digest}")

    def mount_blob(self, descriptor: Descriptor, from_repository: str) -> bool:
        """``POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>``: 201 is True.

        A 202 (the registry started an upload instead) keeps the session for :meth:`put_blob`. A
        source repository the credentials cannot read gives False, not an error.
        """
        scopes = self._push_scope | {repository_scope(from_repository, "pull")}
        url = self.client.url(self._path("blobs", "uploads/")).copy_merge_params(
            {"mount": str(descriptor.digest), "from": from_repository}
        )
        try:
            response = self.client.request(
                "POST", url, repository=self.repository, scopes=scopes, what=f"mount {descriptor.digest}"
            )
        except AuthError:
            return False
        if response.status_code == 201:
            _check_digest(response, descriptor.digest, f"mount {descriptor.digest}", self.client.domain)
            return True
        if response.status_code == 202 and response.headers.get("location"):
            self._sessions[descriptor.digest] = response.headers["location"]
            return False
        raise self.client.error(response, f"{self.repository}: mount {descriptor.digest} from {from_repository}")

    def _start_upload(self, descriptor: Descriptor) -> str:
        session = self._sessions.pop(descriptor.digest, None)
        if session is not None:
            return session
        response = self.client.request(
            "POST",
            self._path("blobs", "uploads/"),
            repository=self.repository,
            scopes=self._push_scope,
            what="start upload",
        )
        if response.status_code != 202 or not response.headers.get("location"):
            raise self.client.error(response, f"{self.repository}: start upload of {descriptor.digest}")
        return response.headers["location"]

    def put_blob(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        """Upload a blob (streamed, chunked above ``chunk_size``), retrying from a new session on failure.

        Raises:
            DigestMismatchError: the local blob does not match ``descriptor`` (not retried).
            PushError: the registry refused it, or every attempt failed.
        """

        def attempt() -> None:
            progress.start(str(descriptor.digest)[7:19], descriptor.size)
            try:
                self._upload(descriptor, source, progress)
            finally:
                progress.finish()

        what = f"upload of {descriptor.digest}"
        self.client._retrying(attempt, what, f"{self.name}: {what}")  # a new upload session per attempt

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
                    response = self._data("PATCH", location, headers, _body(reader, count, progress))
                    if response.status_code != 202 or not response.headers.get("location"):
                        raise self._upload_error(response, f"PATCH {offset}-{offset + count - 1}")
                    location = response.headers["location"]
                    offset += count
                final = self._data("PUT", self._with_digest(location, descriptor), {"Content-Length": "0"}, None)
            else:
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                final = self._data(
                    "PUT", self._with_digest(location, descriptor), headers, _body(reader, size, progress)
                )
        if final.status_code != 201:
            raise self._upload_error(final, "PUT")
        _check_digest(final, descriptor.digest, f"upload of {descriptor.digest}", self.client.domain)

    def _with_digest(self, location: str, descriptor: Descriptor) -> httpx.URL:
        return self.client.url(location).copy_merge_params({"digest": str(descriptor.digest)})

    def _data(
        self, method: str, url: str | httpx.URL, headers: dict[str, str], body: Iterator[bytes] | None
    ) -> httpx.Response:
        return self.client.send(
            method,
            url,
            repository=self.repository,
            scopes=self._push_scope,
            headers=headers,
            body=(lambda: body) if body is not None else None,
            replayable=body is None,
        )

    def _upload_error(self, response: httpx.Response, what: str) -> Exception:
        # A cut or refused step leaves the session in an unknown state: start again from POST.
        if response.status_code in RETRY_STATUSES or response.status_code == 404:
            return _Retryable(f"{what}: HTTP {response.status_code}", _retry_after(response))
        return self.client.error(response, f"{self.repository}: upload {what}")

    def has_manifest(self, descriptor: Descriptor) -> bool:
        """``HEAD /v2/<name>/manifests/<digest>``: 200 is True, 404 False."""
        response = self.client.request(
            "HEAD",
            self._path("manifests", str(descriptor.digest)),
            repository=self.repository,
            scopes=self._push_scope,
            headers={"Accept": descriptor.media_type},
            what=f"HEAD manifest {descriptor.digest}",
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self.client.error(response, f"{self.repository}: HEAD manifest {descriptor.digest}")

    def put_manifest(self, descriptor: Descriptor, raw: bytes, tag: str | None) -> None:
        """``PUT /v2/<name>/manifests/<tag or digest>`` with the exact bytes and media type.

        Raises:
            PushError: the registry refused the manifest or computed another digest.
        """
        reference = tag or str(descriptor.digest)
        response = self.client.request(
            "PUT",
            self._path("manifests", reference),
            repository=self.repository,
            scopes=self._push_scope,
            headers={"Content-Type": descriptor.media_type},
            body=lambda: raw,
            what=f"PUT manifest {reference}",
        )
        if response.status_code != 201:
            raise self.client.error(response, f"{self.repository}: PUT manifest {reference}")
        _check_digest(response, descriptor.digest, f"manifest {reference}", self.client.domain)


def _body(reader: Readable, count: int, progress: Progress) -> Iterator[bytes]:
    """Yield the next ``count`` bytes of ``reader`` in pieces, reporting each to ``progress``."""
    remaining = count
    while remaining > 0:
        data = reader.read(min(READ_SIZE, remaining))
        if not data:
            raise PushError(f"blob ended {remaining} bytes early")
        remaining -= len(data)
        progress.advance(len(data))
        yield data
