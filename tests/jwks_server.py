"""A real JWKS endpoint on loopback, like Better Auth's ``/api/auth/jwks``."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm


class SigningKey:
    """An Ed25519 key pair with a kid, signing tokens the way Better Auth does."""

    def __init__(self, kid: str):
        self.kid = kid
        self.private_key = Ed25519PrivateKey.generate()

    def jwk(self) -> dict:
        # Better Auth publishes OKP keys without "alg".
        return OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True) | {"kid": self.kid}

    def sign(self, claims: dict, **header) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid} | header
        )


class JWKSServer:
    """Serves ``keys`` at /api/auth/jwks; can be slowed down or stopped."""

    def __init__(self):
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                time.sleep(server.delay)
                if self.path != "/api/auth/jwks":
                    self.send_error(404)
                    return
                body = json.dumps({"keys": [key.jwk() for key in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a deliberately hanging request must not block stop()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
