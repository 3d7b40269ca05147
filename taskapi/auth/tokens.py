"""Bearer-token authentication: the decorator every per-user view wears.

The ``Authorization`` header must be exactly ``Bearer <token>`` (the scheme
in any letter case, one space, nothing after the token). flask-jwt-extended
decodes the token (its key chosen by ``taskapi.auth.jwks``); this module adds what
the contract asks on top: required claims, the user id in the URL matching
the token's, and a 401 problem+json for every failure. Why a token was
refused goes to the log at DEBUG (never the token itself).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from functools import wraps
from typing import NoReturn

from flask import Flask, Response, abort, current_app, g, request
from flask_jwt_extended import decode_token, get_unverified_jwt_headers
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError

from ..config import SHARED_SECRET_ALGORITHMS
from ..data.models import USER_ID_MAX_LENGTH
from ..errors import problem, service_unavailable
from ..extensions import jwt
from .caches import BoundedCache
from .jwks import KeysUnavailable, decode_key, init_keys, issuer_or_audience_problem

# Better Auth ids are alphanumeric; other providers use UUIDs or "provider|id".
USER_ID_PATTERN = re.compile(rf"[A-Za-z0-9._~:@|+=-]{{1,{USER_ID_MAX_LENGTH}}}")
# RFC 6750's b64token after a case-insensitive "Bearer" and one space.
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9._~+/-]+=*)")
VERIFIED_TOKENS_LIMIT = 10_000
# Better Auth's tokens are under 1 KB; anything this big is not one of them.
AUTHORIZATION_MAX_LENGTH = 4096
USED_HEADER_FIELDS = ("alg", "kid")

log = logging.getLogger("taskapi.auth")


def auth_required(view):
    """Require a valid bearer token (401) whose user id is the URL's ``user_id`` (403).

    A URL whose user id no token could carry (``..``, say) is no route: 404.
    The view then finds the user id in ``g.user_id`` and the claims in ``get_jwt()``.
    """

    @wraps(view)
    def wrapper(*args, user_id: str, **kwargs):
        if not is_valid_user_id(user_id):
            abort(404)
        claims = verified_claims()
        if claims[current_app.config["JWT_IDENTITY_CLAIM"]] != user_id:
            abort(403, "The access token does not grant access to this user's tasks.")
        g.user_id = user_id
        return view(*args, user_id=user_id, **kwargs)

    wrapper.requires_token = True  # the OpenAPI document marks such views as secured
    return wrapper


def verified_claims() -> dict:
    """The claims of the request's token, verified: the ones the app uses.

    A frontend sends the same token on every call until it expires, so an
    HS256 token that passed once is remembered until its ``exp``. That is safe
    because verifying the same bytes again can only give the same answer: the
    secret does not change while the process runs, ``nbf`` has passed, ``exp``
    is checked on every hit, and no token is ever revoked (there is no
    blocklist; one would have to be consulted here). JWKS tokens are always
    verified, because their keys can be withdrawn. Either way the request
    gets the same: the header's ``alg`` and ``kid``, and the used claims.
    """
    token = bearer_token()
    verified: BoundedCache = current_app.extensions["taskapi.verified_tokens"]
    key = hashlib.sha256(token.encode()).digest()  # 32 bytes, however long the token
    remembered = verified.get(key)
    if remembered is None or remembered[1]["exp"] <= time.time():
        header, claims = verify(token)
        remembered = (
            {name: header[name] for name in USED_HEADER_FIELDS if name in header},
            {name: claims[name] for name in used_claims() if name in claims},
        )
        if header.get("alg") in SHARED_SECRET_ALGORITHMS:
            verified.put(key, remembered)
    header, claims = dict(remembered[0]), dict(remembered[1])  # the request's own copies
    set_request_claims(header, claims)
    return claims


def used_claims() -> tuple[str, ...]:
    """The identity, ``exp``, and the ``email`` and ``name`` that users.py stores."""
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
        claims = decode_token(token)  # signature, exp, nbf, iat, sub a string
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
    """What the contract requires of a token's claims beyond PyJWT's checks, or None."""
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


def set_request_claims(header: dict, claims: dict) -> None:
    """What ``verify_jwt_in_request`` would leave for ``get_jwt()`` and friends.

    flask-jwt-extended keeps them on ``g`` under these names (4.x); a test
    checks that ``get_jwt()`` answers the same on both paths.
    """
    g._jwt_extended_jwt = claims
    g._jwt_extended_jwt_header = header
    g._jwt_extended_jwt_user = None  # no user_lookup_loader: what flask-jwt-extended leaves
    g._jwt_extended_jwt_location = "headers"


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
    """Responses to requests with credentials stay out of shared caches (contract 6)."""
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
