"""Bearer-token authentication: the decorator every task view wears.

flask-jwt-extended verifies the token; this module adds what the contract asks
on top: required claims, the user id in the URL matching the token's, the
user row created on first sight, and 401 problem+json for every failure.
"""

from __future__ import annotations

import re
import time
from functools import wraps

from flask import Flask, abort, current_app, g, request
from flask_jwt_extended import JWTManager, get_jwt, get_jwt_header, verify_jwt_in_request
from marshmallow import ValidationError, validate
from sqlalchemy.exc import IntegrityError

from .database import insert
from .errors import problem
from .extensions import db
from .keys import (
    SHARED_SECRET_ALGORITHMS,
    decode_key,
    has_expected_issuer_and_audience,
    init_keys,
)
from .limits import tasks_rate_limit
from .models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, USER_ID_MAX_LENGTH, User

# Better Auth ids are alphanumeric; other providers use UUIDs or "provider|id".
USER_ID_PATTERN = re.compile(rf"[A-Za-z0-9._~:@|+=-]{{1,{USER_ID_MAX_LENGTH}}}")
KNOWN_USERS_LIMIT = 100_000
VERIFIED_TOKENS_LIMIT = 10_000
# Better Auth's tokens are under 1 KB; anything this big is not one of them.
AUTHORIZATION_MAX_LENGTH = 4096

_is_email = validate.Email()


def auth_required(view):
    """Require a valid bearer token whose user id is the URL's ``user_id``.

    Then count the request against that user's rate limit, and run the view.
    """

    limited_view = tasks_rate_limit(view)

    @wraps(view)
    def wrapper(*args, user_id: str, **kwargs):
        claims = verified_claims()
        identity = claims[current_app.config["JWT_IDENTITY_CLAIM"]]
        if identity != user_id:
            abort(403, "The access token does not grant access to this user's tasks.")
        g.user_id = identity
        provision_user(identity, claims)
        return limited_view(*args, user_id=user_id, **kwargs)

    return wrapper


def verified_claims() -> dict:
    """The claims of the request's token, verified by flask-jwt-extended.

    A frontend sends the same token on every call until it expires, so an
    HS256 token that passed once is remembered (by its exact header) until its
    ``exp``: verifying it again could only give the same answer, since the
    secret does not change while the process runs. JWKS tokens are always
    verified, because their keys can be withdrawn.
    """
    header = request.headers.get("Authorization")
    if header is not None and len(header) > AUTHORIZATION_MAX_LENGTH:
        abort(unauthorized("The access token is too large.", token_sent=True))
    verified: dict = current_app.extensions["taskapi.verified_tokens"]
    claims = verified.get(header)
    if claims is not None and claims["exp"] > time.time():
        return claims
    verify_jwt_in_request()
    claims = get_jwt()
    if get_jwt_header().get("alg") in SHARED_SECRET_ALGORITHMS:
        if len(verified) >= VERIFIED_TOKENS_LIMIT:
            verified.clear()
        verified[header] = claims
    return claims


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_valid_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID_PATTERN.fullmatch(value) is not None


def provision_user(user_id: str, claims: dict) -> None:
    """Create the user row the first time a user id is seen."""
    known_users: set = current_app.extensions["taskapi.known_users"]
    if user_id in known_users:
        return
    email, name = email_from_claims(claims), name_from_claims(claims)
    try:
        insert_user_if_missing(user_id, email, name)
    except IntegrityError:
        # The token's email belongs to another account: keep the user, drop the email.
        db.session.rollback()
        insert_user_if_missing(user_id, None, name)
    if len(known_users) >= KNOWN_USERS_LIMIT:
        known_users.clear()
    known_users.add(user_id)


def insert_user_if_missing(user_id: str, email: str | None, name: str | None) -> None:
    statement = (
        insert(User)
        .values(id=user_id, email=email, name=name)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    db.session.execute(statement)
    db.session.commit()


def email_from_claims(claims: dict) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or len(email) > EMAIL_MAX_LENGTH:
        return None
    try:
        return _is_email(email).lower()
    except ValidationError:
        return None


def name_from_claims(claims: dict) -> str | None:
    name = claims.get("name")
    if not isinstance(name, str) or "\x00" in name:
        return None
    name = name.strip()
    return name if 0 < len(name) <= NAME_MAX_LENGTH else None


def unauthorized(detail: str, *, token_sent: bool):
    challenge = 'Bearer error="invalid_token"' if token_sent else "Bearer"
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def register_jwt_callbacks(jwt: JWTManager) -> None:
    """Make every flask-jwt-extended failure a 401 problem (its default is 422)."""

    def invalid(*_args):
        return unauthorized("The access token is invalid.", token_sent=True)

    @jwt.unauthorized_loader
    def missing_token(_reason):
        return unauthorized(
            "An 'Authorization: Bearer <token>' header is required.", token_sent=False
        )

    @jwt.expired_token_loader
    def expired_token(_header, _data):
        return unauthorized("The access token has expired.", token_sent=True)

    @jwt.token_verification_loader
    def has_required_claims(header, data):
        identity = data.get(current_app.config["JWT_IDENTITY_CLAIM"])
        return (
            is_number(data.get("exp"))
            # PyJWT also takes numeric strings in time claims; RFC 7519 does not.
            and all(is_number(data[claim]) for claim in ("nbf", "iat") if claim in data)
            and is_valid_user_id(identity)
            and has_expected_issuer_and_audience(header, data)
        )

    jwt.decode_key_loader(decode_key)

    jwt.invalid_token_loader(invalid)
    jwt.token_verification_failed_loader(invalid)
    jwt.revoked_token_loader(invalid)
    jwt.needs_fresh_token_loader(invalid)
    jwt.user_lookup_error_loader(invalid)


def init_auth(app: Flask, jwt: JWTManager) -> None:
    app.config.setdefault("JWT_TOKEN_LOCATION", ["headers"])
    init_keys(app)
    # Issuer and audience are checked by has_required_claims, per kind of token;
    # tokens this app issues carry them when they are configured.
    app.config["JWT_ENCODE_ISSUER"] = app.config.get("JWT_ISSUER")
    app.config["JWT_ENCODE_AUDIENCE"] = app.config.get("JWT_AUDIENCE")
    app.extensions["taskapi.known_users"] = set()
    app.extensions["taskapi.verified_tokens"] = {}
    jwt.init_app(app)
    register_jwt_callbacks(jwt)
