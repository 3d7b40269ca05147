"""Which key verifies a token, and which issuer and audience it must name.

HS256 tokens are verified with the shared secret (``BETTER_AUTH_SECRET``).
Tokens from Better Auth's ``jwt()`` plugin (EdDSA by default; ES256, ES512,
PS256 and RS256 also allowed) are verified with the public key their ``kid``
names in the JWKS at ``JWT_JWKS_URL``. The key is chosen from the algorithm,
never the other way round: an HS256 token is never checked against a public
key, so the public key cannot be used as an HMAC secret (algorithm confusion).

The JWKS is fetched here rather than by PyJWT's ``PyJWKClient``, which holds
its lock through a hanging fetch, has no pause after a failed one and lets a
non-JSON answer escape as an exception. The rules (contract section 6):

- a cached ``kid`` never waits for the network;
- an unknown ``kid`` refetches at most once per ``JWT_JWKS_REFRESH_COOLDOWN``
  (1 s), so a key Better Auth just rotated in works within about a second;
- after a failed fetch (unreachable, timeout, HTTP error, not a JWKS) none is
  tried for ``JWT_JWKS_FAILURE_COOLDOWN`` (30 s); meanwhile tokens with an
  unknown ``kid`` get 503 with ``Retry-After`` (``KeysUnavailable``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.request
from http.client import HTTPException

from flask import Flask, current_app
from jwt import InvalidTokenError, PyJWK, PyJWTError

from .config import JWKS_ALGORITHMS, SHARED_SECRET_ALGORITHMS

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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args, **_kwargs):
        return None  # a redirect is an HTTP error, not a fetch from elsewhere


class JWKS:
    """The keys published at ``url``, by kid, fetched when needed (see the module's rules)."""

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
        if known is not None and time.monotonic() < self._expires_at:
            return known
        # A known kid never waits for another thread's fetch: it uses the cached key.
        if not self._lock.acquire(blocking=known is None):
            return known
        try:
            return self._refresh_for(kid)
        finally:
            self._lock.release()

    def _refresh_for(self, kid: str) -> dict | None:
        now = time.monotonic()
        known = self._keys.get(kid)
        if known is not None and now < self._expires_at:
            return known  # fetched by another thread meanwhile
        if now < self._retry_at:
            if known is not None:
                return known
            raise KeysUnavailable(math.ceil(self._retry_at - now))
        if known is None and now - self._last_attempt < self.refresh_cooldown:
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
        # The URL is the operator's JWT_JWKS_URL, checked to be http(s) at startup.
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310
        deadline = time.monotonic() + self.timeout
        try:
            with urllib.request.build_opener(_NoRedirects).open(
                request, timeout=self.timeout
            ) as response:
                body = read_before(response, deadline)
            document = json.loads(body)
        except (OSError, HTTPException) as error:  # refused, timed out, HTTP 4xx/5xx
            raise JWKSFetchError(type(error).__name__) from None
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


def read_before(response, deadline: float) -> bytes:
    """The body, read in pieces so that a server trickling bytes cannot hold us past
    ``deadline`` (socket timeouts apply to each read, not the whole)."""
    body = b""
    while chunk := response.read(16 * 1024):
        body += chunk
        if len(body) > JWKS_MAX_BYTES:
            raise ValueError("the JWKS is too large")
        if time.monotonic() > deadline:
            raise TimeoutError("the JWKS arrived too slowly")
    return body


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
