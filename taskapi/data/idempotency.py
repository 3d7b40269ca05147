"""Idempotency-Key on POST (and on the completion toggle): a retry returns the first response.

The key row is inserted first, in the same transaction (``atomic()``) that
creates the task, and filled with the response before commit. A concurrent request with
the same key waits on that row (PostgreSQL's ON CONFLICT waits for the other
transaction; SQLite has one writer at a time) and then replays the stored
response, so the same key never creates two tasks. A replay of a request
whose task has since gone to the trash is a 404, like any read of the task.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from flask import Response, abort, request
from marshmallow import ValidationError
from sqlalchemy import delete, update

from ..extensions import db
from .database import atomic, dialect_insert
from .models import IDEMPOTENCY_KEY_MAX_LENGTH, IdempotencyKey, utcnow
from .task_store import task_exists

KEY_LIFETIME = timedelta(hours=24)
HEADER = "Idempotency-Key"
REPLAYED_HEADERS = ("Location", "ETag", "Link")


def idempotency_key() -> str | None:
    """The request's key, or None; 400 for one that is empty, too long or not printable ASCII."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationError(
            {HEADER: [f"Must be 1-{IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters."]}
        )
    return key


def run_once(
    user_id: str, key: str, create: Callable[[], Response], request_hash: str | None = None
) -> Response:
    """Run ``create`` once per user and key, in one transaction with the key; else replay.

    ``request_hash`` tells one request from another (default: this HTTP request's
    path and body; the MCP server passes its tool call's).
    """
    if request_hash is None:
        request_hash = hashlib.sha256(canonical_body()).hexdigest()
    for _attempt in range(2):  # the second only after forgetting an expired key
        with atomic():  # the key row, what create() writes and the stored response
            if claim_key(user_id, key, request_hash):
                response = create()
                store_response(user_id, key, response)
                return response
        # The key's first request has committed, response included: claiming
        # waited for it (ON CONFLICT on PostgreSQL, BEGIN IMMEDIATE on SQLite).
        stored = db.session.get(IdempotencyKey, (user_id, key), populate_existing=True)
        if stored is not None and stored.created_at >= expiry_cutoff():
            break
        forget_expired(user_id, key)
    else:  # expired, and claimed again by another request in between
        abort(409, f"This {HEADER} is in use; retry shortly.")
    if stored.request_hash != request_hash:
        abort(409, f"This {HEADER} was used with a different request body.")
    if not task_exists(user_id, json.loads(stored.body or "{}").get("id", 0)):
        # Trashed or erased since: a retry must not be told the task is there.
        abort(404, "The task this request wrote has since been deleted.")
    return replay(stored)


def claim_key(user_id: str, key: str, request_hash: str) -> bool:
    """Insert the key row; False if it exists (after waiting for its writer)."""
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


def store_response(user_id: str, key: str, response: Response) -> None:
    headers = {
        name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
    }
    db.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(
            status_code=response.status_code,
            headers=json.dumps(headers),
            body=response.get_data(as_text=True),
        )
    )


def forget_expired(user_id: str, key: str) -> None:
    db.session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at < expiry_cutoff(),
        )
    )


def expiry_cutoff():
    """Keys created before this moment have expired."""
    return utcnow() - KEY_LIFETIME


def replay(stored: IdempotencyKey) -> Response:
    response = Response(stored.body, status=stored.status_code, mimetype="application/json")
    response.headers.update(json.loads(stored.headers or "{}"))
    response.headers["Idempotent-Replayed"] = "true"
    return response


def canonical_body() -> bytes:
    """The body as JSON with sorted keys, so formatting does not make it "different"."""
    body = json.loads(request.get_data() or "null")  # the completion toggle may have none
    return json.dumps(
        [request.path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def purge_expired() -> int:
    """Delete every expired key; returns how many."""
    result = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < expiry_cutoff())
    )
    return result.rowcount
