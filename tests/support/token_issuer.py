"""A small bearer-token issuer (distribution ``token.md``) for the registry's ``auth.token`` config.

Tokens are JWTs signed RS256 with a self-signed certificate (sent in the ``x5c`` header; the
registry trusts it through ``rootcertbundle``). It grants what each scope asks for, to the users it
knows, except that ``withhold_push[repo] = N`` leaves ``push`` out of the first N tokens for that
repository, so a client has to re-authenticate after the registry answers ``insufficient_scope``.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from support.processes import stop_server

ISSUER = "pyoci-test-issuer"
SERVICE = "pyoci-test-registry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    users: dict[str, str]
    workdir: Path
    withhold_push: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path = self.workdir / "issuer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                status, body = issuer.answer(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def registry_auth(self) -> str:
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.cert_path}\n"
        )

    def stop(self) -> None:
        stop_server(self.server)

    def answer(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        query = parse_qs(urlparse(path).query)
        user = ""
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if self.users.get(user) != password:
                self.requests.append({"user": user, "refused": True})
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
        elif self.users:
            self.requests.append({"user": "", "refused": True})
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]}
        access = []
        with self.lock:
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")[0], ":".join(scope.split(":")[1:-1]), scope.split(":")[-1]
                granted = actions.split(",")
                if self.withhold_push.get(name, 0) > 0 and "push" in granted:
                    self.withhold_push[name] -= 1
                    granted = [a for a in granted if a != "push"]
                access.append({"type": kind, "name": name, "actions": granted})
            self.requests.append({"user": user, "scopes": query.get("scope", []), "access": access})
        token = self.sign(user, access)
        self.issued.append(token)
        return 200, {"token": token, "access_token": token, "expires_in": 300}

    def sign(self, subject: str, access: list[dict[str, Any]]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"
