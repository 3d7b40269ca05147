"""Tags (docs/api.md, "Tags"): the user's tag list, renaming and removing a tag.

Renaming or removing a tag rewrites each task that carries it, in one
transaction, with a new version and change number like any other write.
Trashed tasks have no task_tags rows: their tags stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import RowMapping, bindparam, func, select, update

from ..extensions import db
from .change_numbers import claim_change_number
from .database import atomic
from .models import folded
from .tasks_table import TAGS, TASKS, new_version, one_row, replace_tag_rows

COUNTS = (
    select(TAGS.c.name_folded, func.count().label("count"))
    .where(TAGS.c.user_id == bindparam("user_id"))
    .group_by(TAGS.c.name_folded)
    .subquery("counts")
)
SPELLINGS = TAGS.alias("spellings")
# Where tasks spell a tag differently ("Work", "work"), the list shows the spelling
# of the oldest task that carries it: one index probe per tag, where taking the
# first spelling in some order would read every row's name.
SELECT_TAGS = select(
    select(SPELLINGS.c.name)
    .where(
        SPELLINGS.c.user_id == bindparam("user_id"),
        SPELLINGS.c.name_folded == COUNTS.c.name_folded,
    )
    .order_by(SPELLINGS.c.task_id)
    .limit(1)
    .scalar_subquery()
    .label("name"),
    COUNTS.c.count,
).order_by(COUNTS.c.name_folded)
SELECT_TAG = SELECT_TAGS.where(COUNTS.c.name_folded == bindparam("name_folded"))
WRITE_TAGS = (
    update(TASKS)
    .where(TASKS.c.id == bindparam("task_id"), TASKS.c.user_id == bindparam("owner"))
    .values(tags=bindparam("new_tags"))
)


def list_tags(user_id: str) -> list[RowMapping]:
    """Every tag on the user's tasks with how many carry it, sorted case-insensitively."""
    connection = db.session.connection()
    return connection.execute(SELECT_TAGS, {"user_id": user_id}).mappings().all()


def rename_tag(user_id: str, name: str, new_name: str) -> RowMapping | None:
    """Rename tag ``name`` to ``new_name`` on every task (merged where a task has both).

    The renamed tag takes the new spelling at the first of the two places, and
    so does every task that had ``new_name`` spelled otherwise: the tag is
    then spelled as asked everywhere. Returns the tag as the list shows it
    now; None when no task has ``name``.
    """
    old, new = folded(name), folded(new_name)

    def renamed(tags: list[str]) -> list[str]:
        result: list[str] = []
        for tag in tags:
            if folded(tag) not in (old, new):
                result.append(tag)
            elif new_name not in result:
                result.append(new_name)
        return result

    with atomic():
        if find_tag(user_id, old) is None:
            return None
        rewrite_tasks(user_id, (old, new), renamed)
        return find_tag(user_id, new)


def find_tag(user_id: str, name_folded: str) -> RowMapping | None:
    """The tag as the list shows it, or None when no task of the user carries it."""
    return one_row(SELECT_TAG, {"user_id": user_id, "name_folded": name_folded})


def delete_tag(user_id: str, name: str) -> bool:
    """Remove tag ``name`` from every task; False when no task has it."""
    old = folded(name)
    with atomic():
        return rewrite_tasks(user_id, (old,), lambda tags: [t for t in tags if folded(t) != old])


def rewrite_tasks(
    user_id: str, names_folded: tuple[str, ...], rewrite: Callable[[list], list]
) -> bool:
    """Apply ``rewrite`` to the tags of each task carrying one of the tags; False if none does.

    Only tasks whose tags change are written (renaming "Work" to "Work" writes none).

    The tasks are locked (PostgreSQL) or the database is (SQLite, in
    ``atomic()``), so a concurrent write of a task's tags is not lost: it
    waits, and then replaces the whole array as it meant to.
    """
    number = claim_change_number(user_id)  # the user's lock first, then the tasks' (docs/design.md)
    carrying = (
        select(TAGS.c.task_id)
        .where(TAGS.c.user_id == user_id, TAGS.c.name_folded.in_(names_folded))
        .scalar_subquery()
    )
    connection = db.session.connection()
    tasks = (
        connection.execute(
            select(TASKS.c.id, TASKS.c.user_id, TASKS.c.tags)
            .where(TASKS.c.user_id == user_id, TASKS.c.id.in_(carrying))
            .order_by(TASKS.c.id)  # locked in one order: two renames never deadlock
            .with_for_update()
        )
        .mappings()
        .all()
    )
    rewritten = [
        {"id": task["id"], "user_id": user_id, "tags": rewrite(task["tags"])} for task in tasks
    ]
    changed = [
        new for new, task in zip(rewritten, tasks, strict=True) if new["tags"] != task["tags"]
    ]
    if changed:
        connection.execute(
            WRITE_TAGS.values(**new_version(), change_number=number),
            [
                {"task_id": task["id"], "owner": user_id, "new_tags": task["tags"]}
                for task in changed
            ],
        )
        replace_tag_rows(changed)
    return bool(tasks)
