"""Start the CNCF distribution registry (``docker-registry``, Debian) on a free loopback port."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from support.processes import stop_process

_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


@dataclass
class Registry:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def htpasswd(path: Path, users: dict[str, str]) -> Path:
    """Write an htpasswd file with bcrypt entries (bcrypt directly: passlib is broken with bcrypt 5)."""
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}" for user, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_registry(workdir: Path, auth: str = "", http_extra: str = "", delete: bool = True) -> Registry:
    """Start ``docker-registry serve`` with storage in ``workdir`` (``workdir/config.yml`` is its configuration).

    ``auth`` is a YAML ``auth:`` block or empty; ``http_extra`` more lines of the ``http:`` block (``tls:``);
    ``delete`` enables ``DELETE`` of manifests and blobs.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"  delete:\n    enabled: {str(delete).lower()}\n"
        "http:\n  addr: 127.0.0.1:0\n  secret: pyoci-test-secret\n" + http_extra + auth
    )
    log = workdir / "registry.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        match = _LISTENING.search(log.read_bytes())
        if match:
            return Registry(process, int(match.group(1)), log)
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"docker-registry did not start: {log.read_text()[-2000:]}")
