"""Database models: users, their tasks, the tasks' tags, tombstones of erased tasks, and
the users' push subscriptions with what the reminder dispatcher sent to them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..extensions import db

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
TAG_MAX_LENGTH = 40
TAGS_PER_TASK_MAX = 20
# Case folding may lengthen a name (German sharp s folds to "ss", a ligature to three letters).
TAG_FOLDED_MAX_LENGTH = 3 * TAG_MAX_LENGTH
RECURRENCE_MAX_LENGTH = 200
TIME_ZONE_MAX_LENGTH = 64


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


class NameList(TypeDecorator):
    """A list of strings, kept as JSON text on every database.

    Not a ``json`` column: psycopg2 parses those with a Python call per row,
    and most tasks' lists are empty. Here ``[]`` costs a comparison.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def process_result_value(self, value, dialect):
        if value is None:  # a tombstone's row in the change feed has no tags
            return None
        return [] if value == "[]" else json.loads(value)


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
    # The user's latest change number: every write of a task takes the next one
    # (docs/design.md says why that orders the change feed).
    change_number: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


# The list indexes cover the tasks in lists: trashed ones never are. The trash's
# indexes cover only the trashed ones.
NOT_IN_TRASH_SQL = text("deleted_at IS NULL")
IN_TRASH_SQL = text("deleted_at IS NOT NULL")


# Tasks whose reminder the dispatcher may send: live, pending, with a reminder.
DUE_REMINDER = text("remind_at IS NOT NULL AND deleted_at IS NULL AND NOT completed")


def live_index(name: str, *columns: str) -> Index:
    return Index(name, *columns, postgresql_where=NOT_IN_TRASH_SQL, sqlite_where=NOT_IN_TRASH_SQL)


def trash_index(name: str, *columns: str) -> Index:
    return Index(name, *columns, postgresql_where=IN_TRASH_SQL, sqlite_where=IN_TRASH_SQL)


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        # One index per sort order, each led by user_id: a page costs the same
        # however many tasks other users have. id breaks ties (keyset pagination).
        live_index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        live_index("ix_tasks_user_id_updated_at_id", "user_id", "updated_at", "id"),
        live_index("ix_tasks_user_id_title_id", "user_id", "title", "id"),
        live_index("ix_tasks_user_id_due_at_id", "user_id", "due_at", "id"),
        live_index("ix_tasks_user_id_priority_id", "user_id", "priority", "id"),
        live_index("ix_tasks_user_id_remind_at_id", "user_id", "remind_at", "id"),
        # The trash, latest deletion first.
        trash_index("ix_tasks_user_id_deleted_at_id", "user_id", "deleted_at", "id"),
        # purge-trash: the expired tasks of every user.
        trash_index("ix_tasks_deleted_at", "deleted_at"),
        # The change feed: one user's changes after a position, in order.
        Index("ix_tasks_user_id_change_number_id", "user_id", "change_number", "id"),
        # The reminder dispatcher: every user's reminders that may come due, by time.
        Index(
            "ix_tasks_remind_at_id",
            "remind_at",
            "id",
            postgresql_where=DUE_REMINDER,
            sqlite_where=DUE_REMINDER,
        ),
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
    # The names as the task shows them, in order; task_tags indexes them for filters.
    tags: Mapped[list[str]] = mapped_column(NameList, server_default="[]")
    recurrence: Mapped[str | None] = mapped_column(String(RECURRENCE_MAX_LENGTH))
    time_zone: Mapped[str | None] = mapped_column(String(TIME_ZONE_MAX_LENGTH))
    # The series' first task, and this task's place in it (1 for the first): COUNT counts it.
    series_id: Mapped[int | None] = mapped_column(Integer)
    occurrence: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The version written by the completion that spawned the next occurrence;
    # set once, never cleared (docs/design.md says why that makes it once).
    spawned_at_version: Mapped[int | None] = mapped_column(Integer)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Incremented by every write; the ETag is made from it.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    # Set while the task is in the trash.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The user's change number of the task's latest write (the change feed's order).
    change_number: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Tombstone(db.Model):
    """A task erased from the trash, kept for the change feed until the retention ends."""

    __tablename__ = "tombstones"
    __table_args__ = (
        Index("ix_tombstones_user_id_change_number_task_id", "user_id", "change_number", "task_id"),
        Index("ix_tombstones_erased_at", "erased_at"),
    )

    # Task ids are never reused, so one tombstone per id.
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[str] = mapped_column(
        String(USER_ID_MAX_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    change_number: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)


def folded(tag: str) -> str:
    """The one case-insensitive form of a tag name: for merging, filters and counts."""
    return tag.casefold()


class TaskTag(db.Model):
    """One tag on one task, folded for case-insensitive filters and counts."""

    __tablename__ = "task_tags"
    __table_args__ = (
        # The filter and the tag list read one user's entries for a name: led by user_id,
        # as every task index is, so other users' tags cost nothing.
        Index("ix_task_tags_user_id_name_folded_task_id", "user_id", "name_folded", "task_id"),
    )

    task_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    name_folded: Mapped[str] = mapped_column(String(TAG_FOLDED_MAX_LENGTH), primary_key=True)
    # The task's owner, copied so that a user's tags are found without the tasks table.
    user_id: Mapped[str] = mapped_column(String(USER_ID_MAX_LENGTH))
    name: Mapped[str] = mapped_column(String(TAG_MAX_LENGTH))


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


# An endpoint is a URL; push services' are about 200 characters (taskapi.push.endpoints).
PUSH_ENDPOINT_MAX_LENGTH = 2048
PUSH_SUBSCRIPTIONS_PER_USER_MAX = 20


class PushSubscription(db.Model):
    """A browser's Web Push subscription (contract 4.10): where and how to push to it.

    The endpoint is a capability URL: it appears in the subscription's own
    JSON and nowhere else (no log line, no task).
    """

    __tablename__ = "push_subscriptions"
    __table_args__ = (
        Index("ix_push_subscriptions_user_id_id", "user_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(USER_ID_MAX_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    # One endpoint, one row: sent again (by anyone), the row is updated.
    endpoint: Mapped[str] = mapped_column(String(PUSH_ENDPOINT_MAX_LENGTH), unique=True)
    # The browser's P-256 public key (65 bytes) and auth secret (16 bytes), base64url.
    p256dh: Mapped[str] = mapped_column(String(88))
    auth: Mapped[str] = mapped_column(String(24))
    expiration_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushDelivery(db.Model):
    """One reminder (a task at one ``remind_at``) for one subscription, made once when
    it comes due (the primary key), then claimed by one dispatcher at a time.

    ``lease_until`` set: not finished. Without ``claimed_by`` the row is free
    to take from then on (a new reminder: now; a retry: its time); with it,
    that dispatcher holds it until then (taskapi.data.push_store). A
    finished row has neither, and an ``outcome``.
    """

    __tablename__ = "push_deliveries"
    __table_args__ = (
        # Subscriptions deleted (410, DELETE) cascade here.
        Index("ix_push_deliveries_subscription_id", "subscription_id"),
        # Claims that lapsed, and retries that are due: the rows not finished.
        Index(
            "ix_push_deliveries_lease_until",
            "lease_until",
            postgresql_where=text("lease_until IS NOT NULL"),
            sqlite_where=text("lease_until IS NOT NULL"),
        ),
    )

    task_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    remind_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("push_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # sent, gone (the subscription ended), expired (retried past the TTL), failed,
    # refused (endpoint rule), late (over 24 h). A claim whose reminder changed
    # before the push is deleted, not kept: undoing the change sends it after all.
    outcome: Mapped[str | None] = mapped_column(String(16))
    # When the row was made (the reminder came due): retries stop a TTL after it.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
