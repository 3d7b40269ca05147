"""Accounts for use without an external identity provider: register and log in."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from functools import cache

from flask import Blueprint, current_app
from flask_jwt_extended import create_access_token
from werkzeug.security import check_password_hash, generate_password_hash

from ..auth.limits import auth_rate_limit
from ..auth.tokens import unauthorized
from ..data.user_store import create_account, find_account
from ..errors import problem
from ..http.arguments import arguments
from ..http.openapi import documented, success
from ..schemas.accounts import LoginSchema, RegisterSchema, TokenSchema, token_schema

bp = Blueprint("accounts", __name__, url_prefix="/api/auth")

USER_ID_ALPHABET = string.ascii_letters + string.digits
# A response carrying a token stays out of every cache (RFC 6749, 5.1).
NO_STORE = {"Cache-Control": "no-store"}


@bp.post("/register")
@documented(responses={201: success(TokenSchema, "Created")}, errors=(409,))
@auth_rate_limit
@arguments(RegisterSchema)
def register(body: dict):
    """Create an account and return a token for it."""
    password_hash = generate_password_hash(body["password"])
    user = create_account(new_user_id(), body["email"], body["name"], password_hash)
    if user is None:
        return email_taken()
    return token_response(user), 201, NO_STORE


@bp.post("/login")
@documented(responses={200: success(TokenSchema)}, errors=(401,))
@auth_rate_limit
@arguments(LoginSchema)
def login(body: dict):
    """Exchange email and password for a token."""
    user = find_account(body["email"])
    # Hash even for unknown emails, so timing does not reveal which emails exist.
    password_hash = user["password_hash"] if user and user["password_hash"] else dummy_hash()
    if not check_password_hash(password_hash, body["password"]) or user is None:
        return unauthorized("The email or password is wrong.", sent=False)
    return token_response(user), 200, NO_STORE


def token_response(user: Mapping) -> dict:
    token = create_access_token(
        identity=user["id"], additional_claims={"email": user["email"], "name": user["name"]}
    )
    expires_in = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return token_schema.dump({"user": user, "access_token": token, "expires_in": expires_in})


def email_taken():
    message = "An account with this email already exists."
    return problem(409, message, errors={"email": [message]})


def new_user_id() -> str:
    """A 32-character random id, like Better Auth's."""
    return "".join(secrets.choice(USER_ID_ALPHABET) for _ in range(32))


@cache
def dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))
