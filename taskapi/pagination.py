"""Keyset pagination of a user's tasks, with signed opaque cursors.

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
from sqlalchemy import RowMapping, Select, false, func, select, true, tuple_

from .extensions import db
from .models import Task, utcnow

SORT_COLUMNS = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "title": Task.title,
    "due_at": Task.due_at,
    "priority": Task.priority,
}
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

    def filtered(self, statement: Select) -> Select:
        statement = statement.where(Task.user_id == self.user_id)
        if self.status == "pending":
            statement = statement.where(Task.completed == false())
        elif self.status == "completed":
            statement = statement.where(Task.completed == true())
        elif self.status == "overdue":
            statement = statement.where(Task.completed == false(), Task.due_at < utcnow())
        if self.q:
            statement = statement.where(
                Task.title.icontains(self.q, autoescape=True)
                | Task.description.icontains(self.q, autoescape=True)
            )
        return statement


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


def count_tasks(query: TaskQuery) -> Select:
    return query.filtered(select(func.count()).select_from(Task))


def fetch_page(query: TaskQuery, limit: int, after: Position | None) -> Page:
    """Up to ``limit`` tasks after ``after``, where the next page starts, and the total.

    The total rides along in the page query (a scalar subquery), so a page
    costs one round trip; only an empty page after a cursor needs a second.
    """
    segments = 2 if query.key in NULLABLE_SORTS else 1
    segment = after.segment if after else 0
    rows: list = []
    while segment < segments and len(rows) <= limit:
        statement = segment_statement(
            query, segment, after if after and after.segment == segment else None
        )
        rows += (
            db.session.connection().execute(statement.limit(limit + 1 - len(rows))).mappings().all()
        )
        segment += 1
    if rows:
        total = rows[0]["total"]
    elif after:  # past the end: the count is still the filter's
        total = db.session.scalar(count_tasks(query))
    else:
        total = 0
    tasks = rows[:limit]
    next_position = position_of(query, tasks[-1]) if len(rows) > limit else None
    return Page(tasks, next_position, total)


def segment_statement(query: TaskQuery, segment: int, after: Position | None) -> Select:
    column = SORT_COLUMNS[query.key]
    total = count_tasks(query).scalar_subquery().label("total")
    # Plain rows, not ORM objects: a page is read-only, and rows are much cheaper.
    statement = query.filtered(select(*Task.__table__.columns, total))
    if segment == 1:  # the rows whose sort value is null, by id alone
        statement = statement.where(column.is_(None))
        order, key, after_key = (Task.id,), Task.id, (after.id if after else None)
    else:
        if query.key in NULLABLE_SORTS:
            statement = statement.where(column.is_not(None))
        order, key = (column, Task.id), tuple_(column, Task.id)
        after_key = (after.value, after.id) if after else None
    if after_key is not None:
        statement = statement.where(key < after_key if query.descending else key > after_key)
    if query.descending:
        order = tuple(part.desc() for part in order)
    return statement.order_by(*order)


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
