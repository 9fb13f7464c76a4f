"""Registry authentication as an ``httpx.Auth`` flow: challenges, Basic, bearer tokens, scopes.

Rules, and where they come from:

* **Credentials stay home.** Credentials (and tokens) are only ever sent to the registry's own
  origin (scheme, host and port of its ``/v2/`` endpoint) and to the token realm *that registry*
  named in its challenge, as Docker and containers/image do. A request to any other host (an
  upload ``Location`` or a blob redirect to storage) goes out bare, and a 401 from such a host is
  never answered (the client only hands the registry's own 401s to :meth:`RegistryAuth.learn`).
* **Challenges** (RFC 7235; distribution ``token.md``): a 401 from the registry names the scheme.
  Basic sends the credentials (RFC 7617) on each request. Bearer fetches a token from the realm
  for the scopes in use (``repository:NAME:pull[,push]``) and reuses it until it expires; after a
  401 naming a wider scope (``insufficient_scope``) the client resends once with a token for the
  union. The 401 itself is handled by the client, so that its body is read with a bound.
* **Identity tokens** (``identitytoken`` in an auth file) are exchanged with an OAuth2 ``POST``
  (``grant_type=refresh_token``), others with a ``GET`` carrying Basic credentials.

Every secret seen (passwords, identity tokens, tokens, refresh tokens) is added to a shared set
so that everything printed can be redacted (:func:`pyoci.targets.http.redact`).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field

import httpx

from pyoci.errors import AuthError
from pyoci.jsonio import load_json
from pyoci.targets.auth import Credentials, merge_scopes, parse_challenges
from pyoci.targets.http import RETRY_STATUSES, Transient, retry_after, same_origin

SCOPES = "pyoci.scopes"
"""The request extension holding the token scopes a request needs (a frozenset of scope strings)."""

MAX_TOKEN_ANSWER = 1 << 20
"""Largest token service answer read, in bytes."""


@dataclass
class RegistryAuth(httpx.Auth):
    """The auth state of one registry, applied to every request sent to its origin.

    Args:
        domain: the registry as named by the user (for messages).
        origin: the registry's base URL (scheme, host, port), known after the ``/v2/`` ping.
        credentials: returns the credentials (or None), loaded on first need.
        fetch: sends a token request and returns ``(status, headers, body)`` with the body read
            with a bound (:data:`MAX_TOKEN_ANSWER`); raises :class:`~pyoci.targets.http.Transient`
            on a connection failure.
        allow_http_realm: a token realm may be plain HTTP (loopback registry or TLS checks off).
        secrets: the shared set every secret seen is added to, for redaction.
        lock: held while the auth state changes (requests run in parallel threads).
    """

    domain: str
    origin: httpx.URL
    credentials: Callable[[], Credentials | None]
    fetch: Callable[[httpx.Request], tuple[int, httpx.Headers, bytes]]
    allow_http_realm: Callable[[httpx.URL], bool]
    secrets: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)
    scheme: str | None = None
    challenge: Mapping[str, str] = field(default_factory=dict)
    token: str = ""
    token_scopes: frozenset[str] = frozenset()
    token_expiry: float = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Authenticate ``request`` when it goes to the registry's origin; anything else goes out bare."""
        if same_origin(request.url, self.origin):
            self.authorize(request, request.extensions.get(SCOPES, frozenset()))
        yield request

    def learn(self, response: httpx.Response, sent: str | None = None) -> str:
        """Record the scheme a registry 401 asks for; return the scope it names (may be empty).

        A refused token is not reused: the next request fetches a new one, unless ``sent`` (the
        ``Authorization`` the refused request carried) shows another thread has replaced it already.

        Raises:
            AuthError: the 401 names neither Basic nor Bearer.
        """
        with self.lock:
            return self._learn(response, sent)

    def _learn(self, response: httpx.Response, sent: str | None) -> str:
        challenges = parse_challenges(response.headers.get("www-authenticate", "")[:4096])
        if sent is None or sent == f"Bearer {self.token}":
            self.token_expiry = 0.0
        for challenge in challenges:
            if challenge.scheme == "bearer" and challenge.params.get("realm"):
                self.scheme, self.challenge = "bearer", challenge.params
                return challenge.params.get("scope", "")
        for challenge in challenges:
            if challenge.scheme == "basic":
                self.scheme = "basic"
                return ""
        raise AuthError(f"{self.domain}: HTTP 401 without a Basic or Bearer challenge", status=401)

    def authorize(self, request: httpx.Request, scopes: frozenset[str]) -> None:
        """Set the ``Authorization`` header the registry's scheme asks for (fetching a token when needed).

        Raises:
            AuthError: credentials are needed and absent, or the token service refuses them.
            Transient: the token service cannot be reached or answers 429/5xx.
        """
        with self.lock:
            self._authorize(request, scopes)

    def _authorize(self, request: httpx.Request, scopes: frozenset[str]) -> None:
        if self.scheme == "basic":
            creds = self.credentials()
            if creds is None:
                raise AuthError(f"{self.domain}: authentication required and no credentials found", status=401)
            request.headers["Authorization"] = f"Basic {self._basic(creds)}"
        elif self.scheme == "bearer":
            wanted = merge_scopes(self.token_scopes | scopes)
            if not self.token or wanted != self.token_scopes or time.monotonic() >= self.token_expiry:
                self._take_token(*self.fetch(self._token_request(wanted)), wanted)
            request.headers["Authorization"] = f"Bearer {self.token}"

    def _token_request(self, scopes: frozenset[str]) -> httpx.Request:
        realm = httpx.URL(self.challenge["realm"])
        if realm.scheme != "https" and not (realm.scheme == "http" and self.allow_http_realm(realm)):
            raise AuthError(f"{self.domain}: token realm {realm} is not HTTPS; refusing to send credentials")
        creds = self.credentials()
        service = self.challenge.get("service")
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "pyoci"}
            form |= {"scope": " ".join(sorted(scopes))} | ({"service": service} if service else {})
            return httpx.Request("POST", realm, data=form)
        params: dict[str, str | list[str]] = {"client_id": "pyoci", "scope": sorted(scopes)}
        if service:
            params["service"] = service
        headers = {"Authorization": f"Basic {self._basic(creds)}"} if creds is not None else {}
        return httpx.Request("GET", realm, params=params, headers=headers)

    def _basic(self, creds: Credentials) -> str:
        """The Basic credentials (RFC 7617), also kept as a secret: a server may echo the header back."""
        basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        self.secrets.add(basic)
        return basic

    def _take_token(self, status: int, headers: httpx.Headers, body: bytes, scopes: frozenset[str]) -> None:
        creds = self.credentials()
        if status in RETRY_STATUSES:
            answer = httpx.Response(status, headers=headers)
            raise Transient(f"{self.domain}: token service: HTTP {status}", retry_after(answer), status)
        if status in (401, 403):
            who = "anonymous access" if creds is None else f"the credentials from {creds.source}"
            raise AuthError(f"{self.domain}: token service refused {who} (HTTP {status})", status=status)
        if status != 200:
            raise AuthError(f"{self.domain}: token service: HTTP {status}", status=status)
        try:
            answer = load_json(body, f"{self.domain}: token service answer")
            token = answer.get("token") or answer.get("access_token")
            expires_in = int(answer.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError, OverflowError):
            raise AuthError(f"{self.domain}: token service answered something other than a JSON token") from None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.domain}: token service answered no token")
        self.secrets.add(token)
        if isinstance(answer.get("refresh_token"), str):
            self.secrets.add(answer["refresh_token"])
        self.token, self.token_scopes = token, scopes
        self.token_expiry = time.monotonic() + min(max(expires_in - 10, 5), 24 * 3600)
