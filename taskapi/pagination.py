"""Keyset pagination of a user's tasks: the query, where a page ends, and cursors.

A page continues strictly after the last row of the previous one in
``(sort value, id)`` order, so rows added or deleted meanwhile never shift
the pages: each task that exists throughout a walk is listed exactly once.
The cursor carries that last position, signed with the app's secret and
bound to the user and the query, so a tampered or foreign cursor is refused.

``due_at`` may be null. Tasks without it come last in both directions, as a
second segment ordered by id; a cursor says which segment it is in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import RowMapping

from .models import utcnow

# The page queries themselves are in taskapi.task_store.
NULLABLE_SORTS = {"due_at"}
DATETIME_SORTS = {"created_at", "updated_at", "due_at"}


class BadCursor(ValueError):
    """The cursor was not made by this server for this user and query."""


@dataclass(frozen=True)
class TaskQuery:
    user_id: str
    status: str
    q: str
    sort: str

    @property
    def key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def fingerprint(self) -> str:
        """Binds a cursor to this user, filter and order."""
        text = "\x00".join((self.user_id, self.status, self.q, self.sort))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def parameters(self) -> dict:
        """Values for the bind parameters of the page and count statements."""
        escaped = self.q.replace("/", "//").replace("%", "/%").replace("_", "/_")
        return {"user_id": self.user_id, "pattern": f"%{escaped}%", "now": utcnow()}


@dataclass(frozen=True)
class Position:
    """Where a page ended: the segment, and the last row's sort value and id."""

    segment: int
    value: object
    id: int


@dataclass(frozen=True)
class Page:
    tasks: list[RowMapping]  # a Task's columns by name
    next_position: Position | None
    total: int  # tasks matching the filter, on every page


def position_of(query: TaskQuery, task: RowMapping) -> Position:
    value = task[query.key]
    segment = 1 if value is None and query.key in NULLABLE_SORTS else 0
    return Position(segment, value, task["id"])


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="taskapi.cursor")


def encode_cursor(query: TaskQuery, position: Position) -> str:
    value = position.value.isoformat() if isinstance(position.value, datetime) else position.value
    return _serializer().dumps([query.fingerprint(), position.segment, value, position.id])


def decode_cursor(query: TaskQuery, cursor: str) -> Position:
    try:
        fingerprint, segment, value, task_id = _serializer().loads(cursor)
    except (BadData, ValueError, TypeError) as error:
        raise BadCursor("The cursor is not valid.") from error
    if fingerprint != query.fingerprint():
        raise BadCursor("The cursor belongs to another query; start again without it.")
    if value is not None and query.key in DATETIME_SORTS:
        value = datetime.fromisoformat(value)
    return Position(segment, value, task_id)
