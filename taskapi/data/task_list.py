"""The task list: a user's tasks filtered and sorted, in keyset pages with their total."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from typing import NamedTuple

from sqlalchemy import Select, bindparam, exists, false, func, select, true

from .keyset import Keyset, Page, Position, fetch_page
from .models import utcnow
from .tasks_table import NOT_IN_TRASH, READ_COLUMNS, TAGS, TASKS

SORT_COLUMNS = {
    "created_at": TASKS.c.created_at,
    "updated_at": TASKS.c.updated_at,
    "title": TASKS.c.title,
    "due_at": TASKS.c.due_at,
    "priority": TASKS.c.priority,
    "remind_at": TASKS.c.remind_at,
}
# Each sort ("title", "-title", ...) as a keyset order; tasks without a due_at or
# remind_at come last either way.
LIST_ORDERS = {
    f"{sign}{key}": Keyset(column, TASKS.c.id, descending=sign == "-", nullable=column.nullable)
    for key, column in SORT_COLUMNS.items()
    for sign in ("", "-")
}


class FilterShape(NamedTuple):
    """Which filters a query has: its statement is built once per shape, values are bound."""

    status: str
    has_q: bool
    tag_count: int
    has_due_after: bool
    has_due_before: bool
    has_remind_before: bool

    @property
    def tags_only(self) -> bool:
        """Tags, and no other filter on the user's tasks."""
        others = self.has_q or self.has_due_after or self.has_due_before or self.has_remind_before
        return self.tag_count > 0 and self.status == "all" and not others


@dataclass(frozen=True, kw_only=True)
class TaskQuery:
    user_id: str
    status: str
    q: str
    sort: str
    tags: tuple[str, ...] = ()  # folded names, sorted: tasks carrying all of them
    due_after: datetime | None = None
    due_before: datetime | None = None
    remind_before: datetime | None = None

    @property
    def order(self) -> Keyset:
        return LIST_ORDERS[self.sort]

    @property
    def shape(self) -> FilterShape:
        times = (self.due_after, self.due_before, self.remind_before)
        return FilterShape(
            self.status, bool(self.q), len(self.tags), *(time is not None for time in times)
        )


def fetch_task_page(query: TaskQuery, limit: int, after: Position | None) -> Page:
    """Up to ``limit`` of the query's tasks after ``after``, where the next page starts,
    and how many tasks match."""
    statement = partial(list_page_statement, query.shape, query.sort)
    count = count_statement(query.shape)
    return fetch_page(query.order, statement, count, filter_parameters(query), limit, after)


def filtered(statement: Select, shape: FilterShape) -> Select:
    """``statement`` narrowed to one user's tasks matching a filter of ``shape``."""
    user_id = bindparam("user_id")
    statement = statement.where(TASKS.c.user_id == user_id, NOT_IN_TRASH)
    status = shape.status
    if status == "pending":
        statement = statement.where(TASKS.c.completed == false())
    elif status == "completed":
        statement = statement.where(TASKS.c.completed == true())
    elif status == "overdue":
        now = bindparam("now", type_=TASKS.c.due_at.type)
        statement = statement.where(TASKS.c.completed == false(), TASKS.c.due_at < now)
    if shape.has_q:  # % _ and / in q are escaped (filter_parameters): they match literally
        pattern = bindparam("pattern")
        statement = statement.where(
            TASKS.c.title.ilike(pattern, escape="/")
            | TASKS.c.description.ilike(pattern, escape="/")
        )
    for n in range(shape.tag_count):  # every tag named: one indexed lookup each
        statement = statement.where(
            exists().where(
                TAGS.c.task_id == TASKS.c.id,
                TAGS.c.user_id == user_id,
                TAGS.c.name_folded == bindparam(f"tag_{n}"),
            )
        )
    time = TASKS.c.due_at.type
    if shape.has_due_after:
        statement = statement.where(TASKS.c.due_at >= bindparam("due_after", type_=time))
    if shape.has_due_before:
        statement = statement.where(TASKS.c.due_at < bindparam("due_before", type_=time))
    if shape.has_remind_before:
        statement = statement.where(TASKS.c.remind_at <= bindparam("remind_before", type_=time))
    return statement


def filter_parameters(query: TaskQuery) -> dict:
    """Values for the bind parameters of ``filtered``'s statements."""
    escaped = query.q.replace("/", "//").replace("%", "/%").replace("_", "/_")
    tags = {f"tag_{n}": name for n, name in enumerate(query.tags)}
    return {
        "user_id": query.user_id,
        "pattern": f"%{escaped}%",
        "now": utcnow(),
        "due_after": query.due_after,
        "due_before": query.due_before,
        "remind_before": query.remind_before,
        **tags,
    }


@lru_cache(maxsize=256)
def count_statement(shape: FilterShape) -> Select:
    if shape.tags_only:
        return tag_count_statement(shape.tag_count)
    return filtered(select(func.count()).select_from(TASKS), shape)


def tag_count_statement(tag_count: int) -> Select:
    """How many of the user's tasks carry every tag, from the tag index alone.

    A task_tags row exists exactly while its task carries the tag, so with no
    other filter the tasks table need not be read: for a tag on 10,000 of a
    user's 100,000 tasks, an index-only scan of 10,000 entries instead of a
    join with 100,000. (Tasks leaving the user's lists, such as trashed
    ones, must leave task_tags too for this to hold.)
    """
    first, *others = [TAGS.alias(f"tag_{n}") for n in range(tag_count)]
    user_id = bindparam("user_id")
    statement = select(func.count()).select_from(first)
    statement = statement.where(
        first.c.user_id == user_id, first.c.name_folded == bindparam("tag_0")
    )
    for n, other in enumerate(others, 1):
        statement = statement.where(
            exists().where(
                other.c.task_id == first.c.task_id,
                other.c.user_id == user_id,
                other.c.name_folded == bindparam(f"tag_{n}"),
            )
        )
    return statement


@lru_cache(maxsize=1024)
def list_page_statement(shape: FilterShape, sort: str, segment: int, resume: bool) -> Select:
    """The page query for one shape of request, built once; values are bound."""
    total = count_statement(shape).scalar_subquery().label("total")
    return LIST_ORDERS[sort].paged(filtered(select(*READ_COLUMNS, total), shape), segment, resume)
