"""The connection to one OCI distribution registry (distribution-spec ``spec.md``): TLS, retries, errors.

HTTP library: **httpx**. It types cleanly under ``mypy --strict``, streams request bodies from a
generator with the ``Content-Length`` we set (so blobs are never held in memory and registries that
refuse chunked transfer encoding still work), takes an :class:`ssl.SSLContext` directly
(``--cert-dir``, client certificates), honours the standard proxy variables (``HTTPS_PROXY``,
``NO_PROXY``), has timeouts, request/response hooks for a redacted ``--debug`` trace, and an auth
flow protocol (:mod:`pyoci.targets.bearer`). HTTP/1.1 only: no optional h2 dependency.

Rules, and where they come from:

* scheme: HTTPS with certificate verification; plain HTTP only when HTTPS cannot connect and the
  registry is on a loopback address or ``tls_verify`` is off (Docker's and skopeo's rule);
* retries: connection errors, 5xx and 429 (``Retry-After`` honoured, at most 60 s) are retried
  with exponential backoff from ``retry_delay`` (at most 30 s per wait), ``retry_times`` times;
* answers are read with a bound (:func:`~pyoci.targets.http.read_bounded`), and asked for
  uncompressed (``Accept-Encoding: identity``); every request that does not stream a blob must
  be answered whole within ``timeout`` seconds (a server dripping one byte at a time is cut off);
* an unexpected answer becomes a :class:`~pyoci.errors.RegistryError` with its status and the
  distribution-spec error codes of its body (``spec.md`` "Error Codes"), redacted.

Secrets (passwords, identity tokens, bearer tokens) are removed from every log line and message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from pyoci.errors import AuthError, FormatError, RegistryError
from pyoci.jsonio import load_json
from pyoci.reference import DOCKER_HUB
from pyoci.targets.auth import Credentials, find_credentials, parse_creds
from pyoci.targets.bearer import MAX_TOKEN_ANSWER, SCOPES, RegistryAuth
from pyoci.targets.http import (
    MAX_ERROR_BODY,
    RETRY_STATUSES,
    Transient,
    read_bounded,
    redact,
    retry_after,
    same_origin,
)
from pyoci.targets.options import MAX_BACKOFF, RegistryOptions
from pyoci.targets.tls import verified_context
from pyoci.version import __version__

log = logging.getLogger("pyoci.registry")

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
_REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

T = TypeVar("T")


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


@dataclass(frozen=True)
class Answer:
    """A registry's answer, its body read (bounded).

    Attributes:
        status: the HTTP status.
        headers: the response headers.
        body: the body (truncated to the request's limit unless the limit was strict).
        url: the URL that answered (after redirects).
    """

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL


class RegistryClient:
    """One registry: its connection pool, scheme, auth state (:class:`RegistryAuth`) and retry policy.

    Args:
        domain: the registry as in an image name (``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``).
        options: TLS, credentials, chunking and retry settings.

    Use as a context manager, or call :meth:`close`. Nothing is opened before the first request.
    """

    def __init__(self, domain: str, options: RegistryOptions | None = None) -> None:
        self.domain = domain
        self.options = options or RegistryOptions()
        self.host = DOCKER_HUB_ENDPOINT if domain == DOCKER_HUB else domain
        self.secrets: set[str] = set()
        self._http_client: httpx.Client | None = None
        self._auth: RegistryAuth | None = None
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._repository = ""
        self._first_challenge: httpx.Response | None = None
        self._lock = threading.RLock()  # transfers run in parallel threads: the shared state changes under it

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        if self._http_client is not None:
            self._http_client.close()

    # -- connection, TLS, credentials, redaction ----------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            return self._http_locked()

    def _http_locked(self) -> httpx.Client:
        if self._http_client is None:
            self._http_client = httpx.Client(
                verify=self._ssl_context(),
                trust_env=True,
                timeout=httpx.Timeout(self.options.timeout, connect=min(self.options.timeout, 30.0)),
                headers={"User-Agent": f"pyoci/{__version__}", "Accept-Encoding": "identity"},
                event_hooks={"request": [self._trace_request], "response": [self._trace_response]},
            )
        return self._http_client

    def _ssl_context(self) -> ssl.SSLContext:
        if not self.options.tls_verify:  # no CA is ever consulted: skip loading them (25-30 ms)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        ctx = verified_context()
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
                raise RegistryError(f"{directory}: cannot load certificates: {exc}") from exc
        return ctx

    def credentials(self) -> Credentials | None:
        """The credentials for this registry (``creds`` option first, then the credential files).

        Raises:
            AuthError: a credential file or helper cannot be read.
        """
        with self._lock:
            return self._credentials_locked()

    def _credentials_locked(self) -> Credentials | None:
        if not self._credentials_loaded:
            if self.options.creds is not None:
                self._credentials = parse_creds(self.options.creds)
            else:
                self._credentials = find_credentials(
                    self.domain, self._repository, authfile=self.options.authfile, environ=self.options.environ
                )
            if self._credentials is not None:
                self.secrets.update(self._credentials.secrets())
            self._credentials_loaded = True
        return self._credentials

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        return redact(text, self.secrets)

    def _trace_request(self, request: httpx.Request) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", self.redact(f"> {request.method} {request.url} {_headers(request.headers)}"))

    def _trace_response(self, response: httpx.Response) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", self.redact(f"< {response.status_code} {response.url} {_headers(response.headers)}"))

    # -- the /v2/ ping ------------------------------------------------------------------------

    def base(self) -> httpx.URL:
        """The registry's base URL, found by a ``GET /v2/`` ping on first use (with retries).

        Raises:
            RegistryError: the registry cannot be reached, or is not an OCI registry.
        """
        with self._lock:
            return self._base_locked()

    def _base_locked(self) -> httpx.URL:
        if self._auth is None:
            base = self.retrying(self._ping, "ping /v2/")
            self._auth = RegistryAuth(
                self.domain,
                base,
                self.credentials,
                self._fetch_token,
                lambda realm: is_loopback(realm.netloc.decode()) or not self.options.tls_verify,
                self.secrets,
                self._lock,
            )
            if self._first_challenge is not None:
                self._auth.learn(self._first_challenge)
        return self._auth.origin

    def note_repository(self, repository: str) -> None:
        """Remember the first repository used, for repository-scoped credentials (``auths`` keys ``host/repo``)."""
        if not self._repository:
            self._repository = repository

    def _ping(self) -> httpx.URL:
        https = httpx.URL(f"https://{self.host}/")
        try:
            status, response = self._head_of(https.join("/v2/"))
            base = https
        except httpx.TransportError as exc:
            problem = f"cannot connect over HTTPS: {_describe(exc)}"
            if not (is_loopback(self.host) or not self.options.tls_verify):
                if _is_certificate_error(exc):
                    raise RegistryError(f"{self.domain}: {problem} (use --cert-dir for a private CA)") from exc
                raise Transient(problem) from exc
            http = httpx.URL(f"http://{self.host}/")
            try:
                status, response = self._head_of(http.join("/v2/"))
            except httpx.TransportError as exc2:
                raise Transient(f"{problem}; over HTTP: {_describe(exc2)}") from exc2
            if status not in (200, 401, *RETRY_STATUSES):
                # an HTTPS server refusing plain HTTP: the HTTPS failure is the one that matters
                raise RegistryError(f"{self.domain}: {problem}; over HTTP: HTTP {status}", status=status) from exc
            base = http
        if status in RETRY_STATUSES:
            raise Transient(f"GET /v2/: HTTP {status}", retry_after(response), status)
        if status == 401:
            self._first_challenge = response
        elif status != 200:
            raise RegistryError(
                f"{self.domain}: GET /v2/: HTTP {status}: not an OCI registry API", status=status
            )
        return base

    def _head_of(self, url: httpx.URL) -> tuple[int, httpx.Response]:
        """GET ``url`` without reading its body (the /v2/ answer's body is never needed)."""
        http = self._http()  # taken here: the caller may hold the lock the worker would wait for

        def run() -> httpx.Response:
            response = http.send(http.build_request("GET", url), stream=True)
            response.close()
            return response

        response = self._within(run, f"GET {url.path}")
        return response.status_code, response

    def _within(self, call: Callable[[], T], what: str) -> T:
        """Run ``call`` (one whole request) with a deadline of ``timeout`` seconds.

        A request past its deadline is abandoned: its thread is left to fail on its own (it is a
        daemon, so it never keeps the process alive) and the connection pool is replaced.

        Raises:
            Transient: the deadline passed.
        """
        outcome: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(call())
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                failure.append(exc)

        worker = threading.Thread(target=run, name="pyoci-request", daemon=True)
        worker.start()
        worker.join(self.options.timeout)
        if worker.is_alive():
            with self._lock:
                stuck, self._http_client = self._http_client, None
            if stuck is not None:
                threading.Thread(target=stuck.close, daemon=True).start()
            raise Transient(f"{what}: no complete answer within {self.options.timeout:g} s")
        if failure:
            raise failure[0]
        return outcome[0]

    def _fetch_token(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        """Send a token request (to the realm the registry named) and read its answer, bounded."""
        http = self._http()  # taken here: the auth flow holds the lock while it fetches a token

        def run() -> tuple[int, httpx.Headers, bytes]:
            response = http.send(request, stream=True)
            try:
                return response.status_code, response.headers, read_bounded(response, MAX_TOKEN_ANSWER, "token")
            finally:
                response.close()

        try:
            return self._within(run, f"{self.domain}: token service {request.url.host}")
        except httpx.TransportError as exc:
            raise Transient(f"{self.domain}: token service {request.url.host}: {_describe(exc)}") from exc

    # -- requests -----------------------------------------------------------------------------

    def url(self, path: str) -> httpx.URL:
        """The absolute URL of a ``/v2/...`` path or of a (possibly relative) ``Location``."""
        return self.base().join(path)

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        scopes: frozenset[str],
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        follow_redirects: bool = False,
    ) -> Iterator[httpx.Response]:
        """Send one authenticated request and yield its unread, streamed response.

        Credentials go only to the registry's origin (see :mod:`pyoci.targets.bearer`). A 401 from
        the registry is learned from (its challenge and scope) and the request sent once more,
        unless its body is a stream that cannot be sent twice: then the 401 is the answer.

        Raises:
            Transient: a connection error.
            AuthError: the registry asks for credentials that cannot be found or are refused.
        """
        target = self.url(str(url))
        auth = self._auth
        assert auth is not None  # base() set it
        for attempt in range(2):
            request = self._http().build_request(
                method, target, headers=dict(headers or {}), content=content, extensions={SCOPES: scopes}
            )
            try:
                response = self._http().send(request, auth=auth, stream=True, follow_redirects=follow_redirects)
            except httpx.TransportError as exc:
                raise Transient(f"{method} {target.path}: {_describe(exc)}") from exc
            if response.status_code != 401 or attempt > 0 or not same_origin(response.url, auth.origin):
                break
            already = "Authorization" in request.headers
            scope = auth.learn(response, request.headers.get("Authorization"))
            if isinstance(content, Iterator) or (auth.scheme == "basic" and already):
                break
            response.close()
            scopes = scopes | {scope} if scope else scopes
        try:
            yield response
        except httpx.TransportError as exc:
            raise Transient(f"{method} {target.path}: {_describe(exc)}") from exc
        finally:
            response.close()

    def send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        scopes: frozenset[str],
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        limit: int = MAX_ERROR_BODY,
        strict: bool = False,
        follow_redirects: bool = False,
    ) -> Answer:
        """Send one request (no retry) and read its body, at most ``limit`` bytes.

        Args:
            method: the HTTP method.
            url: a ``/v2/...`` path or an absolute URL (an upload ``Location``).
            scopes: the token scopes the request needs (``repository:NAME:pull[,push]``).
            headers: extra request headers.
            content: the body: bytes, or an iterator of bytes (sent once; not resent after a 401).
            follow_redirects: follow redirects (GET and HEAD of blobs; credentials never follow).
            limit: bytes of the body to read.
            strict: a longer body is an error (a document); else it is cut (an error body).

        Raises:
            Transient: a connection error.
            RegistryError: ``strict`` and the body is longer than ``limit``.
        """

        def run() -> Answer:
            with self.stream(
                method, url, scopes=scopes, headers=headers, content=content, follow_redirects=follow_redirects
            ) as response:
                what = f"{self.domain}: {method} {response.url.path}"
                if response.status_code < 300:
                    body = read_bounded(response, limit, what, truncate=not strict)
                else:
                    body = read_bounded(response, MAX_ERROR_BODY, what, truncate=True)
                return Answer(response.status_code, response.headers, body, response.url)

        if isinstance(content, Iterator):
            return run()  # a blob upload: its connection's own timeouts bound it, its size does not
        return self._within(run, f"{method} {url}")

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        scopes: frozenset[str],
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        limit: int = MAX_ERROR_BODY,
        strict: bool = False,
        what: str = "",
        follow_redirects: bool = False,
    ) -> Answer:
        """:meth:`send` with retries on connection errors, 5xx and 429 (the body can be sent again)."""

        def attempt() -> Answer:
            answer = self.send(
                method,
                url,
                scopes=scopes,
                headers=headers,
                content=content,
                limit=limit,
                strict=strict,
                follow_redirects=follow_redirects,
            )
            if answer.status in RETRY_STATUSES:
                raise Transient(f"{what or method}: HTTP {answer.status}", _retry_after(answer), answer.status)
            if answer.status == 401:
                raise self.denied(method, answer)
            return answer

        return self.retrying(attempt, what or method)

    def denied(self, method: str, answer: Answer) -> RegistryError:
        """The error for a 401 that survived authentication."""
        creds = self._credentials
        who = "anonymously" if creds is None else f"with the credentials from {creds.source}"
        return AuthError(
            self.redact(f"{self.domain}: {method} {answer.url.path}: access denied {who} (HTTP 401)"), status=401
        )

    def retrying(self, attempt: Callable[[], T], what: str, label: str = "") -> T:
        """Call ``attempt`` until it does not raise :class:`Transient`, with backoff; ``label`` opens the final error.

        Raises:
            RegistryError: every attempt failed (the last failure is named).
        """
        tries = self.options.retry_times + 1
        for number in range(tries):
            try:
                return attempt()
            except Transient as exc:
                if number + 1 == tries:
                    noun = "attempt" if tries == 1 else "attempts"
                    text = f"{label or self.domain}: {exc} (after {tries} {noun})"
                    raise RegistryError(self.redact(text), status=exc.status) from None
                self.backoff(number, exc, what)
        raise AssertionError("unreachable")

    def backoff(self, number: int, exc: Transient, what: str) -> None:
        """Sleep before retry ``number + 1`` (exponential from ``retry_delay``, or ``Retry-After``)."""
        delay = min(self.options.retry_delay * (2 ** min(number, 16)), MAX_BACKOFF)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        log.info("%s", self.redact(f"{self.domain}: {what}: {exc}; retrying in {delay:.1f} s"))
        time.sleep(delay)

    def error(self, answer: Answer, what: str) -> RegistryError:
        """A :class:`RegistryError` for an unexpected answer, with the registry's error codes (redacted)."""
        codes: list[str] = []
        details: list[str] = []
        try:
            errors = load_json(answer.body, what).get("errors") or []
            for item in errors if isinstance(errors, list) else []:
                if isinstance(item, dict):
                    code, message = str(item.get("code", ""))[:64], str(item.get("message", ""))[:200]
                    codes.append(code)
                    details.append(f"{code}: {message}")
        except (FormatError, AttributeError):
            pass
        detail = "; ".join(details)[:300]
        text = f"{self.domain}: {what}: HTTP {answer.status}" + (f" {detail}" if detail else "")
        return RegistryError(self.redact(_printable(text)), status=answer.status, codes=tuple(codes))


def _retry_after(answer: Answer) -> float | None:
    return retry_after(httpx.Response(answer.status, headers=answer.headers))


def _printable(text: str) -> str:
    """``text`` on one line, without control characters (a server's words may hold anything)."""
    return "".join(c if c.isprintable() else " " for c in text)


def _headers(headers: httpx.Headers) -> str:
    return " ".join(f"{k}: {'<redacted>' if k.lower() in _REDACTED_HEADERS else v}" for k, v in headers.multi_items())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_certificate_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "certificate verify failed" in text or "certificate_verify_failed" in text

