"""Idempotency-Key rows: claiming a key, storing the first response, forgetting expired keys."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update

from ..extensions import db
from .database import dialect_insert
from .models import IdempotencyKey, utcnow

KEY_LIFETIME = timedelta(hours=24)


def claim_key(user_id: str, key: str, request_hash: str) -> bool:
    """Insert the key row; False if it exists (after waiting for its writer).

    A concurrent claim of the same key waits on the row (PostgreSQL's ON
    CONFLICT waits for the other transaction; SQLite has one writer at a time).
    """
    statement = (
        dialect_insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=request_hash, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.key)
    )
    claimed = db.session.execute(statement).first() is not None
    if claimed:
        # Keep the table small: this user's expired keys go as new ones come.
        db.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.created_at < expiry_cutoff(),
            )
        )
    return claimed


def store_response(user_id: str, key: str, status_code: int, headers: str, body: str) -> None:
    """Fill the claimed key's row with the response to replay (``headers`` as JSON)."""
    db.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status_code=status_code, headers=headers, body=body)
    )


def unexpired_key(user_id: str, key: str) -> IdempotencyKey | None:
    """The key's row as committed now, unless it has expired."""
    stored = db.session.get(IdempotencyKey, (user_id, key), populate_existing=True)
    return stored if stored is not None and stored.created_at >= expiry_cutoff() else None


def forget_expired_key(user_id: str, key: str) -> None:
    db.session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at < expiry_cutoff(),
        )
    )


def purge_expired_keys() -> int:
    """Delete every expired key; returns how many."""
    result = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < expiry_cutoff())
    )
    return result.rowcount


def expiry_cutoff() -> datetime:
    """Keys created before this moment have expired."""
    return utcnow() - KEY_LIFETIME
