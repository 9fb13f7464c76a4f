"""A reverse proxy in front of the real registry that records requests and injects faults.

Faults (each used once, in order, by the first request that matches):

* ``Fault("PUT", "/manifests/", "503")``: answer 503 without forwarding;
* ``Fault("PATCH", "/blobs/uploads/", "cut")``: forward half of the body upstream, then close both
  connections without an answer (a connection cut midway through an upload).

The ``Host`` header is forwarded unchanged, so the registry's ``Location`` URLs point at the proxy.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.processes import stop_server

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


@dataclass
class Fault:
    method: str
    path_contains: str
    action: str  # "503" or "cut"
    used: bool = False


@dataclass
class FaultProxy:
    upstream_port: int
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                proxy.handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.lock = threading.Lock()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        stop_server(self.server)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not fault.used and fault.method == method and fault.path_contains in path:
                    fault.used = True
                    return fault
        return None

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        fault = self._fault(req.command, req.path)
        headers = [(k, v) for k, v in req.headers.items() if k.lower() not in _HOP]  # repeated headers kept
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        if fault is not None and fault.action == "503":
            req.rfile.read(length)
            self.log.append((req.command, req.path, 503))
            req.send_response(503)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        if fault is not None and fault.action == "cut":
            half = req.rfile.read(length // 2)
            upstream.putrequest(req.command, req.path, skip_host=True, skip_accept_encoding=True)
            for key, value in headers:
                upstream.putheader(key, value)
            upstream.endheaders()
            upstream.send(half)
            upstream.close()
            self.log.append((req.command, req.path, -1))
            req.close_connection = True
            req.connection.shutdown(2)
            return
        body = req.rfile.read(length) if length else b""
        upstream.putrequest(req.command, req.path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers:
            upstream.putheader(key, value)
        try:
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):  # the client went away mid-request
            self.log.append((req.command, req.path, -2))
            req.close_connection = True
            return
        finally:
            upstream.close()
        self.log.append((req.command, req.path, response.status))
        req.send_response_only(response.status)
        for key, value in response.getheaders():
            if key.lower() not in _HOP and key.lower() != "content-length":
                req.send_header(key, value)
        req.send_header("Content-Length", str(response.getheader("Content-Length") or len(data)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)
