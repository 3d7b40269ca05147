"""Change-feed tokens: where a reader stands in the feed, sealed like the list cursors.

A token holds the position (a change number and a task id), a fingerprint of
the user and the time it was issued, encrypted and authenticated with
``taskapi.pagination.seal``: it reveals nothing, and another user's token, a
list cursor or a tampered token is refused. A token issued before the trash
retention is too old: tombstones of tasks erased since may have been purged
(``taskapi.trash_store``), so the reader must start again.
"""

from __future__ import annotations

import hashlib
import time

from .change_store import Position
from .pagination import BadCursor, seal, unseal


class TokenExpired(Exception):
    """The token predates the retention: deletions since may have been forgotten."""


def fingerprint(user_id: str) -> str:
    return hashlib.sha256(f"changes\x00{user_id}".encode()).hexdigest()[:16]


def encode_token(user_id: str, position: Position) -> str:
    return seal([fingerprint(user_id), position.change_number, position.task_id, int(time.time())])


def decode_token(user_id: str, token: str, *, oldest: float) -> Position:
    """The token's position; BadCursor for a bad or foreign token, TokenExpired before ``oldest``.

    ``oldest`` is a POSIX time.
    """
    try:
        mark, change_number, task_id, issued_at = unseal(token)
    except ValueError:  # BadCursor, or another number of values
        raise BadCursor("The token is not valid; start again without since.") from None
    if mark != fingerprint(user_id):
        raise BadCursor("The token belongs to another user; start again without since.")
    if not all(type(value) is int and value >= 0 for value in (change_number, task_id, issued_at)):
        raise BadCursor("The token is not valid; start again without since.")
    if issued_at < oldest:
        raise TokenExpired
    return Position(change_number, task_id)
