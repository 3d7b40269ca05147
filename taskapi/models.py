"""Database models: users and their tasks."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .extensions import db

USER_ID_MAX_LENGTH = 255
EMAIL_MAX_LENGTH = 255
NAME_MAX_LENGTH = 100
TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 1000
# Task ids are a 32-bit INTEGER column on PostgreSQL; larger ids cannot exist.
TASK_ID_MAX = 2**31 - 1
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# Stored as a rank, so sorting by priority is by importance, not alphabetical.
PRIORITIES = ("low", "normal", "high")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp on every database.

    PostgreSQL keeps the offset; SQLite keeps naive text. Values are stored in
    UTC and always come back aware, in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


class Priority(TypeDecorator):
    """``low``/``normal``/``high`` in Python, 0/1/2 in the database."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else PRIORITIES.index(value)

    def process_result_value(self, value, dialect):
        return None if value is None else PRIORITIES[value]


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        # Emails are stored lower-cased, so a plain unique constraint is case-insensitive.
        CheckConstraint("email = lower(email)", name="email_lower_case"),
    )

    id: Mapped[str] = mapped_column(String(USER_ID_MAX_LENGTH), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        # One index per sort order, each led by user_id: a page costs the same
        # however many tasks other users have. id breaks ties (keyset pagination).
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_updated_at_id", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_id_title_id", "user_id", "title", "id"),
        Index("ix_tasks_user_id_due_at_id", "user_id", "due_at", "id"),
        Index("ix_tasks_user_id_priority_id", "user_id", "priority", "id"),
        CheckConstraint(f"priority BETWEEN 0 AND {len(PRIORITIES) - 1}", name="priority_rank"),
        # Ids are never reused on SQLite either, so an old ETag or URL never
        # matches a newer task.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(USER_ID_MAX_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX_LENGTH))
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[str] = mapped_column(Priority, default="normal", server_default="1")
    # Incremented by every write; the ETag is made from it.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class IdempotencyKey(db.Model):
    """The first response to a POST with an ``Idempotency-Key``, kept for replays."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    user_id: Mapped[str] = mapped_column(
        String(USER_ID_MAX_LENGTH),
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    )
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # Filled in the same transaction that creates the task.
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    headers: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
