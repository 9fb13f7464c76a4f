"""moto's S3 server (``moto_server``) in a child process, and a small website endpoint in front of it.

The website endpoint answers GET and HEAD as S3 website hosting does: ``/PATH`` is the object
``PREFIX/PATH`` with its stored ``Content-Type``, a path ending in ``/`` its ``index.html``, a missing
object 404; nothing else (S3 websites cannot send ``Docker-Content-Digest``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from support.processes import stop_process, stop_server

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "pyoci-test",
    "AWS_SECRET_ACCESS_KEY": "pyoci-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto_binary() -> str | None:
    local = Path(sys.executable).parent / "moto_server"
    return str(local) if local.exists() else shutil.which("moto_server")


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def start_moto(binary: str, port: int, log: Path) -> MotoServer:
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return MotoServer(process, port)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}")


class Website:
    """A website endpoint for ``BUCKET/PREFIX`` of an S3 server, on a free loopback port."""

    def __init__(self, endpoint: str, bucket: str, prefix: str = "") -> None:
        self.requests: list[tuple[str, str, int]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.answer(send_body=True)

            def do_HEAD(self) -> None:
                self.answer(send_body=False)

            def answer(self, send_body: bool) -> None:
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
                key = prefix + (path + "index.html" if path == "" or path.endswith("/") else path)
                url = f"{endpoint}/{bucket}/{urllib.parse.quote(key, safe='/:')}"
                response = httpx.request("GET" if send_body else "HEAD", url, timeout=30)
                status = response.status_code if response.status_code == 200 else 404
                site.requests.append((self.command, "/" + path, status))
                self.send_response(status)
                if status == 200:
                    self.send_header("Content-Type", response.headers["content-type"])
                    self.send_header("Content-Length", response.headers["content-length"])
                    self.end_headers()
                    if send_body:
                        self.wfile.write(response.content)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        stop_server(self.server)
