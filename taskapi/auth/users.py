"""Provisioning: a user id seen in a token gets its row before anything of theirs is written.

Plain functions that need an app context but no request, so that processes
other than the web app (the MCP server, the reminder dispatcher) provision
users by the same rules. The rows themselves: ``taskapi.data.user_store``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app
from marshmallow import ValidationError, validate
from sqlalchemy.exc import IntegrityError

from ..data.models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH
from ..data.user_store import insert_user_if_missing, user_exists
from ..extensions import db
from ..schemas.fields import is_storable
from .caches import BoundedCache

# Ids seen by this process, so the row is looked for once, not on every request.
KNOWN_USERS_LIMIT = 100_000

_is_email = validate.Email()
Result = TypeVar("Result")


def ensure_user(user_id: str, claims: dict) -> None:
    """Create the user row the first time this process sees ``user_id``.

    The row takes the ``email`` and ``name`` claims when they can be stored
    (else none): an email another account has is dropped, the user kept.
    """
    known_users: BoundedCache = current_app.extensions["taskapi.known_users"]
    if user_id in known_users:
        return
    email, name = email_from_claims(claims), name_from_claims(claims)
    try:
        insert_user_if_missing(user_id, email, name)
    except IntegrityError:
        db.session.rollback()
        insert_user_if_missing(user_id, None, name)
    known_users.put(user_id)


def run_with_user_row(user_id: str, claims: dict, work: Callable[[], Result]) -> Result:
    """``ensure_user``, then ``work()``; run a second time if the row was missing.

    Which ids have a row is remembered per process, and the memory is only a
    hint: when an operator deleted a remembered user, ``work`` trips over the
    missing row (an IntegrityError on the foreign key). Then the session is
    rolled back (the statement or ``atomic()`` block that failed wrote
    nothing), the row made again, and ``work`` runs once more. Any other
    IntegrityError is raised as it is.
    """
    ensure_user(user_id, claims)
    try:
        return work()
    except IntegrityError:
        db.session.rollback()
        if user_exists(user_id):
            raise
        current_app.extensions["taskapi.known_users"].discard(user_id)
        ensure_user(user_id, claims)
        return work()


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


def init_users(app: Flask) -> None:
    app.extensions["taskapi.known_users"] = BoundedCache(KNOWN_USERS_LIMIT)
