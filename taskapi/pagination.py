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
from functools import lru_cache

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Integer, RowMapping, Select, bindparam, false, func, select, true, tuple_

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

    def parameters(self) -> dict:
        """Values for the bind parameters of the statements below."""
        escaped = self.q.replace("/", "//").replace("%", "/%").replace("_", "/_")
        return {"user_id": self.user_id, "pattern": f"%{escaped}%", "now": utcnow()}


def filtered(statement: Select, status: str, has_q: bool) -> Select:
    """``statement`` narrowed to one user's tasks matching ``status`` and ``q``."""
    statement = statement.where(Task.user_id == bindparam("user_id"))
    if status == "pending":
        statement = statement.where(Task.completed == false())
    elif status == "completed":
        statement = statement.where(Task.completed == true())
    elif status == "overdue":
        now = bindparam("now", type_=Task.due_at.type)
        statement = statement.where(Task.completed == false(), Task.due_at < now)
    if has_q:  # % _ and / in q are escaped (TaskQuery.parameters): they match literally
        pattern = bindparam("pattern")
        statement = statement.where(
            Task.title.ilike(pattern, escape="/") | Task.description.ilike(pattern, escape="/")
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


@lru_cache(maxsize=64)
def count_statement(status: str, has_q: bool) -> Select:
    return filtered(select(func.count()).select_from(Task), status, has_q)


def fetch_page(query: TaskQuery, limit: int, after: Position | None) -> Page:
    """Up to ``limit`` tasks after ``after``, where the next page starts, and the total.

    The total rides along in the page query (a scalar subquery), so a page
    costs one round trip; only an empty page after a cursor needs a second.
    """
    connection = db.session.connection()
    parameters = query.parameters()
    segments = 2 if query.key in NULLABLE_SORTS else 1
    segment = after.segment if after else 0
    rows: list = []
    while segment < segments and len(rows) <= limit:
        resume = after if after and after.segment == segment else None
        statement = page_statement(
            query.status, bool(query.q), query.sort, segment, resume is not None
        )
        values = parameters | {"limit": limit + 1 - len(rows)}
        if resume is not None:
            values |= {"after_value": resume.value, "after_id": resume.id}
        rows += connection.execute(statement, values).mappings().all()
        segment += 1
    if rows:
        total = rows[0]["total"]
    elif after:  # past the end: the count is still the filter's
        total = connection.execute(count_statement(query.status, bool(query.q)), parameters)
        total = total.scalar()
    else:
        total = 0
    tasks = rows[:limit]
    next_position = position_of(query, tasks[-1]) if len(rows) > limit else None
    return Page(tasks, next_position, total)


@lru_cache(maxsize=256)
def page_statement(status: str, has_q: bool, sort: str, segment: int, resume: bool) -> Select:
    """The page query for one shape of request, built once; values are bound."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    column = SORT_COLUMNS[key]
    total = count_statement(status, has_q).scalar_subquery().label("total")
    # Plain rows, not ORM objects: a page is read-only, and rows are much cheaper.
    statement = filtered(select(*Task.__table__.columns, total), status, has_q)
    after_id = bindparam("after_id", type_=Task.id.type)
    if segment == 1:  # the rows whose sort value is null, by id alone
        statement = statement.where(column.is_(None))
        order, position, after = (Task.id,), Task.id, after_id
    else:
        if key in NULLABLE_SORTS:
            statement = statement.where(column.is_not(None))
        order, position = (column, Task.id), tuple_(column, Task.id)
        after = tuple_(bindparam("after_value", type_=column.type), after_id)
    if resume:
        statement = statement.where(position < after if descending else position > after)
    if descending:
        order = tuple(part.desc() for part in order)
    return statement.order_by(*order).limit(bindparam("limit", type_=Integer))


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
