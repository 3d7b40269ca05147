"""The change feed (docs/api.md, "Change feed (sync)"): a user's changes after a
position, and the reading policy: when a token is too old, or the feed began again."""

from __future__ import annotations

import time
from typing import NamedTuple

from sqlalchemy import RowMapping, Select, bindparam, cast, null, select, true

from .change_numbers import USERS
from .database import statement_connection
from .keyset import Keyset, Position, after_parameters
from .retention import retention_cutoff
from .tasks_table import NOT_IN_TRASH, READ_COLUMNS, TASKS, TOMBSTONES

# Changes in the order their numbers were taken; one transaction's share a number.
TASK_CHANGES = Keyset(TASKS.c.change_number, TASKS.c.id)
ERASURES = Keyset(TOMBSTONES.c.change_number, TOMBSTONES.c.task_id)
START = Position(0, 0, 0)
# A deletion's time is taken before its transaction commits, so a reader may
# miss a deletion timed a little before the reader's own start: count a
# reader as caught up this much earlier than it started reading.
COMMIT_DELAY_MARGIN = 3600


class FeedToken(NamedTuple):
    """What a change-feed token holds: where its reader stands, and when it was
    last caught up (POSIX seconds; the token ages from then)."""

    position: Position
    caught_up_at: int


class ChangePage(NamedTuple):
    changes: list[RowMapping]  # task rows; deleted_at set: a deletion
    next_position: Position
    more: bool


class TokenExpired(Exception):
    """The token predates the retention (deletions since may have been forgotten),
    or the feed began again since it was issued."""


def read_changes(user_id: str, since: FeedToken | None, limit: int) -> tuple[ChangePage, FeedToken]:
    """A page of the feed after ``since`` (None: a first sync), and the next token's contents.

    TokenExpired for a token whose reader was last caught up before the
    retention, or one from before the user's feed began again.
    """
    started = reading_started()
    position, caught_up_at = None, started  # a first sync: caught up from its start on
    if since is not None:
        if since.caught_up_at < retention_cutoff().timestamp():
            raise TokenExpired
        position, caught_up_at = since
    page = fetch_changes(user_id, position, limit)
    if not page.more:
        caught_up_at = started
    return page, FeedToken(page.next_position, caught_up_at)


def reading_started() -> int:
    """A caught-up time for a read that starts now (see COMMIT_DELAY_MARGIN)."""
    return int(time.time()) - COMMIT_DELAY_MARGIN


def fetch_changes(user_id: str, position: Position | None, limit: int) -> ChangePage:
    """Up to ``limit`` changes after ``position`` (None: every live task), and where to go on.

    One SELECT: one snapshot of the tasks, the tombstones and the user's counter
    (the horizon), so a page that is not full has all up to the horizon (docs/design.md).
    """
    statement = CHANGES if position is not None else FIRST_SYNC
    position = position or START
    parameters = {"user_id": user_id, "limit": limit + 1} | after_parameters(position)
    with statement_connection() as database:
        rows = database.execute(statement, parameters).mappings().all()
    horizon = rows[0]["horizon"] if rows else 0  # no row: the user's row is gone
    if position.value > horizon + 1:
        # Past any number this user's counter has given: the token is from before
        # the user's row was made again (an operator deleted it) or the database
        # was restored from a backup. What it had read may be gone.
        raise TokenExpired
    changes = sorted(
        (row for row in rows if row["id"] is not None),
        key=lambda row: (row["change_number"], row["id"]),
    )
    next_position = TASK_CHANGES.next_position(changes, limit)
    if next_position is not None:
        return ChangePage(changes[:limit], next_position, True)
    # Every change up to the horizon was in this snapshot, and all of them are read.
    caught_up = Position(0, horizon + 1, 0) if horizon >= position.value else position
    return ChangePage(changes, caught_up, False)


def changes_statement(include_erasures: bool) -> Select:
    """The page query, with the horizon. Without erasures: the live tasks (a first sync)."""
    user_id = bindparam("user_id")
    tasks = select(*READ_COLUMNS).where(TASKS.c.user_id == user_id)
    if not include_erasures:
        tasks = tasks.where(NOT_IN_TRASH)
    changes = TASK_CHANGES.paged(tasks).subquery().select()
    if include_erasures:
        changes = changes.union_all(erasures(user_id))
    changes = changes.subquery("changes")
    return (
        select(USERS.c.change_number.label("horizon"), changes)
        .select_from(USERS.outerjoin(changes, true()))
        .where(USERS.c.id == user_id)
    )


def erasures(user_id) -> Select:
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
    tombstones = select(*columns).where(TOMBSTONES.c.user_id == user_id)
    return ERASURES.paged(tombstones).subquery().select()


FIRST_SYNC = changes_statement(include_erasures=False)
CHANGES = changes_statement(include_erasures=True)
