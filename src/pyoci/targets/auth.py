"""Registry credentials, found where skopeo, podman and Docker users keep them, and auth challenges.

Lookup order for a registry (containers-auth.json(5), as skopeo reads it, then Docker's files):

1. ``--creds USER:PASS`` (given to :class:`~pyoci.targets.registry.RegistryOptions` directly);
2. ``--authfile FILE``, else ``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``;
3. ``$XDG_CONFIG_HOME/containers/auth.json`` (default ``~/.config/containers/auth.json``);
4. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.

The first file that yields credentials wins. Within a file: ``credHelpers[registry]`` (a
``docker-credential-NAME`` program), then ``auths`` (the most specific key first:
``host/namespace/repo``, ..., ``host``; ``https://index.docker.io/v1/`` is Docker Hub), then
``credsStore`` (a helper for every registry). An ``auths`` entry without ``auth``, ``username`` or
``identitytoken`` is a placeholder, as Docker writes next to a credential store, and is skipped.

Secrets never reach messages: :class:`Credentials` hides them from ``repr``, and errors name only
the file or helper involved.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoci.errors import AuthError, FormatError
from pyoci.jsonio import load_json
from pyoci.reference import DOCKER_HUB

DOCKER_HUB_LEGACY_KEY = "https://index.docker.io/v1/"
"""The key Docker uses for Docker Hub in config.json and when asking credential helpers."""

HELPER_TIMEOUT = 30.0
"""Seconds a ``docker-credential-*`` program may take."""
MAX_AUTH_FILE = 1 << 20
"""Largest credential file read, in bytes (they hold a few entries)."""
MAX_HELPER_ANSWER = 1 << 20
"""Largest answer of a credential helper read, in bytes."""


@dataclass(frozen=True)
class Credentials:
    """A user name and secret for one registry.

    Attributes:
        username: the user name (empty for an identity token).
        password: the password or access token.
        identity_token: an OAuth2 refresh token (``identitytoken``), exchanged at the token service.
        source: where the credentials came from (a file path or helper name), for messages.
    """

    username: str
    password: str = field(repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""

    def secrets(self) -> list[str]:
        """The secret strings, for redaction."""
        return [s for s in (self.password, self.identity_token) if s]


def parse_creds(text: str) -> Credentials:
    """Parse ``--creds USER[:PASS]`` (skopeo's syntax; the password may contain colons).

    Raises:
        AuthError: the user name is empty.
    """
    username, _, password = text.partition(":")
    if not username:
        raise AuthError("--creds: expected USER:PASSWORD")
    return Credentials(username, password, source="--creds")


def normalise_key(key: str) -> str:
    """Normalise an ``auths``/``credHelpers`` key: a URL gives its host; Docker Hub's names give ``docker.io``."""
    if "://" in key:
        key = key.split("://", 1)[1].split("/", 1)[0]
    key = key.rstrip("/")
    host, sep, rest = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        host = DOCKER_HUB
    return host + sep + rest


def auth_files(authfile: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Return the credential files to consult, in order (see the module docstring)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    paths: list[Path] = []
    if authfile is not None:
        paths.append(Path(authfile))
    elif env.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(env["REGISTRY_AUTH_FILE"]))
    elif env.get("XDG_RUNTIME_DIR"):
        paths.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    else:
        paths.append(Path(f"/run/containers/{os.getuid()}/auth.json"))
    paths.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "auth.json")
    docker_dir = env.get("DOCKER_CONFIG")
    paths.append(Path(docker_dir) / "config.json" if docker_dir else home / ".docker" / "config.json")
    return paths


def find_credentials(
    registry: str,
    repository: str = "",
    *,
    authfile: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """Return the credentials stored for ``registry`` (and ``repository``), or None.

    Args:
        registry: the registry as in an image name: ``docker.io``, ``ghcr.io``, ``localhost:5000``.
        repository: the repository path, for repository-scoped ``auths`` keys.
        authfile: ``--authfile``; when given it replaces ``REGISTRY_AUTH_FILE`` and the runtime file.
        environ: the environment (default ``os.environ``); ``PATH`` locates credential helpers.

    Raises:
        AuthError: ``authfile`` is missing, a file is not valid JSON, an entry cannot be decoded, or a
            credential helper is absent or fails.
    """
    env = os.environ if environ is None else environ
    if authfile is not None and not Path(authfile).exists():
        raise AuthError(f"{authfile}: authentication file not found")
    for path in auth_files(authfile, env):
        data = _read_auth_file(path)
        if data is None:
            continue
        try:
            config = load_json(data, str(path))
        except FormatError as exc:
            raise AuthError(str(exc)) from None
        if not isinstance(config, dict):
            raise AuthError(f"{path}: not a JSON object")
        found = _from_config(config, str(path), registry, repository, env)
        if found is not None:
            return found
    return None


def _read_auth_file(path: Path) -> bytes | None:
    """The bytes of a credential file; None when it does not exist.

    Only a regular file of at most :data:`MAX_AUTH_FILE` bytes is read: a FIFO would block and a
    device never end.

    Raises:
        AuthError: it exists and is not a regular file, is too large, or cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthError(f"{path}: cannot read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuthError(f"{path}: not a regular file")
        data = file.read(MAX_AUTH_FILE + 1)
    if len(data) > MAX_AUTH_FILE:
        raise AuthError(f"{path}: larger than {MAX_AUTH_FILE} bytes, not a credential file")
    return data


def _keys_for(registry: str, repository: str) -> list[str]:
    parts = repository.split("/") if repository else []
    keys = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    return [*keys, registry]


def _from_config(
    config: dict[str, Any], where: str, registry: str, repository: str, env: Mapping[str, str]
) -> Credentials | None:
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        by_key = {normalise_key(k): v for k, v in helpers.items() if isinstance(v, str)}
        if registry in by_key:
            return run_helper(by_key[registry], registry, env)
    auths = config.get("auths") or {}
    if isinstance(auths, dict):
        normalised = {normalise_key(k): v for k, v in auths.items()}
        for key in _keys_for(registry, repository):
            entry = normalised.get(key)
            if isinstance(entry, dict):
                creds = _decode_entry(entry, f"{where}: auths[{key!r}]")
                if creds is not None:
                    return creds
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return run_helper(store, registry, env)
    return None


def _decode_entry(entry: dict[str, Any], where: str) -> Credentials | None:
    username, password = entry.get("username") or "", entry.get("password") or ""
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(f"{where}: 'auth' is not base64 of USER:PASSWORD") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{where}: 'auth' is not base64 of USER:PASSWORD")
    token = entry.get("identitytoken") or ""
    if not (username or token):
        return None
    return Credentials(str(username), str(password), str(token), source=where.split(": ")[0])


def run_helper(name: str, registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Ask ``docker-credential-NAME get`` for ``registry`` (Docker's credential helper protocol).

    The server URL sent is the registry host (``https://index.docker.io/v1/`` for Docker Hub). A
    ``Username`` of ``<token>`` means the secret is an identity token.

    Returns:
        The credentials, or None when the helper has none for the registry.

    Raises:
        AuthError: the program is not on ``PATH``, fails, or answers something other than JSON.
    """
    program = f"docker-credential-{name}"
    server = DOCKER_HUB_LEGACY_KEY if registry == DOCKER_HUB else registry
    env = dict(os.environ if environ is None else environ)
    try:
        proc = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT, env=env, check=False
        )
    except FileNotFoundError:
        raise AuthError(f"{program}: credential helper not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"{program}: credential helper timed out after {HELPER_TIMEOUT:.0f} s") from None
    output = proc.stdout[:MAX_HELPER_ANSWER].decode(errors="replace").strip()
    if proc.returncode != 0:
        message = output or proc.stderr.decode(errors="replace").strip()
        if "credentials not found" in message.lower():
            return None
        first = message.splitlines()[0][:200] if message else f"exit status {proc.returncode}"
        raise AuthError(f"{program}: get {server}: {first}")
    try:
        answer = json.loads(output)
        username, secret = str(answer.get("Username") or ""), str(answer.get("Secret") or "")
    except (json.JSONDecodeError, AttributeError):
        raise AuthError(f"{program}: get {server}: answer is not a JSON object") from None
    if not secret:
        return None
    if username == "<token>":
        return Credentials("", "", secret, source=program)
    return Credentials(username, secret, source=program)


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge (RFC 7235), e.g. ``Bearer realm="...",service="..."``.

    Attributes:
        scheme: the scheme, lower case (``basic``, ``bearer``).
        params: the auth parameters, names lower case.
    """

    scheme: str
    params: Mapping[str, str]


_CHALLENGE = re.compile(r"\s*([!#$%&\'*+.^_`|~\w-]+)(?:\s+|$)")
_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header value into its challenges (RFC 7235 section 4.1)."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        match = _CHALLENGE.match(header, pos)
        if match is None:
            break
        scheme, pos = match.group(1).lower(), match.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM.match(header, pos)
            if param is None:
                break
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[param.group(1).lower()] = value
            pos = param.end()
        challenges.append(Challenge(scheme, params))
        while pos < len(header) and header[pos] in ", ":
            pos += 1
    return challenges


def repository_scope(repository: str, actions: str) -> str:
    """The token scope for ``actions`` (``pull`` or ``pull,push``) on ``repository`` (distribution ``token.md``)."""
    return f"repository:{repository}:{actions}"


def merge_scopes(scopes: frozenset[str] | set[str]) -> frozenset[str]:
    """Merge scopes on one resource into one (``repository:a:pull`` + ``repository:a:push`` -> ``...:pull,push``)."""
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, names = scope.rpartition(":")
        if not resource:
            resource, names = scope, ""
        actions.setdefault(resource, set()).update(a for a in names.split(",") if a)
    return frozenset(f"{resource}:{','.join(sorted(names))}" for resource, names in actions.items())
