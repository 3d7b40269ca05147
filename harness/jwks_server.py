"""A real JWKS endpoint on loopback, like Better Auth's ``/api/auth/jwks``.

It can rotate keys (replace ``keys``), hang (``delay``), answer HTML
(``html``), send its answer a byte at a time (``trickle``, seconds between
bytes) and count the fetches it served (``fetches``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

# Better Auth's jwt() plugin can sign with each of these (keyPairConfig.alg).
PRIVATE_KEYS = {
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES512": lambda: ec.generate_private_key(ec.SECP521R1()),
    "PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


class QuietServer(ThreadingHTTPServer):
    """Prints no traceback when a client hangs up before its answer is written."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the app gave up on a slow answer, as the tests want: no traceback
        super().handle_error(request, client_address)


class SigningKey:
    """A key pair with a kid, signing tokens the way Better Auth does (EdDSA by default)."""

    def __init__(self, kid: str, algorithm: str = "EdDSA", *, publish_alg: bool = False):
        self.kid = kid
        self.algorithm = algorithm
        self.private_key = PRIVATE_KEYS[algorithm]()
        self.publish_alg = publish_alg

    def jwk(self) -> dict:
        # Better Auth publishes OKP keys without "alg"; publish_alg adds it.
        public_key = self.private_key.public_key()
        jwk = get_default_algorithms()[self.algorithm].to_jwk(public_key, as_dict=True)
        extra = {"alg": self.algorithm} if self.publish_alg else {}
        return jwk | {"kid": self.kid} | extra

    def sign(self, claims: dict, **header) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=self.algorithm, headers={"kid": self.kid} | header
        )


class JWKSServer:
    """Serves ``keys`` at /api/auth/jwks; can be slowed down, broken or stopped."""

    def __init__(self):
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.delay = 0.0
        self.html = False  # answer 200 with an HTML page, as a misrouted proxy would
        self.trickle = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                time.sleep(server.delay)
                if self.path != "/api/auth/jwks":
                    self.send_error(404)
                    return
                if server.html:
                    body, content_type = b"<!doctype html><h1>Welcome</h1>", "text/html"
                else:
                    body = json.dumps({"keys": [key.jwk() for key in server.keys]}).encode()
                    content_type = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not server.trickle:
                    self.wfile.write(body)
                    return
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(server.trickle)

            def log_message(self, *args):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a deliberately hanging request must not block stop()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.jwks_url = f"{self.url}/api/auth/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
