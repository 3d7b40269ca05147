"""Reads and writes of one task: get, create, update, complete, each scoped to its user.

Hot statements are built once and run as Core on the session's connection
(docs/design.md, "Writing a task", says why and how each write stays one statement).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import (
    RowMapping,
    String,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    not_,
    select,
    true,
    update,
)

from ..extensions import db
from ..recurrence import check_schedule, next_due_at
from .change_numbers import execute_with_change_number
from .database import atomic
from .models import utcnow
from .tasks_table import (
    NEXT_VERSION,
    NOT_IN_TRASH,
    READ_COLUMNS,
    TASKS,
    can_exist,
    insert_tag_rows,
    new_version,
    one_row,
    owned_task,
    replace_tag_rows,
    version_matches,
)

SELECT_TASK = select(*READ_COLUMNS).where(
    TASKS.c.id == bindparam("task_id"), TASKS.c.user_id == bindparam("user_id"), NOT_IN_TRASH
)
INSERT_TASK = insert(TASKS).returning(*TASKS.c)  # columns from the parameters
# Fields a write can send that need more than the one UPDATE: tag rows, or a
# check of the schedule against the values the write did not send.
TAG_AND_SCHEDULE_FIELDS = {"tags", "recurrence", "due_at", "time_zone"}
# What the next occurrence of a recurring task copies from the completed one.
COPIED_FIELDS = ("title", "description", "priority", "tags", "recurrence", "time_zone")


class Written(NamedTuple):
    """A task as a write left it, and the next occurrence that write created, if any."""

    task: RowMapping
    next_task: RowMapping | None = None


def get_task(user_id: str, task_id: int) -> RowMapping | None:
    if not can_exist(task_id):
        return None
    return one_row(SELECT_TASK, {"task_id": task_id, "user_id": user_id})


def task_exists(user_id: str, task_id: int) -> bool:
    return can_exist(task_id) and bool(
        db.session.scalar(select(exists().where(*owned_task(user_id, task_id), NOT_IN_TRASH)))
    )


def insert_task(user_id: str, fields: dict) -> RowMapping:
    now = utcnow()
    values = {"user_id": user_id, "created_at": now, "updated_at": now, **fields}
    if not values.get("tags") and values.get("recurrence") is None:
        return execute_with_change_number(user_id, INSERT_TASK, values)[0]
    check_schedule(values)
    with atomic():
        task = insert_with_tags(values)
        if task["recurrence"] is not None:  # the first of its series
            task = write_task(user_id, task["id"], {"series_id": task["id"]}, None, bump=False)
    return task


def insert_with_tags(values: dict) -> RowMapping:
    (task,) = execute_with_change_number(values["user_id"], INSERT_TASK, values)
    insert_tag_rows([task])
    return task


def update_task(
    user_id: str, task_id: int, changes: dict, *, versions: list[int] | None
) -> Written | None:
    """Apply ``changes`` if the task has one of ``versions`` (None: any).

    None when no task matched: missing, or at another version.
    """
    completing = changes.get("completed") is True
    if not completing and not changes.keys() & TAG_AND_SCHEDULE_FIELDS:
        task = write_task(user_id, task_id, changes, versions)
        return Written(task) if task else None
    values = dict(changes)
    if changes.get("recurrence") is not None:  # a task that recurs belongs to a series
        values["series_id"] = func.coalesce(TASKS.c.series_id, TASKS.c.id)
    if completing:
        recurrence = literal(changes.get("recurrence"), String) if "recurrence" in changes else None
        values |= spawned_at_version_assignment(true(), recurrence)
    with atomic():
        task = write_task(user_id, task_id, values, versions)
        if task is None:
            return None
        if changes.keys() & {"recurrence", "due_at", "time_zone"}:
            check_schedule(task)  # with the stored values the write did not send
        if "tags" in changes:
            replace_tag_rows([task])
        return Written(task, spawn_next(task))


def set_completed(
    user_id: str, task_id: int, completed: bool, *, versions: list[int] | None
) -> Written | None:
    """Set ``completed`` (``update_task`` with that one field)."""
    return update_task(user_id, task_id, {"completed": completed}, versions=versions)


def toggle_completed(user_id: str, task_id: int, *, versions: list[int] | None) -> Written | None:
    """Flip ``completed`` in one UPDATE; a recurring task completed spawns as ``update_task``."""
    flipped = not_(TASKS.c.completed)  # SET completed = NOT completed: the row's own value
    with atomic():
        task = write_task(
            user_id,
            task_id,
            {"completed": flipped, **spawned_at_version_assignment(flipped)},
            versions,
        )
        return Written(task, spawn_next(task)) if task else None


def spawned_at_version_assignment(completed, recurrence=None) -> dict:
    """The SET value of ``spawned_at_version``: this write's new version if it
    completes the recurring task for the first time, else unchanged.

    That is what makes a task spawn at most one next occurrence (docs/design.md).
    """
    recurs = (TASKS.c.recurrence if recurrence is None else recurrence).is_not(None)
    is_first = and_(
        TASKS.c.spawned_at_version.is_(None), TASKS.c.completed == false(), completed, recurs
    )
    return {"spawned_at_version": case((is_first, NEXT_VERSION), else_=TASKS.c.spawned_at_version)}


def spawn_next(task: RowMapping) -> RowMapping | None:
    """Insert the next occurrence if ``task`` was just completed for the first time."""
    if task["spawned_at_version"] != task["version"] or task["recurrence"] is None:
        return None
    due_at = next_due_at(task)
    if due_at is None:  # COUNT or UNTIL reached: the series ends here
        return None
    remind_at = task["remind_at"]
    if remind_at is not None:  # as long before (or after) the new due_at as before the old
        try:
            remind_at += due_at - task["due_at"]
        except OverflowError:  # a reminder near year 9999 has no later equal
            remind_at = None
    now = utcnow()
    return insert_with_tags(
        {name: task[name] for name in ("user_id", *COPIED_FIELDS, "series_id")}
        | {"occurrence": task["occurrence"] + 1, "due_at": due_at, "remind_at": remind_at}
        | {"created_at": now, "updated_at": now}
    )


def write_task(
    user_id: str, task_id: int, values: dict, versions: list[int] | None, *, bump: bool = True
) -> RowMapping | None:
    """One atomic UPDATE ... RETURNING: the If-Match check, the write and a new version."""
    if not can_exist(task_id):
        return None
    if bump:
        values = values | new_version()
    rows = execute_with_change_number(
        user_id,
        update(TASKS)
        .where(*owned_task(user_id, task_id), NOT_IN_TRASH, version_matches(versions))
        .values(**values)
        .returning(*TASKS.c),
    )
    return rows[0] if rows else None
