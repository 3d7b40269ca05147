"""The tasks table as every store uses it: handles, the read columns, the WHERE
pieces, the version every write takes, and the task_tags rows that index tags."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, RowMapping, delete, insert, true

from ..extensions import db
from .database import statement_connection
from .models import TASK_ID_MAX, Task, TaskTag, Tombstone, folded, utcnow

TASKS = Task.__table__
TAGS = TaskTag.__table__
TOMBSTONES = Tombstone.__table__
# What reads return: the task and its version, not the bookkeeping of its series.
READ_COLUMNS = [
    column for column in TASKS.c if column.name not in ("occurrence", "spawned_at_version")
]
NOT_IN_TRASH = TASKS.c.deleted_at.is_(None)
IN_TRASH = TASKS.c.deleted_at.is_not(None)
NEXT_VERSION = TASKS.c.version + 1  # the version a write gives the task
INSERT_TAGS = insert(TAGS)
# SQLite takes at most 32,766 bound values in one statement.
IDS_PER_STATEMENT = 10_000


def one_row(statement, parameters=None) -> RowMapping | None:
    """The first row of a statement, as a mapping of column names."""
    with statement_connection() as database:
        return database.execute(statement, parameters).mappings().first()


def can_exist(task_id: int) -> bool:
    """Ids past the column's range cannot exist (and the database would reject them)."""
    return task_id <= TASK_ID_MAX


def owned_task(user_id: str, task_id: int) -> tuple:
    """The WHERE clause for one of the user's tasks."""
    return TASKS.c.id == task_id, TASKS.c.user_id == user_id


def version_matches(versions: list[int] | None) -> ColumnElement[bool]:
    """The task is at one of ``versions`` (None: at any)."""
    return true() if versions is None else TASKS.c.version.in_(versions)


def new_version(now: datetime | None = None) -> dict:
    """The SET values every write of a task carries: the next version, and ``updated_at``."""
    return {"version": NEXT_VERSION, "updated_at": now or utcnow()}


def insert_tag_rows(tasks: list[RowMapping]) -> None:
    """Index the tasks' tags: one task_tags row per tag, case-folded."""
    rows = [
        {
            "task_id": task["id"],
            "user_id": task["user_id"],
            "name": name,
            "name_folded": folded(name),
        }
        for task in tasks
        for name in task["tags"]
    ]
    if rows:
        db.session.connection().execute(INSERT_TAGS, rows)


def replace_tag_rows(tasks: list[RowMapping]) -> None:
    """Make the tasks' task_tags rows match their tags (inside a transaction)."""
    ids = [task["id"] for task in tasks]
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = ids[start : start + IDS_PER_STATEMENT]
        db.session.connection().execute(delete(TAGS).where(TAGS.c.task_id.in_(chunk)))
    insert_tag_rows(tasks)


def delete_tag_rows(user_id: str, task_ids) -> None:
    """Remove the task_tags rows of the user's tasks ``task_ids`` (ids, or a subquery of them)."""
    db.session.connection().execute(
        delete(TAGS).where(TAGS.c.user_id == user_id, TAGS.c.task_id.in_(task_ids))
    )
