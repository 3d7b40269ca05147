"""VAPID keys (RFC 8292): the key pair that identifies this server to push services.

``VAPID_PRIVATE_KEY`` is the raw 32-byte P-256 private key, base64url, as
``web-push generate-vapid-keys`` (and ``flask --app taskapi vapid-keys``)
prints it; the public key, which browsers receive from ``GET /api/push/key``,
is derived from it. Only ``cryptography`` is used here, so the web workers
can answer that request without loading the sending side's libraries.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

PRIVATE_KEY_BYTES = 32
BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
DEVELOPMENT_KEY_FILE = "vapid-private-key"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Strict base64url, padded or not; ValueError for anything else (the standard
    library would skip characters outside the alphabet)."""
    if not isinstance(text, str) or not BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    unpadded = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def private_key_from(raw: str) -> ec.EllipticCurvePrivateKey:
    """The key ``VAPID_PRIVATE_KEY`` holds; ValueError when it holds none."""
    value = b64url_decode(raw.strip())
    if len(value) != PRIVATE_KEY_BYTES:
        raise ValueError("not 32 bytes")
    return ec.derive_private_key(int.from_bytes(value, "big"), ec.SECP256R1())  # 0 or >= n: error


def public_key_of(raw_private_key: str) -> str:
    """The public key for ``raw_private_key``: an uncompressed P-256 point, base64url."""
    public_key = private_key_from(raw_private_key).public_key()
    return b64url_encode(
        public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def generate_private_key() -> str:
    """A new raw private key, base64url."""
    private_value = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return b64url_encode(private_value.to_bytes(PRIVATE_KEY_BYTES, "big"))


def development_key(instance_path: str) -> str:
    """A private key kept in the instance folder (made once), so that development
    works without configuration and browsers' subscriptions survive restarts."""
    path = Path(instance_path) / DEVELOPMENT_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(generate_private_key() + "\n")
    return path.read_text().strip()
