"""Which key verifies a token (the shared secret, or the JWKS key its ``kid`` names),
the JWKS fetched within bounds, and which issuer and audience a token must name.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import socket
import threading
import time
import urllib.parse

from flask import Flask, current_app
from jwt import InvalidTokenError, PyJWK, PyJWTError

from ..config import JWKS_ALGORITHMS, SHARED_SECRET_ALGORITHMS

# Keys are fetched again after this long even when every kid is known, so a
# key withdrawn from the JWKS stops working.
JWKS_CACHE_SECONDS = 600
# Better Auth's JWKS is a few hundred bytes; this is plenty.
JWKS_MAX_BYTES = 256 * 1024
# The kind of key each algorithm verifies with: (kty, allowed curves or None).
KEY_TYPES = {
    "EdDSA": ("OKP", ("Ed25519", "Ed448")),
    "ES256": ("EC", ("P-256",)),
    "ES512": ("EC", ("P-521",)),
    "PS256": ("RSA", None),
    "RS256": ("RSA", None),
}

log = logging.getLogger("taskapi.keys")


class KeysUnavailable(Exception):
    """The JWKS could not be fetched lately; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"JWKS unavailable; retry in {retry_after} s")
        self.retry_after = retry_after


class JWKSFetchError(Exception):
    """The JWKS endpoint did not answer with a usable key set."""


class JWKS:
    """The keys published at ``url``, by kid, fetched when needed.

    The rules (docs/design.md, "Verifying tokens and fetching keys"): a cached
    kid never waits; an unknown kid refetches at most once per refresh
    cooldown; after a failed fetch none is tried for the failure cooldown
    (meanwhile unknown kids get ``KeysUnavailable``, a 503); a fetch ends
    within ``timeout`` whatever the server does.
    """

    def __init__(
        self, url: str, *, timeout: float, refresh_cooldown: float, failure_cooldown: float
    ):
        self.url = url
        self.timeout = timeout
        self.refresh_cooldown = refresh_cooldown
        self.failure_cooldown = failure_cooldown
        self._keys: dict[str, dict] = {}
        self._parsed: dict[tuple[str, str], object] = {}
        self._expires_at = 0.0  # when the fetched set is due for a refresh
        self._last_attempt = -math.inf
        self._retry_at = 0.0  # no fetch before this, after a failure
        self._lock = threading.Lock()  # one fetch at a time per process

    def key(self, kid: str, algorithm: str):
        """The verification key for ``kid`` and ``algorithm``; InvalidTokenError if none.

        Raises ``KeysUnavailable`` when the kid is not cached and fetching fails.
        """
        jwk = self.jwk(kid)
        if jwk is None:
            raise InvalidTokenError("kid: no published key has this kid")
        if not key_fits(jwk, algorithm):
            raise InvalidTokenError("alg: the key with this kid is not for this algorithm")
        parsed = self._parsed.get((kid, algorithm))
        if parsed is None:
            try:
                parsed = PyJWK(jwk, algorithm).key
            except PyJWTError:
                raise InvalidTokenError("kid: the published key cannot be used") from None
            self._parsed[(kid, algorithm)] = parsed
        return parsed

    def jwk(self, kid: str) -> dict | None:
        """The published JWK for ``kid``, or None when the JWKS does not have it."""
        known = self._keys.get(kid)
        if known is not None:
            if time.monotonic() >= self._expires_at:
                self._refresh_in_background()
            return known
        # Waits for a fetch in flight (bounded by its timeout), then looks again.
        if not self._lock.acquire(timeout=self.timeout + 1):
            raise KeysUnavailable(1)
        try:
            return self._refresh_for(kid)
        finally:
            self._lock.release()

    def _refresh_in_background(self) -> None:
        """Fetch the keys again without keeping the request waiting (unless one is in flight)."""
        if not self._lock.acquire(blocking=False):
            return

        def refresh():
            try:
                self._refresh_for(None)
            except KeysUnavailable:
                pass  # logged; the cached keys stay in use
            finally:
                self._lock.release()

        threading.Thread(target=refresh, name="jwks-refresh", daemon=True).start()

    def _refresh_for(self, kid: str | None) -> dict | None:
        """Fetch the keys if the rules allow, and return ``kid``'s (the lock is held)."""
        now = time.monotonic()
        known = self._keys.get(kid) if kid is not None else None
        if known is not None and now < self._expires_at:
            return known  # fetched by another thread meanwhile
        if now < self._retry_at:
            if known is not None or kid is None:
                return known
            raise KeysUnavailable(math.ceil(self._retry_at - now))
        if known is None and kid is not None and now - self._last_attempt < self.refresh_cooldown:
            return None  # refetched a moment ago: this kid is not published
        self._last_attempt = now
        try:
            keys = self.fetch()
        except JWKSFetchError as error:
            # The failure cooldown alone decides when to try again.
            self._retry_at, self._last_attempt = time.monotonic() + self.failure_cooldown, -math.inf
            log.warning(
                "JWKS unreachable at %s: %s; next try in %d s",
                self.url,
                error,
                self.failure_cooldown,
            )
            if known is not None:
                return known
            raise KeysUnavailable(max(1, math.ceil(self.failure_cooldown))) from None
        self._keys, self._parsed = keys, {}
        self._expires_at = time.monotonic() + JWKS_CACHE_SECONDS
        return keys.get(kid)

    def fetch(self) -> dict[str, dict]:
        """GET the JWKS: its signing keys by kid. JWKSFetchError for any failure."""
        try:
            body = get_within(self.url, self.timeout)
            document = json.loads(body)
        except (OSError, http.client.HTTPException) as error:  # refused, timed out, HTTP error
            raise JWKSFetchError(str(error) or type(error).__name__) from None
        except ValueError:  # HTML, say, or not UTF-8
            raise JWKSFetchError("the answer is not JSON") from None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise JWKSFetchError("the answer is not a JWKS")
        return {
            jwk["kid"]: jwk
            for jwk in keys
            if isinstance(jwk, dict)
            and isinstance(jwk.get("kid"), str)
            and jwk.get("use", "sig") == "sig"
        }


def get_within(url: str, seconds: float) -> bytes:
    """The body of a 200 answer to GET ``url``, within ``seconds`` in all.

    A socket timeout limits each read, not the whole: a server that sends a
    byte now and then would hold the fetch for as long as it likes. So a
    watchdog shuts the socket down when the time is up, which ends any read.
    No redirect is followed (one is an error).
    """
    # The URL is the operator's JWT_JWKS_URL, checked to be http(s) at startup.
    parts = urllib.parse.urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=seconds)
    deadline = time.monotonic() + seconds
    try:
        connection.connect()  # within ``seconds``: the socket's timeout
        # The response keeps reading from this socket even after the connection
        # object lets go of it (HTTP/1.0 answers), so the watchdog holds it.
        watchdog = threading.Timer(deadline - time.monotonic(), shut_down, (connection.sock,))
        watchdog.daemon = True
        watchdog.start()
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", path, headers={"Accept": "application/json"})
            with connection.getresponse() as response:
                if response.status != 200:
                    raise OSError(f"HTTP {response.status}")
                body = response.read(JWKS_MAX_BYTES + 1)
        finally:
            watchdog.cancel()
    finally:
        connection.close()
    if time.monotonic() >= deadline:  # the watchdog fired: the body may be cut short
        raise TimeoutError("the JWKS arrived too slowly")
    if len(body) > JWKS_MAX_BYTES:
        raise JWKSFetchError("the JWKS is too large")
    return body


def shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def key_fits(jwk: dict, algorithm: str) -> bool:
    """Whether ``jwk`` can verify ``algorithm`` (its ``alg``, when it names one, must match)."""
    if "alg" in jwk and jwk["alg"] != algorithm:
        return False
    kty, curves = KEY_TYPES[algorithm]
    return jwk.get("kty") == kty and (curves is None or jwk.get("crv") in curves)


def init_keys(app: Flask) -> None:
    """The JWKS for ``JWT_JWKS_URL``, if one is configured."""
    url = app.config.get("JWT_JWKS_URL")
    app.extensions["taskapi.jwks"] = (
        JWKS(
            url,
            timeout=app.config["JWT_JWKS_TIMEOUT"],
            refresh_cooldown=app.config["JWT_JWKS_REFRESH_COOLDOWN"],
            failure_cooldown=app.config["JWT_JWKS_FAILURE_COOLDOWN"],
        )
        if url
        else None
    )


def decode_key(header: dict, _payload: dict):
    """flask-jwt-extended's decode key loader."""
    algorithm = header.get("alg")
    if algorithm in SHARED_SECRET_ALGORITHMS:
        return current_app.config["JWT_SECRET_KEY"]
    jwks: JWKS | None = current_app.extensions["taskapi.jwks"]
    if jwks is None or algorithm not in JWKS_ALGORITHMS:
        raise InvalidTokenError("alg: not an accepted algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidTokenError("kid: missing")
    return jwks.key(kid, algorithm)


def expected_issuer_and_audience(header: dict) -> tuple[str | None, str | None]:
    """Explicit JWT_ISSUER/JWT_AUDIENCE apply to every token; JWKS tokens
    default to the Better Auth URL, which is what Better Auth puts in both."""
    config = current_app.config
    issuer, audience = config.get("JWT_ISSUER"), config.get("JWT_AUDIENCE")
    if header.get("alg") in JWKS_ALGORITHMS:
        issuer = issuer or config.get("BETTER_AUTH_URL")
        audience = audience or config.get("BETTER_AUTH_URL")
    return issuer, audience


def issuer_or_audience_problem(header: dict, claims: dict) -> str | None:
    """What is wrong with the token's ``iss`` or ``aud``, or None."""
    issuer, audience = expected_issuer_and_audience(header)
    if issuer and claims.get("iss") != issuer:
        return "iss: not the expected issuer"
    if audience:
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or audience not in audiences:
            return "aud: not the expected audience"
    return None
