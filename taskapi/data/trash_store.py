"""Data access for the trash (contract 4.7): trashing, listing, restoring and erasing tasks.

A task in the trash is a row of tasks with ``deleted_at`` set. For everything
else (``taskapi.data.task_store``, ``taskapi.data.tag_store``) it is gone: it has no
task_tags rows while it is there (its ``tags`` stay on the row, and come back
with it), so tag lists and counts leave it out with no extra condition. A
trashed recurring task cannot be completed, so it spawns nothing.

After ``TRASH_RETENTION_DAYS`` a trashed task has expired: it is never listed,
restored or erased one by one, and ``purge_expired`` (``flask --app taskapi
purge-trash``) deletes it. A task erased from the trash leaves a tombstone
(for the change feed) that is kept as long.

Every write takes the user's change number (``taskapi.data.change_numbers``), in
the transaction that also moves the task's tag rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import (
    RowMapping,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)

from ..extensions import db
from .change_numbers import claim, run_stamped
from .database import NO_STATEMENT_TIMEOUT, atomic
from .models import Tombstone, utcnow
from .pagination import Page, Position, TaskQuery, position_of
from .task_store import (
    LIVE,
    READ_COLUMNS,
    TAGS,
    TASKS,
    can_exist,
    insert_tag_rows,
    owned_task,
    version_matches,
)

TOMBSTONES = Tombstone.__table__
TRASHED = TASKS.c.deleted_at.is_not(None)
# Tombstones outlive the retention by this much: a change-feed token is refused
# (410) from the retention on, by whichever server's clock, so no token that is
# still accepted can need a tombstone that was purged.
TOMBSTONE_MARGIN = timedelta(days=1)


def cutoff() -> datetime:
    """Tasks trashed before this moment have expired (and change-feed tokens whose
    reader was last caught up before it)."""
    try:
        return utcnow() - timedelta(days=current_app.config["TRASH_RETENTION_DAYS"])
    except OverflowError:  # a retention longer than the calendar: nothing expires
        return datetime.min.replace(tzinfo=UTC)


def in_trash(user_id: str, task_id: int) -> tuple:
    """The WHERE clause for one of the user's tasks in the trash, not expired."""
    return (*owned_task(user_id, task_id), TRASHED, TASKS.c.deleted_at >= cutoff())


def trash_task(user_id: str, task_id: int, *, versions: list[int] | None) -> bool:
    """Move the task to the trash if it has one of ``versions`` (None: any).

    False when no task matched: missing, in the trash, or at another version.
    """
    if not can_exist(task_id):
        return False
    with atomic():
        trashed = run_stamped(
            user_id,
            update(TASKS)
            .where(*owned_task(user_id, task_id), LIVE, version_matches(versions))
            .values(**trashing())
            .returning(TASKS.c.id, TASKS.c.change_number),
        )
        if trashed:
            db.session.connection().execute(
                delete(TAGS).where(TAGS.c.user_id == user_id, TAGS.c.task_id == task_id)
            )
    return bool(trashed)


def trash_completed(user_id: str) -> int:
    """Move every completed task of the user to the trash ("clear completed"); how many."""
    completed = (TASKS.c.user_id == user_id, TASKS.c.completed == true(), LIVE)
    with atomic():
        claim(user_id)  # the user's lock before the tag rows' (taskapi.data.change_numbers)
        connection = db.session.connection()
        connection.execute(
            delete(TAGS).where(
                TAGS.c.user_id == user_id,
                TAGS.c.task_id.in_(select(TASKS.c.id).where(*completed).scalar_subquery()),
            )
        )
        trashed = run_stamped(
            user_id,
            update(TASKS)
            .where(*completed)
            .values(**trashing())
            .returning(TASKS.c.id, TASKS.c.change_number),
        )
    return len(trashed)


def trashing() -> dict:
    now = utcnow()
    return {"deleted_at": now, "updated_at": now, "version": TASKS.c.version + 1}


def restore_task(user_id: str, task_id: int) -> RowMapping | None:
    """Bring the task back from the trash with a new version; None if it is not there."""
    if not can_exist(task_id):
        return None
    with atomic():
        rows = run_stamped(
            user_id,
            update(TASKS)
            .where(*in_trash(user_id, task_id))
            .values(deleted_at=None, updated_at=utcnow(), version=TASKS.c.version + 1)
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
    return erase(user_id, (TASKS.c.user_id == user_id, TRASHED))


def erase(user_id: str, where: tuple) -> int:
    """Delete the tasks ``where`` selects, leaving a tombstone for each."""
    with atomic():
        number = claim(user_id)
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


def purge_expired() -> tuple[int, int]:
    """Delete every expired task in the trash, and tombstones past the retention; how many.

    Each DELETE commits by itself, without the request time limit (nobody
    waits on it). No tombstones are left for expired tasks: any change-feed
    token old enough to need one is refused already (410).
    """
    expired = cutoff()
    unlimited = {NO_STATEMENT_TIMEOUT: True}
    connection = db.session.connection()
    tasks = connection.execute(
        delete(TASKS).where(TRASHED, TASKS.c.deleted_at < expired).execution_options(**unlimited)
    ).rowcount
    tombstones = connection.execute(
        delete(TOMBSTONES)
        .where(TOMBSTONES.c.erased_at < expired - TOMBSTONE_MARGIN)
        .execution_options(**unlimited)
    ).rowcount
    db.session.commit()
    return tasks, tombstones


# Listing: latest deletion first, in keyset pages like the task list.

TRASH_ORDER = "-deleted_at"
LISTED = (
    TASKS.c.user_id == bindparam("user_id"),
    TRASHED,
    TASKS.c.deleted_at >= bindparam("cutoff", type_=TASKS.c.deleted_at.type),
)
TRASH_TOTAL = select(func.count()).select_from(TASKS).where(*LISTED)
TRASH_PAGE = (
    select(*READ_COLUMNS, TRASH_TOTAL.scalar_subquery().label("total"))
    .where(*LISTED)
    .order_by(TASKS.c.deleted_at.desc(), TASKS.c.id.desc())
    .limit(bindparam("limit"))
)
TRASH_PAGE_AFTER = TRASH_PAGE.where(
    tuple_(TASKS.c.deleted_at, TASKS.c.id)
    < tuple_(
        bindparam("after_value", type_=TASKS.c.deleted_at.type),
        bindparam("after_id", type_=TASKS.c.id.type),
    )
)


def trash_query(user_id: str) -> TaskQuery:
    """The trash as a query: what its cursors are bound to."""
    return TaskQuery(user_id, "trash", "", TRASH_ORDER)


def fetch_trash_page(user_id: str, limit: int, after: Position | None) -> Page:
    """Up to ``limit`` trashed tasks after ``after``, where the next page starts, and the total."""
    connection = db.session.connection()
    parameters = {"user_id": user_id, "cutoff": cutoff(), "limit": limit + 1}
    if after is None:
        rows = connection.execute(TRASH_PAGE, parameters).mappings().all()
    else:
        parameters |= {"after_value": after.value, "after_id": after.id}
        rows = connection.execute(TRASH_PAGE_AFTER, parameters).mappings().all()
    total = rows[0]["total"] if rows else connection.execute(TRASH_TOTAL, parameters).scalar()
    tasks = rows[:limit]
    next_position = position_of(trash_query(user_id), tasks[-1]) if len(rows) > limit else None
    return Page(tasks, next_position, total)
