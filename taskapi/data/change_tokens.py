"""Change-feed tokens: where a reader stands in the feed, sealed like the list
cursors; and ``read_changes``, a page of the feed after a token and the next one.

A token holds the position (a change number and a task id), a fingerprint of
the user and the time its reader was last caught up, encrypted and
authenticated with ``taskapi.data.pagination.seal``: it reveals nothing, and
another user's token, a list cursor or a tampered token is refused.

Why "caught up" and not "issued": a deletion is remembered (a trashed row, a
tombstone) for the trash retention from when it happened, then purged
(``taskapi.data.trash_store``). A reader that was caught up at time T has seen
every deletion before T, and every later one is still remembered until T plus
the retention. A token from a page with ``more: true`` is not caught up: it
keeps the time of the token it continues, or a reader who stops mid-backlog
and comes back after a purge would be told "nothing more" over a forgotten
deletion. Past the retention from that time, the token is too old (410).
"""

from __future__ import annotations

import hashlib
import time
from typing import NamedTuple

from .change_store import ChangePage, FeedRewound, Position, fetch_changes
from .pagination import BadCursor, seal, unseal
from .trash_store import cutoff

# A deletion's time is taken before its transaction commits, so a reader may
# miss a deletion timed a little before the reader's own start: count a
# reader as caught up this much earlier than it started reading.
COMMIT_DELAY_MARGIN = 3600


class TokenExpired(Exception):
    """The token predates the retention: deletions since may have been forgotten."""


class Token(NamedTuple):
    position: Position
    caught_up_at: int  # POSIX seconds


def reading_started() -> int:
    """A caught-up time for a read that starts now (see COMMIT_DELAY_MARGIN)."""
    return int(time.time()) - COMMIT_DELAY_MARGIN


def fingerprint(user_id: str) -> str:
    return hashlib.sha256(f"changes\x00{user_id}".encode()).hexdigest()[:16]


def encode_token(user_id: str, token: Token) -> str:
    position = token.position
    return seal(
        [fingerprint(user_id), position.change_number, position.task_id, token.caught_up_at]
    )


def decode_token(user_id: str, token: str, *, oldest: float) -> Token:
    """The token; BadCursor for a bad or foreign one, TokenExpired if caught up before ``oldest``.

    ``oldest`` is a POSIX time.
    """
    try:
        mark, change_number, task_id, caught_up_at = unseal(token)
    except ValueError:  # BadCursor, or another number of values
        raise BadCursor("The token is not valid; start again without since.") from None
    if mark != fingerprint(user_id):
        raise BadCursor(
            "The token is not one of this user's change-feed tokens; start again without since."
        )
    numbers = (change_number, task_id, caught_up_at)
    if not all(type(value) is int and value >= 0 for value in numbers):
        raise BadCursor("The token is not valid; start again without since.")
    if caught_up_at < oldest:
        raise TokenExpired
    return Token(Position(change_number, task_id), caught_up_at)


def read_changes(user_id: str, since: str | None, limit: int) -> tuple[ChangePage, str]:
    """A page of the feed after the token ``since`` (None: a first sync), and the next token.

    BadCursor for a bad or foreign token; TokenExpired for one too old, or one
    from before the user's feed began again.
    """
    started = reading_started()
    position, caught_up_at = None, started  # a first sync: caught up from its start on
    if since is not None:
        position, caught_up_at = decode_token(user_id, since, oldest=cutoff().timestamp())
    try:
        page = fetch_changes(user_id, position, limit)
    except FeedRewound:
        raise TokenExpired from None
    if not page.more:
        caught_up_at = started
    return page, encode_token(user_id, Token(page.next_position, caught_up_at))
