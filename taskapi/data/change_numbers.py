"""Each user's change counter: the order of the change feed (contract 4.8).

Every write of a user's tasks takes the user's next change number, and the
rows it writes (tasks, and tombstones of erased tasks) carry it. The counter
is ``users.change_number``, taken by ``UPDATE users SET change_number =
change_number + 1 ... RETURNING change_number`` in the same transaction as
the write; on PostgreSQL in the statement of the write itself (a CTE), so a
create stays one round trip.

Why the feed never skips a change: that UPDATE locks the user's row until the
write's transaction ends. Another write of the same user waits for the lock
and reads the counter only once the first has committed (PostgreSQL lets the
waiter go only after the commit is visible, then re-reads the row). So one
user's change numbers are handed out in commit order: a snapshot that holds
number N holds every smaller number too, because each of those committed
before N was even taken. A reader who has read every change up to N can never
later see a commit with a number <= N, however the writes interleaved, and
however long a write stayed open after taking its number. Timestamps or a
plain sequence give no such promise: a write that starts first and commits
last carries the smaller value, after readers have moved past it. On SQLite a
writer holds the database's write lock from its ``BEGIN IMMEDIATE`` to its
commit: numbers are in commit order there too.

The price is that one user's writes run one at a time (different users'
never wait for each other). A transaction takes the lock before any lock on
the user's tasks (its first write claims the number, bumping the counter
before it locks the task it writes, and ``claim`` is called first where a
transaction locks tasks before writing), so two writes of one user never
deadlock. Rows written by one transaction share its number;
the feed orders by (change number, task id).
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import (
    BigInteger,
    Executable,
    Insert,
    RowMapping,
    Update,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from .database import atomic, transaction_state
from .models import User

USERS = User.__table__
BUMP = (
    update(USERS)
    .where(USERS.c.id == bindparam("counter_user_id"))
    .values(change_number=USERS.c.change_number + 1)
    .returning(USERS.c.change_number)
)
# The same, as text for a CTE: as a construct, SQLAlchemy would also set the
# users columns that the parameters of the statement around it name (created_at).
BUMP_TEXT = text(
    "UPDATE users SET change_number = change_number + 1 "
    "WHERE id = :counter_user_id RETURNING change_number"
).columns(change_number=BigInteger)
CLAIMED = "change_numbers"


def claim(user_id: str) -> int:
    """The user's change number for the current transaction (``atomic()``), taken once."""
    claimed = transaction_state()
    if claimed is None:
        raise RuntimeError("change numbers are claimed inside atomic()")
    numbers = claimed.setdefault(CLAIMED, {})
    if user_id not in numbers:
        connection = db.session.connection()
        number = connection.execute(BUMP, {"counter_user_id": user_id}).scalar_one_or_none()
        if number is None:
            # The user's row is gone (an operator deleted it). Fail as the write
            # would have, on the foreign key: run_with_user_row makes the row again.
            raise IntegrityError("UPDATE users", None, LookupError("no users row"))
        numbers[user_id] = number
    return numbers[user_id]


def run_stamped(user_id: str, statement: Insert | Update, parameters=None) -> list[RowMapping]:
    """Execute ``statement`` (with RETURNING) with ``change_number`` set to the user's next.

    On PostgreSQL, a write that takes the number takes it in the same
    statement (a CTE): no extra round trip, alone or first in a transaction.
    Later writes of the transaction reuse the number. On SQLite, the number
    comes from a statement of its own before the write, in one transaction
    (local, so no round trip to speak of).
    """
    claimed = transaction_state()
    numbers = claimed.setdefault(CLAIMED, {}) if claimed is not None else {}
    # Inside a transaction, later writes must learn the number: only a RETURNING
    # that carries it tells them (else it is claimed first, in a statement of its own).
    tells_number = claimed is None or "change_number" in statement.exported_columns
    if user_id not in numbers and tells_number and db.engine.dialect.name == "postgresql":
        parameters = (parameters or {}) | {"counter_user_id": user_id}
        rows = rows_of(with_next_number(statement), parameters)
        if claimed is not None and rows and "change_number" in rows[0]:
            numbers[user_id] = rows[0]["change_number"]
        return rows
    with atomic():  # joins the current transaction, if any
        return rows_of(statement.values(change_number=claim(user_id)), parameters)


def rows_of(statement: Executable, parameters) -> list[RowMapping]:
    return db.session.connection().execute(statement, parameters).mappings().all()


@lru_cache(maxsize=64)  # the prebuilt statements (a create's INSERT) are built once
def with_next_number(statement: Insert | Update) -> Executable:
    """``statement`` taking the next number in a CTE (PostgreSQL).

    PostgreSQL evaluates the scalar subquery, and so runs the CTE's UPDATE,
    while it computes the new row: before it locks the task it writes (the
    lock order ``claim`` keeps). Should the write match no task, the CTE still
    runs: a number is skipped, which the feed does not mind.
    """
    bump = BUMP_TEXT.cte("change_number_bump")
    return statement.values(change_number=select(bump.c.change_number).scalar_subquery()).add_cte(
        bump
    )
