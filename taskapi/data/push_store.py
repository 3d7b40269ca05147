"""Data access for Web Push (contract 4.10): users' subscriptions, and the dispatcher's claims.

Subscriptions: one row per endpoint. Saving an endpoint again updates its
keys; saved by another user, the row moves to them (a browser profile
signed into another account). At most ``PUSH_SUBSCRIPTIONS_PER_USER_MAX``
per user: the count and the insert run in one transaction that holds the
user's row, so two requests at once cannot both add the twentieth.

Deliveries: a reminder is a task at one ``remind_at``; it goes to every
subscription its owner had when it came due. When it comes due, it gets one
push_deliveries row per subscription (``fan_out``; the primary key makes
that once, whoever runs it), free to take. A dispatcher may push only a row
it claimed (``claim``: one UPDATE that sets ``claimed_by`` and a lease only
where the lease has come, so one dispatcher wins each row). It renews the
lease while the push is in flight (``renew``); a dispatcher that died
leaves only those claims, which lapse and are taken over. Every statement
commits on its own, so no transaction is open while a push is on the
network; and every write to a claimed row names the claiming dispatcher, so
one whose lease was taken over changes nothing. docs/design.md ("Reminders
by Web Push") says why that sends each reminder once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    RowMapping,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    not_,
    or_,
    select,
    tuple_,
    update,
)

from ..extensions import db
from .database import NO_STATEMENT_TIMEOUT, atomic, dialect_insert
from .models import (
    PUSH_SUBSCRIPTIONS_PER_USER_MAX,
    TASK_ID_MAX,
    PushDelivery,
    PushSubscription,
    User,
    utcnow,
)
from .tasks_table import NOT_IN_TRASH, TASKS

SUBSCRIPTIONS = PushSubscription.__table__
DELIVERIES = PushDelivery.__table__
# What a subscription shows its owner: never its keys.
SHOWN_COLUMNS = (SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.endpoint, SUBSCRIPTIONS.c.created_at)
DELIVERY_KEY = (DELIVERIES.c.task_id, DELIVERIES.c.remind_at, DELIVERIES.c.subscription_id)


# Subscriptions (the web side).


def save_subscription(
    user_id: str, endpoint: str, p256dh: str, auth: str, expiration_time: datetime | None
) -> tuple[RowMapping, bool] | None:
    """Create or update the subscription for ``endpoint``, now the user's.

    Returns the row and whether it is new to the user (created, or moved from
    another user); None when the user has the most subscriptions already.
    """
    now = utcnow()
    with atomic():
        connection = db.session.connection()
        # Holds the user's row to the end: the user's saves run one at a time.
        connection.execute(select(User.id).where(User.id == user_id).with_for_update())
        owner = connection.execute(
            select(SUBSCRIPTIONS.c.user_id).where(SUBSCRIPTIONS.c.endpoint == endpoint)
        ).scalar()
        if owner != user_id:
            count = connection.execute(
                select(func.count()).where(SUBSCRIPTIONS.c.user_id == user_id)
            ).scalar()
            if count >= PUSH_SUBSCRIPTIONS_PER_USER_MAX:
                return None
        insert = dialect_insert(SUBSCRIPTIONS).values(
            user_id=user_id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            expiration_time=expiration_time,
            created_at=now,
            updated_at=now,
        )
        same_owner = SUBSCRIPTIONS.c.user_id == insert.excluded.user_id
        row = (
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[SUBSCRIPTIONS.c.endpoint],
                    set_={
                        "user_id": insert.excluded.user_id,
                        "p256dh": insert.excluded.p256dh,
                        "auth": insert.excluded.auth,
                        "expiration_time": insert.excluded.expiration_time,
                        "updated_at": insert.excluded.updated_at,
                        # Moved to another user: new to them, and only their
                        # reminders from now on reach it.
                        "created_at": case(
                            (same_owner, SUBSCRIPTIONS.c.created_at),
                            else_=insert.excluded.created_at,
                        ),
                    },
                ).returning(*SHOWN_COLUMNS)
            )
            .mappings()
            .one()
        )
    return row, row["created_at"] == now


def list_subscriptions(user_id: str) -> list[RowMapping]:
    statement = (
        select(*SHOWN_COLUMNS)
        .where(SUBSCRIPTIONS.c.user_id == user_id)
        .order_by(SUBSCRIPTIONS.c.id)
    )
    return db.session.connection().execute(statement).mappings().all()


def delete_subscription(user_id: str, subscription_id: int) -> bool:
    if subscription_id > TASK_ID_MAX:  # past the column's range: cannot exist
        return False
    statement = delete(SUBSCRIPTIONS).where(
        SUBSCRIPTIONS.c.id == subscription_id, SUBSCRIPTIONS.c.user_id == user_id
    )
    return db.session.connection().execute(statement).rowcount > 0


# Deliveries (the dispatcher's side).


class Claim(NamedTuple):
    """A reminder for one subscription that this dispatcher holds."""

    task_id: int
    remind_at: datetime
    subscription_id: int
    attempts: int
    due_since: datetime  # when its row was made: retries stop a TTL after it


class Push(NamedTuple):
    """What a claimed push sends, read right before it is sent."""

    claim: Claim
    user_id: str
    title: str
    due_at: datetime | None
    endpoint: str
    p256dh: str
    auth: str


CLAIM_COLUMNS = (*DELIVERY_KEY, DELIVERIES.c.attempts, DELIVERIES.c.created_at)


def clock() -> datetime:
    """Now, on the database server's clock: every dispatcher measures leases and due
    times by it, so one on a host whose clock runs ahead can neither take a claim
    another still holds nor send a reminder early. SQLite runs in this process: its
    clock is this host's."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return utcnow()
    return connection.execute(select(func.clock_timestamp())).scalar_one().astimezone(UTC)


def due_reminders(now: datetime, oldest: datetime):
    """Each live, pending task's reminder due in (``oldest``, ``now``], with each
    subscription its owner had by then, that has no row yet: (task_id, remind_at,
    subscription_id)."""
    return (
        select(TASKS.c.id, TASKS.c.remind_at, SUBSCRIPTIONS.c.id)
        .select_from(TASKS.join(SUBSCRIPTIONS, SUBSCRIPTIONS.c.user_id == TASKS.c.user_id))
        .where(
            # The terms of the partial index ix_tasks_remind_at_id, as written there.
            TASKS.c.remind_at.is_not(None),
            NOT_IN_TRASH,
            not_(TASKS.c.completed),
            TASKS.c.remind_at <= now,
            TASKS.c.remind_at > oldest,
            SUBSCRIPTIONS.c.created_at <= TASKS.c.remind_at,
            or_(SUBSCRIPTIONS.c.expiration_time.is_(None), SUBSCRIPTIONS.c.expiration_time > now),
            ~exists().where(
                DELIVERIES.c.task_id == TASKS.c.id,
                DELIVERIES.c.remind_at == TASKS.c.remind_at,
                DELIVERIES.c.subscription_id == SUBSCRIPTIONS.c.id,
            ),
        )
    )


def fan_out(now: datetime, oldest: datetime, limit: int) -> int:
    """Give each reminder that came due in (``oldest``, ``now``] its rows, one per
    subscription, ready to claim; how many were new (at most ``limit``).

    Any dispatcher may run it at any time: a row that exists already (another
    did it first) is left as it is.
    """
    due = (
        due_reminders(now, oldest)
        .add_columns(
            bindparam("lease_until", now, type_=DELIVERIES.c.lease_until.type),
            bindparam("created", now, type_=DELIVERIES.c.created_at.type),
        )
        .order_by(TASKS.c.remind_at)
        .limit(limit)
    )
    statement = (
        dialect_insert(DELIVERIES)
        .from_select(["task_id", "remind_at", "subscription_id", "lease_until", "created_at"], due)
        .on_conflict_do_nothing()
        .returning(DELIVERIES.c.task_id)
    )
    return len(db.session.connection().execute(statement).all())


def claim(dispatcher: str, limit: int, now: datetime, lease: float) -> list[Claim]:
    """Claim up to ``limit`` rows that are free to take (``lease_until`` has come): new
    reminders, retries that are due, and claims of dispatchers that died.

    One UPDATE whose WHERE checks the lease again on the row it changes: of
    dispatchers claiming the same row at once, one changes it and the others
    find the new lease and pass (PostgreSQL re-reads the row after the first
    commits; SQLite has one writer at a time). ``SKIP LOCKED`` lets them pick
    different rows instead of waiting for each other.
    """
    available = DELIVERIES.c.lease_until.is_not(None), DELIVERIES.c.lease_until <= now
    candidates = (
        select(*DELIVERY_KEY)
        .where(*available)
        .order_by(DELIVERIES.c.lease_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(DELIVERIES)
        .where(tuple_(*DELIVERY_KEY).in_(candidates), *available)
        .values(claimed_by=dispatcher, lease_until=now + timedelta(seconds=lease))
        .returning(*CLAIM_COLUMNS)
    )
    return [Claim(*row) for row in db.session.connection().execute(statement).all()]


def pushes_for(claims: list[Claim]) -> tuple[list[Push], list[Claim]]:
    """The pushes the claims still stand for, and the claims that no longer do:
    the task was completed, trashed or erased, or its reminder moved or cleared;
    or the subscription is gone or belongs to someone else now."""
    if not claims:
        return [], []
    rows = db.session.connection().execute(
        select(
            TASKS.c.id,
            SUBSCRIPTIONS.c.id,
            TASKS.c.remind_at,
            TASKS.c.user_id,
            TASKS.c.title,
            TASKS.c.due_at,
            SUBSCRIPTIONS.c.endpoint,
            SUBSCRIPTIONS.c.p256dh,
            SUBSCRIPTIONS.c.auth,
        )
        .select_from(TASKS.join(SUBSCRIPTIONS, SUBSCRIPTIONS.c.user_id == TASKS.c.user_id))
        .where(
            tuple_(TASKS.c.id, SUBSCRIPTIONS.c.id).in_(
                [(claim.task_id, claim.subscription_id) for claim in claims]
            ),
            NOT_IN_TRASH,
            not_(TASKS.c.completed),
        )
    )
    found = {(row[0], row[1]): row for row in rows}
    pushes, stale = [], []
    for claim in claims:
        row = found.get((claim.task_id, claim.subscription_id))
        if row is None or row[2] != claim.remind_at:
            stale.append(claim)
        else:
            pushes.append(Push(claim, *row[3:]))
    return pushes, stale


def is_claimed_by(dispatcher: str):
    return DELIVERIES.c.claimed_by == dispatcher


def claimed(dispatcher: str, claims: list[Claim]):
    """The WHERE clause for these claims, still this dispatcher's."""
    keys = [(claim.task_id, claim.remind_at, claim.subscription_id) for claim in claims]
    return and_(tuple_(*DELIVERY_KEY).in_(keys), is_claimed_by(dispatcher))


def finish(
    dispatcher: str, claims: list[Claim], outcome: str, now: datetime, *, attempted: bool
) -> None:
    """Record what became of the claims; they are never sent again."""
    if not claims:
        return
    db.session.connection().execute(
        update(DELIVERIES)
        .where(claimed(dispatcher, claims))
        .values(
            claimed_by=None,
            lease_until=None,
            outcome=outcome,
            finished_at=now,
            attempts=DELIVERIES.c.attempts + int(attempted),
        )
    )


def forget(dispatcher: str, claims: list[Claim]) -> None:
    """Delete the rows of claims that no longer stand for a push (nothing was sent):
    if the change is undone (the task restored or reopened, the reminder set back),
    the next fan-out makes the row again and the reminder goes out once."""
    if claims:
        db.session.connection().execute(delete(DELIVERIES).where(claimed(dispatcher, claims)))


def retry_later(dispatcher: str, retries: list[tuple[Claim, datetime]]) -> None:
    """Give the claims up until their retry time, when any dispatcher may take them."""
    if not retries:
        return
    db.session.connection().execute(
        update(DELIVERIES)
        .where(
            DELIVERIES.c.task_id == bindparam("key_task_id"),
            DELIVERIES.c.remind_at == bindparam("key_remind_at", type_=DELIVERIES.c.remind_at.type),
            DELIVERIES.c.subscription_id == bindparam("key_subscription_id"),
            is_claimed_by(dispatcher),
        )
        .values(
            claimed_by=None,
            lease_until=bindparam("retry_at", type_=DELIVERIES.c.lease_until.type),
            attempts=DELIVERIES.c.attempts + 1,
        ),
        [
            {
                "key_task_id": claim.task_id,
                "key_remind_at": claim.remind_at,
                "key_subscription_id": claim.subscription_id,
                "retry_at": at,
            }
            for claim, at in retries
        ],
    )


def end_subscriptions(subscription_ids: list[int]) -> None:
    """Delete subscriptions their push service says are gone (404, 410), with their rows."""
    if subscription_ids:
        db.session.connection().execute(
            delete(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id.in_(subscription_ids))
        )


def renew(dispatcher: str, now: datetime, lease: float) -> None:
    """Extend the lease of every claim the dispatcher holds (pushes in flight)."""
    db.session.connection().execute(
        update(DELIVERIES)
        .where(is_claimed_by(dispatcher), DELIVERIES.c.lease_until.is_not(None))
        .values(lease_until=now + timedelta(seconds=lease))
    )


def release(dispatcher: str, now: datetime) -> int:
    """Give up every claim the dispatcher holds, for another to take at once; how many."""
    return (
        db.session.connection()
        .execute(
            update(DELIVERIES)
            .where(is_claimed_by(dispatcher), DELIVERIES.c.lease_until.is_not(None))
            .values(claimed_by=None, lease_until=now)
        )
        .rowcount
    )


def mark_too_late(now: datetime, newest: datetime, oldest: datetime) -> int:
    """Record, once, reminders that came due in (``oldest``, ``newest``] and were never
    claimed (no dispatcher ran): they are not sent; how many (for the log)."""
    late = due_reminders(now, oldest).where(TASKS.c.remind_at <= newest)
    statement = (
        dialect_insert(DELIVERIES)
        .from_select(
            ["task_id", "remind_at", "subscription_id", "outcome", "created_at", "finished_at"],
            late.add_columns(
                bindparam("outcome", "late"),
                bindparam("created", now, type_=DELIVERIES.c.created_at.type),
                bindparam("finished", now, type_=DELIVERIES.c.finished_at.type),
            ),
        )
        .on_conflict_do_nothing()
        .returning(DELIVERIES.c.task_id)
    )
    return len(db.session.connection().execute(statement).all())


def purge(finished_before: datetime, now: datetime) -> None:
    """Forget deliveries of reminders older than ``finished_before`` (they can never
    be due again), and subscriptions past their expiration time."""
    connection = db.session.connection()
    unlimited = {NO_STATEMENT_TIMEOUT: True}
    connection.execute(
        delete(DELIVERIES)
        .where(DELIVERIES.c.lease_until.is_(None), DELIVERIES.c.remind_at < finished_before)
        .execution_options(**unlimited)
    )
    connection.execute(
        delete(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.expiration_time < now)
        .execution_options(**unlimited)
    )
