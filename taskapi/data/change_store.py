"""Data access for the change feed (contract 4.8): a user's changes after a position.

Every write of a task stamps it with the user's change number
(``taskapi.data.change_numbers`` explains why those are in commit order), and a task
erased from the trash leaves a tombstone with the number of the erasure. A
change is a row of either with a number after the reader's position; the
task's row is its latest state (a trashed task is a deletion). Positions are
``(change number, task id)``: one transaction gives every row it writes the
same number, and a page may end among them.

A page is one SELECT, so it reads one snapshot: the tasks, the tombstones and
the user's counter (the horizon) as of the same moment. Every change numbered
up to the horizon is in that snapshot; so when a page is not full, the reader
has everything up to the horizon, and the next position is past it.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import (
    Integer,
    RowMapping,
    bindparam,
    cast,
    null,
    select,
    true,
    tuple_,
)

from ..extensions import db
from .models import Tombstone, User
from .task_store import LIVE, READ_COLUMNS, TASKS

TOMBSTONES = Tombstone.__table__
USERS = User.__table__


class Position(NamedTuple):
    """The feed was read up to and including this change number and task id."""

    change_number: int
    task_id: int


START = Position(0, 0)


class ChangePage(NamedTuple):
    changes: list[RowMapping]  # task rows; deleted_at set: a deletion
    next_position: Position
    more: bool


def after(number_column, id_column):
    return tuple_(number_column, id_column) > tuple_(
        bindparam("after_number", type_=number_column.type),
        bindparam("after_id", type_=Integer),
    )


def in_feed_order(statement, number_column, id_column):
    return statement.order_by(number_column, id_column).limit(bindparam("limit"))


def page_statement(include_deletions: bool):
    """The page query, with the horizon. Without deletions: the live tasks (a first sync)."""
    user_id = bindparam("user_id")
    tasks = select(*READ_COLUMNS).where(
        TASKS.c.user_id == user_id, after(TASKS.c.change_number, TASKS.c.id)
    )
    if not include_deletions:
        tasks = tasks.where(LIVE)
    changes = in_feed_order(tasks, TASKS.c.change_number, TASKS.c.id).subquery().select()
    if include_deletions:
        changes = changes.union_all(tombstone_page(user_id))
    changes = changes.subquery("changes")
    return (
        select(USERS.c.change_number.label("horizon"), changes)
        .select_from(USERS.outerjoin(changes, true()))
        .where(USERS.c.id == user_id)
    )


def tombstone_page(user_id):
    """The user's tombstones after the position, as rows of the tasks' shape.

    A tombstone has an id, an owner, a number and ``deleted_at``; the other
    columns are null.
    """
    kept = {
        "id": TOMBSTONES.c.task_id,
        "user_id": TOMBSTONES.c.user_id,
        "deleted_at": TOMBSTONES.c.deleted_at,
        "change_number": TOMBSTONES.c.change_number,
    }
    columns = [
        kept[column.name].label(column.name)
        if column.name in kept
        else cast(null(), column.type).label(column.name)
        for column in READ_COLUMNS
    ]
    tombstones = select(*columns).where(
        TOMBSTONES.c.user_id == user_id,
        after(TOMBSTONES.c.change_number, TOMBSTONES.c.task_id),
    )
    ordered = in_feed_order(tombstones, TOMBSTONES.c.change_number, TOMBSTONES.c.task_id)
    return ordered.subquery().select()


FIRST_SYNC = page_statement(include_deletions=False)
CHANGES = page_statement(include_deletions=True)


class FeedRewound(Exception):
    """The position lies beyond the user's counter: the feed began again since."""


def fetch_changes(user_id: str, position: Position | None, limit: int) -> ChangePage:
    """Up to ``limit`` changes after ``position`` (None: every live task), and where to go on."""
    statement = CHANGES if position is not None else FIRST_SYNC
    position = position or START
    parameters = {
        "user_id": user_id,
        "after_number": position.change_number,
        "after_id": position.task_id,
        "limit": limit + 1,
    }
    rows = db.session.connection().execute(statement, parameters).mappings().all()
    horizon = rows[0]["horizon"] if rows else 0  # no row: the user's row is gone
    if position.change_number > horizon + 1:
        # Past any number this user's counter has given: the token is from before
        # the user's row was made again (an operator deleted it) or the database
        # was restored from a backup. What it had read may be gone.
        raise FeedRewound
    changes = sorted(
        (row for row in rows if row["id"] is not None),
        key=lambda row: (row["change_number"], row["id"]),
    )
    if len(changes) > limit:
        last = changes[limit - 1]
        return ChangePage(changes[:limit], Position(last["change_number"], last["id"]), True)
    # Every change up to the horizon was in this snapshot, and all of them are read.
    caught_up = Position(horizon + 1, 0) if horizon >= position.change_number else position
    return ChangePage(changes, caught_up, False)
