"""Bearer-token authentication: the decorator every per-user view wears.

flask-jwt-extended verifies the token (its key chosen by ``taskapi.keys``);
this module adds what the contract asks on top: required claims, the user id
in the URL matching the token's, and a 401 problem+json for every failure.
"""

from __future__ import annotations

import re
from functools import wraps

from flask import Flask, abort, current_app, g, request
from flask_jwt_extended import get_jwt, get_jwt_header, verify_jwt_in_request

from .config import SHARED_SECRET_ALGORITHMS
from .errors import problem
from .extensions import jwt
from .keys import decode_key, has_expected_issuer_and_audience, init_keys
from .models import USER_ID_MAX_LENGTH
from .token_cache import VerifiedTokens

# Better Auth ids are alphanumeric; other providers use UUIDs or "provider|id".
USER_ID_PATTERN = re.compile(rf"[A-Za-z0-9._~:@|+=-]{{1,{USER_ID_MAX_LENGTH}}}")
VERIFIED_TOKENS_LIMIT = 10_000
# Better Auth's tokens are under 1 KB; anything this big is not one of them.
AUTHORIZATION_MAX_LENGTH = 4096
# The claims the app uses; a remembered token keeps only these.
USED_CLAIMS = ("exp", "email", "name")


def auth_required(view):
    """Require a valid bearer token (401) whose user id is the URL's ``user_id`` (403).

    The view then finds the user id in ``g.user_id`` and the claims in ``get_jwt()``.
    """

    @wraps(view)
    def wrapper(*args, user_id: str, **kwargs):
        claims = verified_claims()
        if claims[current_app.config["JWT_IDENTITY_CLAIM"]] != user_id:
            abort(403, "The access token does not grant access to this user's tasks.")
        g.user_id = user_id
        return view(*args, user_id=user_id, **kwargs)

    wrapper.requires_token = True  # the OpenAPI document marks such views as secured
    return wrapper


def verified_claims() -> dict:
    """The claims of the request's token, verified by flask-jwt-extended.

    A frontend sends the same token on every call until it expires, so an
    HS256 token that passed once is remembered until its ``exp``. That is safe
    because verifying the same bytes again can only give the same answer: the
    secret does not change while the process runs, ``nbf`` has passed, ``exp``
    is checked on every hit, and no token is ever revoked (there is no
    blocklist; one would have to be consulted here). JWKS tokens are always
    verified, because their keys can be withdrawn.
    """
    header = request.headers.get("Authorization")
    if header is not None and len(header) > AUTHORIZATION_MAX_LENGTH:
        abort(unauthorized("The access token is too large.", token_sent=True))
    verified: VerifiedTokens = current_app.extensions["taskapi.verified_tokens"]
    claims = verified.get(header) if header else None
    if claims is not None:
        set_request_claims({"alg": SHARED_SECRET_ALGORITHMS[0]}, claims)
        return claims
    verify_jwt_in_request()
    claims = get_jwt()
    if get_jwt_header().get("alg") in SHARED_SECRET_ALGORITHMS:
        identity_claim = current_app.config["JWT_IDENTITY_CLAIM"]
        used = (identity_claim, *USED_CLAIMS)
        verified.put(header, {name: claims[name] for name in used if name in claims})
    return claims


def set_request_claims(header: dict, claims: dict) -> None:
    """What ``verify_jwt_in_request`` leaves for ``get_jwt()`` and friends.

    flask-jwt-extended keeps them on ``g`` under these names (4.x); a test
    checks that ``get_jwt()`` answers the same on both paths.
    """
    g._jwt_extended_jwt = claims
    g._jwt_extended_jwt_header = header
    g._jwt_extended_jwt_user = {"loaded_user": None}
    g._jwt_extended_jwt_location = "headers"


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_valid_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID_PATTERN.fullmatch(value) is not None


def unauthorized(detail: str, *, token_sent: bool):
    challenge = 'Bearer error="invalid_token"' if token_sent else "Bearer"
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def has_required_claims(header: dict, data: dict) -> bool:
    """flask-jwt-extended's token verification loader."""
    identity = data.get(current_app.config["JWT_IDENTITY_CLAIM"])
    return (
        is_number(data.get("exp"))
        # PyJWT also takes numeric strings in time claims; RFC 7519 does not.
        and all(is_number(data[claim]) for claim in ("nbf", "iat") if claim in data)
        and is_valid_user_id(identity)
        and has_expected_issuer_and_audience(header, data)
    )


def invalid_token(*_args):
    return unauthorized("The access token is invalid.", token_sent=True)


def missing_token(_reason):
    return unauthorized("An 'Authorization: Bearer <token>' header is required.", token_sent=False)


def expired_token(_header, _data):
    return unauthorized("The access token has expired.", token_sent=True)


def init_auth(app: Flask) -> None:
    """Bind flask-jwt-extended to ``app``; every failure becomes a 401 problem (not 422)."""
    init_keys(app)
    app.extensions["taskapi.verified_tokens"] = VerifiedTokens(VERIFIED_TOKENS_LIMIT)
    jwt.init_app(app)
    jwt.decode_key_loader(decode_key)
    jwt.token_verification_loader(has_required_claims)
    jwt.unauthorized_loader(missing_token)
    jwt.expired_token_loader(expired_token)
    for register in (
        jwt.invalid_token_loader,
        jwt.token_verification_failed_loader,
        jwt.revoked_token_loader,
        jwt.needs_fresh_token_loader,
        jwt.user_lookup_error_loader,
    ):
        register(invalid_token)
