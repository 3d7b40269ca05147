"""Where a task's change number is taken: each user's counter, claimed once per
transaction by every write of the user's tasks (docs/design.md says why)."""

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
from .database import atomic, statement_connection, transaction_state
from .models import User

USERS = User.__table__
TAKE_NEXT_NUMBER = (
    update(USERS)
    .where(USERS.c.id == bindparam("counter_user_id"))
    .values(change_number=USERS.c.change_number + 1)
    .returning(USERS.c.change_number)
)
# The same, as text for a CTE: as a construct, SQLAlchemy would also set the
# users columns that the parameters of the statement around it name (created_at).
TAKE_NEXT_NUMBER_SQL = text(
    "UPDATE users SET change_number = change_number + 1 "
    "WHERE id = :counter_user_id RETURNING change_number"
).columns(change_number=BigInteger)
CLAIMED_NUMBERS = "change_numbers"


def claim_change_number(user_id: str) -> int:
    """The user's change number for the current transaction (``atomic()``), taken once."""
    claimed = transaction_state()
    if claimed is None:
        raise RuntimeError("change numbers are claimed inside atomic()")
    numbers = claimed.setdefault(CLAIMED_NUMBERS, {})
    if user_id not in numbers:
        connection = db.session.connection()
        number = connection.execute(
            TAKE_NEXT_NUMBER, {"counter_user_id": user_id}
        ).scalar_one_or_none()
        if number is None:
            # The user's row is gone (an operator deleted it). Fail as the write
            # would have, on the foreign key: run_with_user_row makes the row again.
            raise IntegrityError("UPDATE users", None, LookupError("no users row"))
        numbers[user_id] = number
    return numbers[user_id]


def execute_with_change_number(
    user_id: str, statement: Insert | Update, parameters=None
) -> list[RowMapping]:
    """Execute ``statement`` (with RETURNING) with ``change_number`` set to the user's next.

    On PostgreSQL, a write that takes the number takes it in the same
    statement (a CTE): no extra round trip, alone or first in a transaction.
    Later writes of the transaction reuse the number. On SQLite, the number
    comes from a statement of its own before the write, in one transaction
    (local, so no round trip to speak of).
    """
    claimed = transaction_state()
    numbers = claimed.setdefault(CLAIMED_NUMBERS, {}) if claimed is not None else {}
    # Inside a transaction, later writes must learn the number: only a RETURNING
    # that carries it tells them (else it is claimed first, in a statement of its own).
    returning_tells_later_writes = claimed is None or "change_number" in statement.exported_columns
    if (
        user_id not in numbers
        and returning_tells_later_writes
        and db.engine.dialect.name == "postgresql"
    ):
        parameters = (parameters or {}) | {"counter_user_id": user_id}
        rows = rows_of(with_next_number(statement), parameters)
        if claimed is not None and rows and "change_number" in rows[0]:
            numbers[user_id] = rows[0]["change_number"]
        return rows
    with atomic():  # joins the current transaction, if any
        return rows_of(statement.values(change_number=claim_change_number(user_id)), parameters)


def rows_of(statement: Executable, parameters) -> list[RowMapping]:
    with statement_connection() as database:
        return database.execute(statement, parameters).mappings().all()


@lru_cache(maxsize=64)  # the prebuilt statements (a create's INSERT) are built once
def with_next_number(statement: Insert | Update) -> Executable:
    """``statement`` taking the next number in a CTE (PostgreSQL).

    PostgreSQL evaluates the scalar subquery, and so runs the CTE's UPDATE,
    while it computes the new row: before it locks the task it writes (the
    lock order ``claim_change_number`` keeps). Should the write match no task, the CTE still
    runs: a number is skipped, which the feed does not mind.
    """
    taken = TAKE_NEXT_NUMBER_SQL.cte("change_number_bump")
    return statement.values(change_number=select(taken.c.change_number).scalar_subquery()).add_cte(
        taken
    )
