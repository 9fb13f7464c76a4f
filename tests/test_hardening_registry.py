"""A hostile registry: credentials stay home, answers are bounded in size and time, errors are one line."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.bounded import MAX_RSS_MIB, run_bounded
from support.hostile import Answer, Hostile, Request

from pyoci import RegistryOptions, inspect, push
from pyoci.errors import AuthError, FormatError, RegistryError
from pyoci.targets.http import retry_after
from pyoci.targets.registry import MAX_MANIFEST_SIZE

USER, PASSWORD = "carol", "Hunter2-secret"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FAST = RegistryOptions(creds=f"{USER}:{PASSWORD}", retry_times=1, retry_delay=0.01, timeout=3)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def foreign() -> Iterator[Hostile]:
    """Another origin: answers everything with 401 naming a token realm of its own."""

    def handle(request: Request, server: Hostile) -> Answer:
        challenge = f'Bearer realm="http://{server.host}/token",service="evil"'
        return Answer(401, {"WWW-Authenticate": challenge})

    server = Hostile(handle)
    yield server
    server.stop()


def basic_registry(foreign_host: str, echo: bool = False) -> Hostile:
    """A registry front asking for Basic auth, whose upload sessions live on ``foreign_host``."""

    def handle(request: Request, server: Hostile) -> Answer:
        if request.headers.get("authorization") != f"Basic {BASIC}":
            return Answer(401, {"WWW-Authenticate": 'Basic realm="hostile"'})
        if request.path == "/v2/":
            return Answer(200, {"Content-Type": "application/json"}, b"{}")
        if echo and request.method != "HEAD":
            message = f"refused {request.headers['authorization']} (password {PASSWORD})"
            body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
            return Answer(400, {"Content-Type": "application/json"}, body)
        if request.method == "HEAD":
            return Answer(404)
        if request.method == "POST" and request.path.endswith("/blobs/uploads/"):
            return Answer(202, {"Location": f"http://{foreign_host}/upload/session-1"})
        return Answer(500)

    return Hostile(handle)


def test_credentials_never_reach_an_upload_location_on_another_host(
    foreign: Hostile, layouts: dict[str, Path]
) -> None:
    registry = basic_registry(foreign.host)
    try:
        with pytest.raises(RegistryError) as caught:
            push(layouts["single"], f"{registry.host}/app:1", options=FAST)
    finally:
        registry.stop()
    assert foreign.log, "the upload went to the foreign Location"
    assert all("authorization" not in r.headers for r in foreign.log)
    assert not [r for r in foreign.log if r.path.startswith("/token")]  # its realm was never asked
    assert PASSWORD not in str(caught.value) and BASIC not in str(caught.value)


def test_an_echoed_authorization_header_is_redacted(foreign: Hostile, layouts: dict[str, Path]) -> None:
    registry = basic_registry(foreign.host, echo=True)
    try:
        env = {**os.environ, "REGISTRY_AUTH_FILE": "/nonexistent"}
        args = [sys.executable, "-m", "pyoci", "push", "--creds", f"{USER}:{PASSWORD}", "--retry-times", "0"]
        proc = subprocess.run([*args, str(layouts["single"]), f"{registry.host}/app:1"], capture_output=True, env=env)
    finally:
        registry.stop()
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1, err
    assert "DENIED" in err and "***" in err
    assert PASSWORD not in err and BASIC not in err


def test_a_dripping_server_is_cut_off_at_the_deadline() -> None:
    def handle(request: Request, server: Hostile) -> Answer:
        return Answer(200, {"Content-Type": "application/json"}, b"{}", drip=0.2)

    server = Hostile(handle)
    try:
        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"no complete answer within 1 s \(after 1 attempt\)"):
            inspect(f"docker://{server.host}/x:1", options=RegistryOptions(retry_times=0, timeout=1))
        assert time.monotonic() - started < 5
    finally:
        server.stop()


def registry_answering(manifest: Answer) -> Hostile:
    def handle(request: Request, server: Hostile) -> Answer:
        if request.path == "/v2/":
            return Answer(200, {"Content-Type": "application/json"}, b"{}")
        return manifest

    return Hostile(handle)


def gzip_of_spaces(size: int) -> bytes:
    """gzip of ``{`` and ``size`` spaces, made in pieces (a child inherits its parent's peak RSS)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [packer.compress(b"{")] + [packer.compress(b" " * (1 << 20)) for _ in range(size >> 20)]
    return b"".join([*parts, packer.flush()])


def test_a_compression_bomb_is_refused_in_bounded_memory() -> None:
    bomb = gzip_of_spaces(300 << 20)  # 300 MiB of JSON-looking bytes
    headers = {"Content-Type": OCI_MANIFEST, "Content-Encoding": "gzip"}
    server = registry_answering(Answer(200, headers, bomb))
    try:
        outcome = run_bounded("inspect", "--retry-times", "0", f"docker://{server.host}/x:1")
    finally:
        server.stop()
    assert outcome.returncode == 1, outcome
    assert outcome.stderr.endswith(f"answer larger than {MAX_MANIFEST_SIZE} bytes\n"), outcome.stderr
    assert outcome.peak_rss_mib < MAX_RSS_MIB, outcome.peak_rss_mib


def test_a_huge_error_body_is_read_only_in_part() -> None:
    body = gzip_of_spaces(400 << 20)
    server = registry_answering(Answer(404, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, body))
    try:
        outcome = run_bounded("inspect", "--retry-times", "0", f"docker://{server.host}/x:1")
    finally:
        server.stop()
    text = outcome.stderr
    assert outcome.returncode == 1 and text.count("\n") == 1 and "HTTP 404" in text, text
    assert outcome.peak_rss_mib < MAX_RSS_MIB, outcome.peak_rss_mib


def test_deeply_nested_json_from_a_registry_is_a_clean_error() -> None:
    server = registry_answering(Answer(200, {"Content-Type": OCI_MANIFEST}, b"[" * 100_000 + b"]" * 100_000))
    try:
        with pytest.raises(FormatError, match="JSON nested too deeply"):
            inspect(f"docker://{server.host}/x:1", options=RegistryOptions(retry_times=0))
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("value", "seconds"), [("5", 5.0), ("99999999999", 60.0), ("inf", None), ("nan", None), ("", None)]
)
def test_retry_after_is_clamped(value: str, seconds: float | None) -> None:
    assert retry_after(httpx.Response(503, headers={"Retry-After": value})) == seconds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--retry-times", "2000"], "--retry-times"),
        (["--retry-delay", "nan"], "--retry-delay nan: expected 0 to 30 seconds"),
        (["--chunk-size", "12Q"], "--chunk-size '12Q'"),
    ],
)
def test_hostile_options_are_one_line_errors(args: list[str], message: str, layouts: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyoci", "push", *args, str(layouts["single"]), "127.0.0.1:9/x:1"], capture_output=True
    )
    err = proc.stderr.decode()
    assert proc.returncode in (1, 2) and message in err and "Traceback" not in err, err


def test_auth_files_that_are_not_regular_files(tmp_path: Path, layouts: dict[str, Path]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(path)}
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pyoci", "push", str(layouts["single"]), "127.0.0.1:9/x:1"],
            capture_output=True,
            env=env,
            timeout=60,
        )
        err = proc.stderr.decode()
        # the registry is unreachable, so the file is read only when credentials are asked for: either way, no hang
        assert proc.returncode == 1 and err.count("\n") == 1 and time.monotonic() - started < 30, err
    with pytest.raises(AuthError, match="not a regular file"):
        from pyoci.targets.auth import find_credentials

        find_credentials("example.com", authfile=fifo)
