"""Which key verifies a token, and which issuer and audience it must name.

HS256 tokens are verified with the shared secret (``BETTER_AUTH_SECRET``).
Tokens from Better Auth's ``jwt()`` plugin (EdDSA by default; ES256 and
RS256 also allowed) are verified with the public key their ``kid`` names in
the JWKS at ``JWT_JWKS_URL``. The key is chosen from the algorithm, never the
other way round: an HS256 token is never checked against a public key, so
the public key cannot be used as an HMAC secret (algorithm confusion).
"""

from __future__ import annotations

from flask import Flask, current_app
from jwt import InvalidTokenError, PyJWKClient, PyJWKClientConnectionError, PyJWTError

from .config import JWKS_ALGORITHMS, SHARED_SECRET_ALGORITHMS

JWKS_CACHE_SECONDS = 600


def init_keys(app: Flask) -> None:
    """The JWKS client for ``JWT_JWKS_URL``, if one is configured."""
    url = app.config.get("JWT_JWKS_URL")
    client = None
    if url:
        client = PyJWKClient(
            url,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=app.config["JWT_JWKS_TIMEOUT"],
            cooldown_duration=app.config["JWT_JWKS_REFRESH_COOLDOWN"],
        )
    app.extensions["taskapi.jwks"] = client


def decode_key(header: dict, _payload: dict):
    """flask-jwt-extended's decode key loader."""
    algorithm = header.get("alg")
    if algorithm in SHARED_SECRET_ALGORITHMS:
        return current_app.config["JWT_SECRET_KEY"]
    client: PyJWKClient | None = current_app.extensions["taskapi.jwks"]
    kid = header.get("kid")
    if client is None or algorithm not in JWKS_ALGORITHMS or not isinstance(kid, str):
        raise InvalidTokenError("No key for this token.")
    try:
        jwk = client.get_signing_key(kid)
    except PyJWKClientConnectionError as error:
        current_app.logger.warning("JWKS unreachable at %s: %s", client.uri, type(error).__name__)
        raise InvalidTokenError("The signing keys cannot be fetched.") from None
    except PyJWTError:
        raise InvalidTokenError("Unknown signing key.") from None
    if jwk.algorithm_name != algorithm:
        raise InvalidTokenError("The algorithm does not match the key.")
    return jwk.key


def expected_issuer_and_audience(header: dict) -> tuple[str | None, str | None]:
    """Explicit JWT_ISSUER/JWT_AUDIENCE apply to every token; JWKS tokens
    default to the Better Auth URL, which is what Better Auth puts in both."""
    config = current_app.config
    issuer, audience = config.get("JWT_ISSUER"), config.get("JWT_AUDIENCE")
    if header.get("alg") in JWKS_ALGORITHMS:
        issuer = issuer or config.get("BETTER_AUTH_URL")
        audience = audience or config.get("BETTER_AUTH_URL")
    return issuer, audience


def has_expected_issuer_and_audience(header: dict, claims: dict) -> bool:
    issuer, audience = expected_issuer_and_audience(header)
    if issuer and claims.get("iss") != issuer:
        return False
    if audience:
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or audience not in audiences:
            return False
    return True
