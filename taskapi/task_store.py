"""Data access for tasks: every statement that reads or writes the tasks table.

Each function takes the authenticated user's id and scopes its statement by
it. Statements are Core, run on the session's connection, with rows as
mappings: a request never needs the ORM's identity map or unit of work, and
skipping them is most of the cost the ORM would add. The hot ones are built
once: a get is one SELECT, a create one INSERT ... RETURNING, a write one
UPDATE ... RETURNING that also checks If-Match, a page one SELECT.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import (
    ColumnElement,
    Integer,
    RowMapping,
    Select,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)

from .extensions import db
from .models import TASK_ID_MAX, Task, utcnow
from .pagination import NULLABLE_SORTS, Page, Position, TaskQuery, position_of

TASKS = Task.__table__
SELECT_TASK = select(*TASKS.c).where(
    TASKS.c.id == bindparam("task_id"), TASKS.c.user_id == bindparam("user_id")
)
INSERT_TASK = insert(TASKS).returning(*TASKS.c)  # columns from the parameters

SORT_COLUMNS = {
    "created_at": TASKS.c.created_at,
    "updated_at": TASKS.c.updated_at,
    "title": TASKS.c.title,
    "due_at": TASKS.c.due_at,
    "priority": TASKS.c.priority,
}


def one_row(statement, parameters=None) -> RowMapping | None:
    """The first row of a statement, as a mapping of column names."""
    return db.session.connection().execute(statement, parameters).mappings().first()


def can_exist(task_id: int) -> bool:
    """Ids past the column's range cannot exist (and the database would reject them)."""
    return task_id <= TASK_ID_MAX


def get_task(user_id: str, task_id: int) -> RowMapping | None:
    if not can_exist(task_id):
        return None
    return one_row(SELECT_TASK, {"task_id": task_id, "user_id": user_id})


def task_exists(user_id: str, task_id: int) -> bool:
    return can_exist(task_id) and bool(
        db.session.scalar(select(exists().where(*owned_task(user_id, task_id))))
    )


def insert_task(user_id: str, fields: dict) -> RowMapping:
    now = utcnow()
    return one_row(
        INSERT_TASK, {"user_id": user_id, "created_at": now, "updated_at": now, **fields}
    )


def update_task(
    user_id: str, task_id: int, changes: dict, *, versions: list[int] | None
) -> RowMapping | None:
    """Apply ``changes`` if the task has one of ``versions`` (None: any).

    None when no task matched: missing, or at another version.
    """
    return write_task(user_id, task_id, changes, versions)


def set_completed(
    user_id: str, task_id: int, completed: bool | None, *, versions: list[int] | None
) -> RowMapping | None:
    """Set ``completed``, or toggle it when ``completed`` is None, as ``update_task``."""
    value = ~TASKS.c.completed if completed is None else completed
    return write_task(user_id, task_id, {"completed": value}, versions)


def write_task(
    user_id: str, task_id: int, values: dict, versions: list[int] | None
) -> RowMapping | None:
    """One atomic UPDATE ... RETURNING: the If-Match check, the write and a new version."""
    if not can_exist(task_id):
        return None
    return one_row(
        update(TASKS)
        .where(*owned_task(user_id, task_id), version_matches(versions))
        .values(**values, version=TASKS.c.version + 1, updated_at=utcnow())
        .returning(*TASKS.c)
    )


def delete_task(user_id: str, task_id: int, *, versions: list[int] | None) -> bool:
    """Delete the task if it has one of ``versions`` (None: any); False if none matched."""
    if not can_exist(task_id):
        return False
    result = db.session.connection().execute(
        delete(TASKS).where(*owned_task(user_id, task_id), version_matches(versions))
    )
    return result.rowcount > 0


def owned_task(user_id: str, task_id: int) -> tuple:
    """The WHERE clause for one of the user's tasks."""
    return TASKS.c.id == task_id, TASKS.c.user_id == user_id


def version_matches(versions: list[int] | None) -> ColumnElement[bool]:
    return true() if versions is None else TASKS.c.version.in_(versions)


# Listing: keyset pages (taskapi.pagination says how a walk stays stable).


def filtered(statement: Select, status: str, has_q: bool) -> Select:
    """``statement`` narrowed to one user's tasks matching ``status`` and ``q``."""
    statement = statement.where(TASKS.c.user_id == bindparam("user_id"))
    if status == "pending":
        statement = statement.where(TASKS.c.completed == false())
    elif status == "completed":
        statement = statement.where(TASKS.c.completed == true())
    elif status == "overdue":
        now = bindparam("now", type_=TASKS.c.due_at.type)
        statement = statement.where(TASKS.c.completed == false(), TASKS.c.due_at < now)
    if has_q:  # % _ and / in q are escaped (TaskQuery.parameters): they match literally
        pattern = bindparam("pattern")
        statement = statement.where(
            TASKS.c.title.ilike(pattern, escape="/")
            | TASKS.c.description.ilike(pattern, escape="/")
        )
    return statement


@lru_cache(maxsize=64)
def count_statement(status: str, has_q: bool) -> Select:
    return filtered(select(func.count()).select_from(TASKS), status, has_q)


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
    statement = filtered(select(*TASKS.c, total), status, has_q)
    after_id = bindparam("after_id", type_=TASKS.c.id.type)
    if segment == 1:  # the rows whose sort value is null, by id alone
        statement = statement.where(column.is_(None))
        order, position, after = (TASKS.c.id,), TASKS.c.id, after_id
    else:
        if key in NULLABLE_SORTS:
            statement = statement.where(column.is_not(None))
        order, position = (column, TASKS.c.id), tuple_(column, TASKS.c.id)
        after = tuple_(bindparam("after_value", type_=column.type), after_id)
    if resume:
        statement = statement.where(position < after if descending else position > after)
    if descending:
        order = tuple(part.desc() for part in order)
    return statement.order_by(*order).limit(bindparam("limit", type_=Integer))
