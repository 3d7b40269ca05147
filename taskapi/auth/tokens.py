"""Bearer tokens: the ``Authorization`` header, the token's signature and claims, and
whose tasks they open (401/403 problem+json; why a token was refused is logged at DEBUG).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import NamedTuple, NoReturn

import flask_jwt_extended
from flask import Flask, Response, abort, current_app, g, request
from flask_jwt_extended import get_unverified_jwt_headers
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError

from ..config import SHARED_SECRET_ALGORITHMS
from ..data.models import USER_ID_MAX_LENGTH
from ..errors import problem, service_unavailable
from ..extensions import jwt
from .caches import BoundedCache
from .jwks import KeysUnavailable, decode_key, init_keys, issuer_or_audience_problem
from .jwt_extended_state import set_request_token

# Better Auth ids are alphanumeric; other providers use UUIDs or "provider|id".
USER_ID_PATTERN = re.compile(rf"[A-Za-z0-9._~:@|+=-]{{1,{USER_ID_MAX_LENGTH}}}")
# RFC 6750's b64token after a case-insensitive "Bearer" and one space.
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9._~+/-]+=*)")
VERIFIED_TOKENS_LIMIT = 10_000
# Better Auth's tokens are under 1 KB; anything this big is not one of them.
AUTHORIZATION_MAX_LENGTH = 4096
USED_HEADER_FIELDS = ("alg", "kid")

log = logging.getLogger("taskapi.auth")


class VerifiedToken(NamedTuple):
    """What the app keeps of a token that passed: the header fields and claims it uses."""

    header: dict
    claims: dict


def authorize(user_id: str) -> dict:
    """The verified claims of the request's token, which must be ``user_id``'s.

    404 for a URL user id no token could carry (``..``, say), 401 for a
    missing or invalid token, 403 for another user's. Leaves the user id in
    ``g.user_id`` (the access log's) and the claims for ``get_jwt()``.
    """
    if not is_valid_user_id(user_id):
        abort(404)
    claims = verified_claims()
    if claims[current_app.config["JWT_IDENTITY_CLAIM"]] != user_id:
        abort(403, "The access token does not grant access to this user's tasks.")
    g.user_id = user_id
    return claims


def verified_claims() -> dict:
    """The used claims of the request's token, verified; 401 (or 503) if it fails.

    An HS256 token that passed is remembered until its ``exp`` (why that is
    safe: docs/design.md, "Verifying tokens and fetching keys"); JWKS tokens
    are verified every time. Either way the request gets the same header
    fields and claims, its own copies.
    """
    token = bearer_token()
    verified: BoundedCache = current_app.extensions["taskapi.verified_tokens"]
    key = hashlib.sha256(token.encode()).digest()  # 32 bytes, however long the token
    remembered: VerifiedToken | None = verified.get(key)
    if remembered is None or remembered.claims["exp"] <= time.time():
        header, claims = verify(token)
        remembered = VerifiedToken(
            header={name: header[name] for name in USED_HEADER_FIELDS if name in header},
            claims={name: claims[name] for name in used_claims() if name in claims},
        )
        if header.get("alg") in SHARED_SECRET_ALGORITHMS:
            verified.put(key, remembered)
    header, claims = dict(remembered.header), dict(remembered.claims)
    set_request_token(header, claims)
    return claims


def used_claims() -> tuple[str, ...]:
    """The identity, ``exp``, and the ``email`` and ``name`` that provisioning stores."""
    return (current_app.config["JWT_IDENTITY_CLAIM"], "exp", "email", "name")


def bearer_token() -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 for anything else."""
    header = request.headers.get("Authorization")
    if header is None:
        abort(unauthorized("An 'Authorization: Bearer <token>' header is required.", sent=False))
    if len(header) > AUTHORIZATION_MAX_LENGTH:
        reject("the Authorization header is over 4 KB", "The access token is too large.")
    match = BEARER.fullmatch(header)
    if match is None:
        detail = "The Authorization header must be 'Bearer <token>', and nothing else."
        if not header[:7].lower().startswith("bearer"):
            abort(unauthorized(detail, sent=False))  # another scheme: no bearer token sent
        reject("the Authorization header is not 'Bearer <token>'", detail)
    return match.group(1)


def verify(token: str) -> tuple[dict, dict]:
    """The token's header and claims, if it passes every check; else 401 (or 503)."""
    try:
        # flask-jwt-extended's decode: signature (key from decode_key), exp, nbf, iat, sub a string.
        claims = flask_jwt_extended.decode_token(token)
        header = get_unverified_jwt_headers(token)
    except KeysUnavailable as error:
        detail = "The identity provider's signing keys cannot be fetched; try again shortly."
        abort(service_unavailable(detail, error.retry_after))
    except ExpiredSignatureError:
        reject("exp: the token has expired", "The access token has expired.")
    except (PyJWTError, JWTExtendedException) as error:
        reject(f"{type(error).__name__}: {error}")
    reason = claims_problem(header, claims)
    if reason:
        reject(reason)
    return header, claims


def claims_problem(header: dict, claims: dict) -> str | None:
    """What a token's claims must be beyond PyJWT's checks (docs/api.md, "Errors"), or None."""
    identity_claim = current_app.config["JWT_IDENTITY_CLAIM"]
    if claims.get("type") != "access":
        return "type: not an access token"
    # PyJWT also takes numeric strings in time claims; RFC 7519 does not.
    if not is_number(claims.get("exp")):
        return "exp: missing or not a number"
    for claim in ("nbf", "iat"):
        if claim in claims and not is_number(claims[claim]):
            return f"{claim}: not a number"
    if not is_valid_user_id(claims.get(identity_claim)):
        return f"{identity_claim}: not a usable user id"
    return issuer_or_audience_problem(header, claims)


def reject(reason: str, detail: str = "The access token is invalid.") -> NoReturn:
    """401 for the client; which check failed goes to the log, for whoever debugs it."""
    log.debug("access token rejected: %s", reason)
    abort(unauthorized(detail, sent=True))


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_valid_user_id(value: object) -> bool:
    """A string of the allowed characters, not made of dots alone (``/api/../tasks``)."""
    return (
        isinstance(value, str)
        and USER_ID_PATTERN.fullmatch(value) is not None
        and value.strip(".") != ""
    )


def unauthorized(detail: str, *, sent: bool) -> Response:
    challenge = 'Bearer error="invalid_token"' if sent else "Bearer"
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def no_store(response: Response) -> Response:
    """Responses to requests with credentials stay out of shared caches (docs/api.md, "Headers")."""
    if "Authorization" in request.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_auth(app: Flask) -> None:
    """Bind flask-jwt-extended to ``app`` (to decode and issue tokens)."""
    init_keys(app)
    app.extensions["taskapi.verified_tokens"] = BoundedCache(VERIFIED_TOKENS_LIMIT)
    jwt.init_app(app)
    jwt.decode_key_loader(decode_key)
    app.after_request(no_store)
