"""A stand-in Web Push service on loopback: HTTPS with a CA of its own, checking
every push as a vendor's service and a browser would.

``PushService(folder)`` writes a fresh CA (``ca_file``: what the dispatcher
must trust, through ``SSL_CERT_FILE``) and serves
``https://127.0.0.1:<port>/push/<token>``. ``subscribe()`` plays a browser's
``pushManager.subscribe``: a new P-256 key pair and auth secret, and the
``toJSON()`` to hand to the API. Each push is checked: the VAPID
``Authorization: vapid t=<JWT>, k=<key>`` (ES256 signature by ``k``, ``k`` the
server's public key when ``vapid_key`` is given, ``aud`` this origin, ``exp``
in the future and within 24 h, ``sub`` a mailto: or https: URL), a ``TTL``,
``Content-Encoding: aes128gcm``, and the body decrypted (RFC 8291) with the
subscription's private key and auth secret. A push that fails a check is
answered 400/401/403 and listed in ``problems``; one that passes is kept in
``pushes`` with its decrypted JSON.

A subscription can be told how to answer (``answer(endpoint, ...)``): a
status with headers (410, 429 with Retry-After, 500, a redirect), after a
delay, or no answer at all (the connection hangs until ``release()``, then
closes); a trickled answer (a byte at a time, each within any read
timeout), or a body longer than it should be, stalled after its first bytes.
Never imported by the app.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import http_ece
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from taskapi.config import b64url_decode, b64url_encode

VAPID_AUTHORIZATION = re.compile(r"vapid\s+(.*)", re.IGNORECASE)
MAX_VAPID_LIFETIME = 24 * 3600


def write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate it signed for 127.0.0.1 and localhost: (ca, cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taskapi test push CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class BrowserKeys:
    """A browser's side of one subscription: what it keeps, and what it shares (toJSON)."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def to_json(self, endpoint: str) -> dict:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(self.auth_secret)},
        }


@dataclass
class Answer:
    status: int = 201
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    body: int = 0  # bytes of body sent (b"x" each)
    length: int | None = None  # the Content-Length announced, when more than ``body``
    trickle: float = 0.0  # the whole answer a byte at a time, this many seconds apart


@dataclass
class Received:
    """One push that passed every check."""

    token: str
    payload: dict
    headers: dict
    claims: dict
    at: float


class PushService:
    """The stand-in service (see the module docstring); ``stop()`` when done."""

    def __init__(self, folder: Path, vapid_key: str | None = None):
        self.ca_file, cert_file, key_file = write_certificates(folder)
        self.vapid_key = vapid_key
        self.lock = threading.Lock()
        self.browsers: dict[str, BrowserKeys] = {}
        self.answers: dict[str, list[Answer]] = {}
        self.pushes: list[Received] = []
        self.problems: list[str] = []
        self.arrivals: list[tuple[str, float]] = []  # every request, checked or not
        self.released = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as vendors' services
            disable_nagle_algorithm = True  # headers and body leave at once

            def do_POST(self):
                service.handle(self)

            def do_GET(self):
                self.reply(405)

            def reply(self, status: int, headers: dict | None = None):
                body = b"" if status < 300 else f"{status}\n".encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        # The handshake happens in the request's thread, not in the accepting one.
        self.httpd.socket = context.wrap_socket(
            self.httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.origin = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    # What tests use.

    def subscribe(self) -> dict:
        """A new subscription, as ``PushSubscription.toJSON()`` gives it."""
        token = secrets.token_urlsafe(24)
        keys = BrowserKeys()
        with self.lock:
            self.browsers[token] = keys
        return keys.to_json(f"{self.origin}/push/{token}")

    def answer(self, endpoint: str, *answers: Answer) -> None:
        """Answer the next pushes to ``endpoint`` so, in order; then 201 again."""
        with self.lock:
            self.answers[token_of(endpoint)] = list(answers)

    def release(self) -> None:
        """Let every hanging request answer (and no later one hang)."""
        self.released.set()

    def received(self, endpoint: str | None = None) -> list[Received]:
        with self.lock:
            pushes = list(self.pushes)
        if endpoint is None:
            return pushes
        return [push for push in pushes if push.token == token_of(endpoint)]

    def wait_for(self, count: int, timeout: float, endpoint: str | None = None) -> list[Received]:
        """Until at least ``count`` pushes arrived (to ``endpoint``), or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while len(self.received(endpoint)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received(endpoint)

    def stop(self) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()

    # Serving.

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        token = request.path.removeprefix("/push/")
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        if len(body) < length:  # the sender went away mid-request (killed): nothing arrived
            request.close_connection = True
            return
        with self.lock:
            self.arrivals.append((token, time.time()))
            keys = self.browsers.get(token) if request.path.startswith("/push/") else None
            queued = self.answers.get(token)
            answer = queued.pop(0) if queued else Answer()
        if keys is None:
            request.reply(404)
            return
        try:
            claims = self.check_vapid(request.headers.get("Authorization", ""))
            payload = self.decrypt(request.headers, body, keys)
        except PushRefused as refused:
            with self.lock:
                self.problems.append(refused.reason)
            request.reply(refused.status)
            return
        if answer.hang:  # never answers: after release() the connection just closes
            self.released.wait()
            request.close_connection = True
            return
        time.sleep(answer.delay)
        if answer.status < 300:
            headers = {name.lower(): value for name, value in request.headers.items()}
            with self.lock:
                self.pushes.append(Received(token, payload, headers, claims, time.time()))
        if answer.body or answer.length or answer.trickle:
            self.reply_slowly(request, answer)
        else:
            request.reply(answer.status, answer.headers)

    def reply_slowly(self, request: BaseHTTPRequestHandler, answer: Answer) -> None:
        """An answer trickled a byte at a time, or longer than it announces and then
        stalled (until ``release()``), until the sender gives up and goes away."""
        length = max(answer.body, answer.length or 0)
        head = f"HTTP/1.1 {answer.status} Answer\r\nContent-Length: {length}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in answer.headers.items())
        data = (head + "\r\n").encode() + b"x" * answer.body
        request.close_connection = True
        try:
            if answer.trickle:
                for index in range(len(data)):
                    if self.released.is_set():
                        return
                    request.wfile.write(data[index : index + 1])
                    time.sleep(answer.trickle)
            else:
                request.wfile.write(data)
            if length > answer.body:
                self.released.wait()
        except OSError:  # the sender gave up and closed the connection
            pass

    def check_vapid(self, authorization: str) -> dict:
        match = VAPID_AUTHORIZATION.fullmatch(authorization.strip())
        if not match:
            raise PushRefused(401, f"no vapid Authorization: {authorization[:20]!r}")
        parameters = dict(
            part.strip().split("=", 1) for part in match.group(1).split(",") if "=" in part
        )
        if "t" not in parameters or "k" not in parameters:
            raise PushRefused(401, "vapid Authorization without t and k")
        if self.vapid_key is not None and parameters["k"] != self.vapid_key:
            raise PushRefused(403, "k is not the server's public key")
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(parameters["k"])
        )
        try:
            header = jwt.get_unverified_header(parameters["t"])
            claims = jwt.decode(
                parameters["t"],
                public_key,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise PushRefused(403, f"VAPID JWT refused: {type(error).__name__}: {error}") from None
        if header.get("typ", "JWT").upper() != "JWT":
            raise PushRefused(403, f"VAPID JWT typ {header.get('typ')!r}")
        if claims["exp"] > time.time() + MAX_VAPID_LIFETIME:
            raise PushRefused(403, "VAPID exp more than 24 hours ahead")
        if not re.fullmatch(r"mailto:\S+@\S+|https://\S+", str(claims["sub"])):
            raise PushRefused(403, f"VAPID sub {claims['sub']!r}")
        return claims

    def decrypt(self, headers, body: bytes, keys: BrowserKeys) -> dict:
        ttl = headers.get("TTL", "")
        if not (ttl.isascii() and ttl.isdigit()):
            raise PushRefused(400, f"TTL header {ttl!r}")
        if headers.get("Content-Encoding") != "aes128gcm":
            raise PushRefused(400, f"Content-Encoding {headers.get('Content-Encoding')!r}")
        if headers.get("Urgency") not in (None, "very-low", "low", "normal", "high"):
            raise PushRefused(400, f"Urgency {headers.get('Urgency')!r}")
        try:
            plaintext = http_ece.decrypt(
                body,
                private_key=keys.private_key,
                auth_secret=keys.auth_secret,
                version="aes128gcm",
            )
            return json.loads(plaintext)
        except Exception as error:  # what a browser would do: drop the push
            raise PushRefused(400, f"payload does not decrypt: {type(error).__name__}") from None


class PushRefused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def token_of(endpoint: str) -> str:
    return endpoint.rsplit("/push/", 1)[-1]
