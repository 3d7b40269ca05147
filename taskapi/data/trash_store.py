"""The trash: trashing, listing, restoring, erasing and purging tasks (docs/api.md, "Trash").

A trashed task has ``deleted_at`` set and no task_tags rows, so other statements
leave it out; past the retention it has expired and only ``purge_expired_trash``
sees it. Erasing a task leaves a tombstone for the change feed.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import RowMapping, Select, bindparam, delete, func, insert, select, true, update

from ..extensions import db
from .change_numbers import claim_change_number, execute_with_change_number
from .database import NO_STATEMENT_TIMEOUT, atomic
from .keyset import Keyset, Page, Position, fetch_page
from .models import utcnow
from .retention import TOMBSTONE_MARGIN, retention_cutoff
from .tasks_table import (
    IN_TRASH,
    NOT_IN_TRASH,
    READ_COLUMNS,
    TASKS,
    TOMBSTONES,
    can_exist,
    delete_tag_rows,
    insert_tag_rows,
    new_version,
    owned_task,
    version_matches,
)

# Latest deletion first.
TRASH_ORDER = Keyset(TASKS.c.deleted_at, TASKS.c.id, descending=True)
LISTED = (
    TASKS.c.user_id == bindparam("user_id"),
    IN_TRASH,
    TASKS.c.deleted_at >= bindparam("cutoff", type_=TASKS.c.deleted_at.type),
)
TRASH_TOTAL = select(func.count()).select_from(TASKS).where(*LISTED)


def in_trash(user_id: str, task_id: int) -> tuple:
    """The WHERE clause for one of the user's tasks in the trash, not expired."""
    return (*owned_task(user_id, task_id), IN_TRASH, TASKS.c.deleted_at >= retention_cutoff())


def trash_task(user_id: str, task_id: int, *, versions: list[int] | None) -> bool:
    """Move the task to the trash if it has one of ``versions`` (None: any).

    False when no task matched: missing, in the trash, or at another version.
    """
    if not can_exist(task_id):
        return False
    with atomic():
        trashed = execute_with_change_number(
            user_id,
            update(TASKS)
            .where(*owned_task(user_id, task_id), NOT_IN_TRASH, version_matches(versions))
            .values(**trashing())
            .returning(TASKS.c.id, TASKS.c.change_number),
        )
        if trashed:
            delete_tag_rows(user_id, [task_id])
    return bool(trashed)


def trash_completed(user_id: str) -> int:
    """Move every completed task of the user to the trash ("clear completed"); how many."""
    completed = (TASKS.c.user_id == user_id, TASKS.c.completed == true(), NOT_IN_TRASH)
    with atomic():
        claim_change_number(user_id)  # the user's lock before the tag rows' (docs/design.md)
        delete_tag_rows(user_id, select(TASKS.c.id).where(*completed).scalar_subquery())
        trashed = execute_with_change_number(
            user_id,
            update(TASKS)
            .where(*completed)
            .values(**trashing())
            .returning(TASKS.c.id, TASKS.c.change_number),
        )
    return len(trashed)


def trashing() -> dict:
    """The SET values that move a task to the trash."""
    now = utcnow()
    return {"deleted_at": now, **new_version(now)}


def restore_task(user_id: str, task_id: int) -> RowMapping | None:
    """Bring the task back from the trash with a new version; None if it is not there."""
    if not can_exist(task_id):
        return None
    with atomic():
        rows = execute_with_change_number(
            user_id,
            update(TASKS)
            .where(*in_trash(user_id, task_id))
            .values(deleted_at=None, **new_version())
            .returning(*TASKS.c),
        )
        if rows:
            insert_tag_rows(rows)
    return rows[0] if rows else None


def erase_task(user_id: str, task_id: int) -> bool:
    """Delete the task from the trash for good; False if it is not there."""
    if not can_exist(task_id):
        return False
    return erase(user_id, in_trash(user_id, task_id)) > 0


def empty_trash(user_id: str) -> int:
    """Delete every task in the user's trash for good (expired ones too); how many."""
    return erase(user_id, (TASKS.c.user_id == user_id, IN_TRASH))


def erase(user_id: str, where: tuple) -> int:
    """Delete the tasks ``where`` selects, leaving a tombstone for each."""
    with atomic():
        number = claim_change_number(user_id)
        connection = db.session.connection()
        erased = connection.execute(
            delete(TASKS).where(*where).returning(TASKS.c.id, TASKS.c.deleted_at)
        ).all()
        if erased:
            now = utcnow()
            connection.execute(
                insert(TOMBSTONES),
                [
                    {
                        "task_id": task_id,
                        "user_id": user_id,
                        "change_number": number,
                        "deleted_at": deleted_at,
                        "erased_at": now,
                    }
                    for task_id, deleted_at in erased
                ],
            )
    return len(erased)


def purge_expired_trash() -> tuple[int, int]:
    """Delete every expired task in the trash, and tombstones past the retention; how many.

    Each DELETE commits by itself, without the request time limit (nobody
    waits on it). No tombstones are left for expired tasks: any change-feed
    token old enough to need one is refused already (410).
    """
    expired = retention_cutoff()
    unlimited = {NO_STATEMENT_TIMEOUT: True}
    connection = db.session.connection()
    tasks = connection.execute(
        delete(TASKS).where(IN_TRASH, TASKS.c.deleted_at < expired).execution_options(**unlimited)
    ).rowcount
    tombstones = connection.execute(
        delete(TOMBSTONES)
        .where(TOMBSTONES.c.erased_at < expired - TOMBSTONE_MARGIN)
        .execution_options(**unlimited)
    ).rowcount
    db.session.commit()
    return tasks, tombstones


def fetch_trash_page(user_id: str, limit: int, after: Position | None) -> Page:
    """Up to ``limit`` trashed tasks after ``after``, where the next page starts, and the total."""
    parameters = {"user_id": user_id, "cutoff": retention_cutoff()}
    return fetch_page(TRASH_ORDER, trash_page_statement, TRASH_TOTAL, parameters, limit, after)


@lru_cache(maxsize=2)
def trash_page_statement(segment: int, resume: bool) -> Select:
    total = TRASH_TOTAL.scalar_subquery().label("total")
    return TRASH_ORDER.paged(select(*READ_COLUMNS, total).where(*LISTED), segment, resume)
