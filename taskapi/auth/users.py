"""Users known from their tokens: the row made the first time a user id is seen.

A user's row holds the ``email`` and ``name`` claims of the first token seen,
when they are valid (claims that cannot be stored are dropped). Tasks and
idempotency keys refer to the row, so it must exist before anything is written.

Which ids have a row is remembered per process; the memory is a hint: when an
operator deleted a remembered user's row, the write that trips over the
missing row makes it again and runs once more.
"""

from __future__ import annotations

from functools import wraps

from flask import Flask, current_app, g
from flask_jwt_extended import get_jwt
from marshmallow import ValidationError, validate
from sqlalchemy import RowMapping, exists, select
from sqlalchemy.exc import IntegrityError

from ..data.database import dialect_insert
from ..data.models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, User
from ..extensions import db
from ..schemas.fields import is_storable
from .caches import BoundedCache

# Ids seen by this process, so the row is looked for once, not on every request.
KNOWN_USERS_LIMIT = 100_000

_is_email = validate.Email()


def provision_user(view):
    """Make sure the authenticated user (``g.user_id``) has a row, then run the view."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        ensure_user(g.user_id, get_jwt())
        try:
            return view(*args, **kwargs)
        except IntegrityError:
            # The statement (or atomic() block) that failed wrote nothing.
            db.session.rollback()
            if user_exists(g.user_id):
                raise
            current_app.extensions["taskapi.known_users"].discard(g.user_id)
            ensure_user(g.user_id, get_jwt())
            return view(*args, **kwargs)

    return wrapper


def user_exists(user_id: str) -> bool:
    return bool(db.session.scalar(select(exists().where(User.id == user_id))))


def ensure_user(user_id: str, claims: dict) -> None:
    """Create the user row the first time ``user_id`` is seen."""
    known_users: BoundedCache = current_app.extensions["taskapi.known_users"]
    if user_id in known_users:
        return
    email, name = email_from_claims(claims), name_from_claims(claims)
    try:
        insert_user_if_missing(user_id, email, name)
    except IntegrityError:
        # The token's email belongs to another account: keep the user, drop the email.
        db.session.rollback()
        insert_user_if_missing(user_id, None, name)
    known_users.put(user_id)


def insert_user_if_missing(user_id: str, email: str | None, name: str | None) -> None:
    statement = (
        dialect_insert(User)
        .values(id=user_id, email=email, name=name)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    db.session.execute(statement)


def email_from_claims(claims: dict) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or len(email) > EMAIL_MAX_LENGTH or not is_storable(email):
        return None
    email = email.lower()  # may grow: "İ" lower-cases to two characters
    if len(email) > EMAIL_MAX_LENGTH:
        return None
    try:
        return _is_email(email)
    except ValidationError:
        return None


def name_from_claims(claims: dict) -> str | None:
    name = claims.get("name")
    if not isinstance(name, str) or not is_storable(name):
        return None
    name = name.strip()
    return name if 0 < len(name) <= NAME_MAX_LENGTH else None


def create_account(user_id: str, email: str, name: str, password_hash: str) -> RowMapping | None:
    """A new user with a password (``/api/auth/register``); None if the email is taken."""
    statement = (
        dialect_insert(User)
        .values(id=user_id, email=email, name=name, password_hash=password_hash)
        .on_conflict_do_nothing()  # a taken email (or, never in practice, id)
        .returning(*User.__table__.c)
    )
    return db.session.execute(statement).mappings().first()


def find_account(email: str) -> RowMapping | None:
    statement = select(*User.__table__.c).where(User.email == email)
    return db.session.execute(statement).mappings().first()


def init_users(app: Flask) -> None:
    app.extensions["taskapi.known_users"] = BoundedCache(KNOWN_USERS_LIMIT)
