"""Idempotency-Key on POST (and on the completion toggle): the header, and replaying
the first response to a retry (docs/api.md, "Idempotent creates").

The key row is claimed in the same transaction that runs the request's write,
and filled with the response before commit, so one key never writes twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from flask import Response, abort, request
from marshmallow import ValidationError

from ..data.database import atomic
from ..data.idempotency_keys import claim_key, forget_expired_key, store_response, unexpired_key
from ..data.models import IDEMPOTENCY_KEY_MAX_LENGTH, IdempotencyKey
from ..data.task_store import task_exists

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


def run_once(user_id: str, key: str, create: Callable[[], Response]) -> Response:
    """Run ``create`` once per user and key, in one transaction with the key; else replay."""
    request_hash = hashlib.sha256(canonical_body()).hexdigest()
    for _attempt in range(2):  # the second only after forgetting an expired key
        with atomic():  # the key row, what create() writes and the stored response
            if claim_key(user_id, key, request_hash):
                response = create()
                store(user_id, key, response)
                return response
        # The key's first request has committed, response included: claiming
        # waited for it (ON CONFLICT on PostgreSQL, BEGIN IMMEDIATE on SQLite).
        stored = unexpired_key(user_id, key)
        if stored is not None:
            break
        forget_expired_key(user_id, key)
    else:  # expired, and claimed again by another request in between
        abort(409, f"This {HEADER} is in use; retry shortly.")
    if stored.request_hash != request_hash:
        abort(409, f"This {HEADER} was used with a different request body.")
    if not task_exists(user_id, json.loads(stored.body or "{}").get("id", 0)):
        # Trashed or erased since: a retry must not be told the task is there.
        abort(404, "The task this request wrote has since been deleted.")
    return replay(stored)


def store(user_id: str, key: str, response: Response) -> None:
    headers = {
        name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
    }
    body = response.get_data(as_text=True)
    store_response(user_id, key, response.status_code, json.dumps(headers), body)


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
