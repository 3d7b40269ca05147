"""Keyset pagination of a user's tasks: the query, where a page ends, and cursors.

A page continues strictly after the last row of the previous one in
``(sort value, id)`` order, so rows added or deleted meanwhile never shift
the pages: each task that exists throughout a walk is listed exactly once.
The cursor carries that last position, encrypted and authenticated with a
key derived from the app's secret (AES-GCM) and bound to the user and the
query: it reveals nothing (a page sorted by title ends at a title, which must
not travel in URLs that proxies log), and a tampered or foreign cursor is refused.

``due_at`` and ``remind_at`` may be null. Tasks without the sort value come
last in both directions, as a second segment ordered by id; a cursor says
which segment it is in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import RowMapping

# The page queries themselves are in taskapi.data.task_store.
NULLABLE_SORTS = {"due_at", "remind_at"}
# deleted_at orders the trash (taskapi.data.trash_store), which pages the same way.
DATETIME_SORTS = {"created_at", "updated_at", "due_at", "remind_at", "deleted_at"}
NONCE_BYTES = 12  # AES-GCM's standard nonce, random per cursor
# A cursor of a page sorted by title carries a title: padded to a multiple of
# this, its length says nothing of the title's (other sort values have one size).
TITLE_CURSOR_BLOCK = 1024
CURSOR_MAX_LENGTH = 4096  # base64 of the longest padded cursor, with room


class BadCursor(ValueError):
    """The cursor was not made by this server for this user and query."""


class FilterShape(NamedTuple):
    """Which filters a query has: its statement is built once per shape, values are bound."""

    status: str
    has_q: bool
    tag_count: int
    has_due_after: bool
    has_due_before: bool
    has_remind_before: bool

    @property
    def tags_only(self) -> bool:
        """Tags, and no other filter on the user's tasks."""
        others = self.has_q or self.has_due_after or self.has_due_before or self.has_remind_before
        return self.tag_count > 0 and self.status == "all" and not others


@dataclass(frozen=True)
class TaskQuery:
    user_id: str
    status: str
    q: str
    sort: str
    tags: tuple[str, ...] = ()  # folded names, sorted: tasks carrying all of them
    due_after: datetime | None = None
    due_before: datetime | None = None
    remind_before: datetime | None = None

    @property
    def key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def shape(self) -> FilterShape:
        times = (self.due_after, self.due_before, self.remind_before)
        return FilterShape(
            self.status, bool(self.q), len(self.tags), *(time is not None for time in times)
        )

    def fingerprint(self) -> str:
        """Binds a cursor to this user, filter and order."""
        times = (self.due_after, self.due_before, self.remind_before)
        dates = [time.isoformat() if time else "" for time in times]
        text = "\x00".join((self.user_id, self.status, self.q, self.sort, *self.tags, "", *dates))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Position:
    """Where a page ended: the segment, and the last row's sort value and id."""

    segment: int
    value: object
    id: int


@dataclass(frozen=True)
class Page:
    tasks: list[RowMapping]  # a Task's columns by name
    next_position: Position | None
    total: int  # tasks matching the filter, on every page


def position_of(query: TaskQuery, task: RowMapping) -> Position:
    value = task[query.key]
    segment = 1 if value is None and query.key in NULLABLE_SORTS else 0
    return Position(segment, value, task["id"])


@lru_cache(maxsize=8)
def _cipher(secret: str) -> AESGCM:
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"taskapi.cursor")
    return AESGCM(key.derive(secret.encode()))


def seal(values: list, block: int = 1) -> str:
    """``values`` as JSON, encrypted and authenticated: opaque, and tamper-proof.

    The plaintext is padded with spaces to a multiple of ``block`` bytes.
    """
    plaintext = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
    plaintext += b" " * (-len(plaintext) % block)  # trailing spaces: still the same JSON
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher(current_app.config["SECRET_KEY"]).encrypt(nonce, plaintext, None)
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def unseal(text: str) -> list:
    """The values ``seal`` sealed; BadCursor for anything this server did not seal."""
    try:
        sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plaintext = _cipher(current_app.config["SECRET_KEY"]).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None
        )
        values = json.loads(plaintext)
    except (InvalidTag, ValueError, TypeError) as error:
        raise BadCursor("The cursor is not valid.") from error
    if not isinstance(values, list):
        raise BadCursor("The cursor is not valid.")
    return values


def encode_cursor(query: TaskQuery, position: Position) -> str:
    value = position.value.isoformat() if isinstance(position.value, datetime) else position.value
    block = TITLE_CURSOR_BLOCK if query.key == "title" else 1
    return seal([query.fingerprint(), position.segment, value, position.id], block)


def decode_cursor(query: TaskQuery, cursor: str) -> Position:
    try:
        fingerprint, segment, value, task_id = unseal(cursor)
    except ValueError as error:  # BadCursor, or another number of values
        raise BadCursor("The cursor is not valid.") from error
    if fingerprint != query.fingerprint():
        raise BadCursor("The cursor belongs to another query; start again without it.")
    if value is not None and query.key in DATETIME_SORTS:
        value = datetime.fromisoformat(value)
    return Position(segment, value, task_id)
