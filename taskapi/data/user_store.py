"""Data access for users: the row a user id gets, and accounts with a password."""

from __future__ import annotations

from sqlalchemy import RowMapping, exists, select

from ..extensions import db
from .database import dialect_insert
from .models import User


def insert_user_if_missing(user_id: str, email: str | None, name: str | None) -> None:
    """A row for ``user_id``, unless it has one; IntegrityError if ``email`` is another's."""
    statement = (
        dialect_insert(User)
        .values(id=user_id, email=email, name=name)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    db.session.execute(statement)


def user_exists(user_id: str) -> bool:
    return bool(db.session.scalar(select(exists().where(User.id == user_id))))


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
