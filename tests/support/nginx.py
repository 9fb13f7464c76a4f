"""Start nginx (Debian's nginx-light) in the foreground on a free loopback port, serving a static tree."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from support.processes import stop_process


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    prefix: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def start_nginx(binary: str, prefix: Path, server: str) -> Nginx:
    """Run nginx with ``server { listen 127.0.0.1:PORT; SERVER }`` (``server``: the directives to include)."""
    prefix.mkdir(parents=True, exist_ok=True)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temps = " ".join(f"{kind}_temp_path {prefix}/{kind};" for kind in kinds)
    for _ in range(5):
        port = free_port()
        (prefix / "nginx.conf").write_text(
            f"master_process off; error_log {prefix}/error.log; pid {prefix}/nginx.pid;\n"
            "events { worker_connections 64; }\n"
            f"http {{ access_log off; {temps}\n  server {{ listen 127.0.0.1:{port}; {server} }}\n}}\n"
        )
        args = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
        process = subprocess.Popen(args)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return Nginx(process, port, prefix)
            except OSError:
                time.sleep(0.02)
        if process.poll() is None:
            process.kill()
            process.wait()
    raise RuntimeError(f"nginx did not start: {(prefix / 'error.log').read_text()}")
