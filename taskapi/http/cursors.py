"""Sealed cursors: list positions and change-feed tokens, encrypted, authenticated
and bound to their user and query; a bad one is a 400 naming its parameter."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import String

from ..data.change_feed import FeedToken
from ..data.keyset import Keyset, Position
from ..data.models import UTCDateTime
from ..data.task_list import TaskQuery
from ..data.trash_store import TRASH_ORDER

NONCE_BYTES = 12  # AES-GCM's standard nonce, random per cursor
# A cursor of a page sorted by text (a title) carries that text: padded to a multiple
# of this, its length says nothing of the text's (other sort values have one size).
TEXT_CURSOR_BLOCK = 1024
CURSOR_MAX_LENGTH = 4096  # base64 of the longest padded cursor, with room
INVALID_CURSOR = "The cursor is not valid."
FOREIGN_CURSOR = "The cursor belongs to another query; start again without it."
INVALID_SINCE = "The token is not valid; start again without since."
FOREIGN_SINCE = "The token is not one of this user's change-feed tokens; start again without since."


@dataclass(frozen=True, eq=False)
class Listing:
    """A list that cursors walk: what they are bound to (its user and query), and its order."""

    binding: tuple[str, ...]
    order: Keyset


def task_listing(query: TaskQuery) -> Listing:
    times = (query.due_after, query.due_before, query.remind_before)
    dates = [time.isoformat() if time else "" for time in times]
    binding = (query.user_id, query.status, query.q, query.sort, *query.tags, "", *dates)
    return Listing(binding, query.order)


def trash_listing(user_id: str) -> Listing:
    # Bound as trash cursors always were: as a list whose only filter is "trash".
    return Listing((user_id, "trash", "", "-deleted_at", "", "", "", ""), TRASH_ORDER)


def encode_cursor(listing: Listing, position: Position) -> str:
    value = position.value.isoformat() if isinstance(position.value, datetime) else position.value
    block = TEXT_CURSOR_BLOCK if isinstance(listing.order.column.type, String) else 1
    return seal([fingerprint(*listing.binding), position.segment, value, position.id], block)


def decode_cursor(listing: Listing, cursor: str | None) -> Position | None:
    """Where the page the ``cursor`` parameter asks for starts (None: the first page);
    a 400 naming ``cursor`` if it is not one of this listing's."""
    if not cursor:
        return None
    segment, value, task_id = opened(
        cursor, listing.binding, "cursor", INVALID_CURSOR, FOREIGN_CURSOR
    )
    if value is not None and isinstance(listing.order.column.type, UTCDateTime):
        value = datetime.fromisoformat(value)
    return Position(segment, value, task_id)


def feed_binding(user_id: str) -> tuple[str, ...]:
    return ("changes", user_id)


def encode_feed_token(user_id: str, token: FeedToken) -> str:
    position = token.position
    mark = fingerprint(*feed_binding(user_id))
    return seal([mark, position.value, position.id, token.caught_up_at])


def decode_feed_token(user_id: str, token: str | None) -> FeedToken | None:
    """What the ``since`` token holds (None: a first sync); a 400 naming ``since``
    if it is not one of this user's change-feed tokens."""
    if token is None:
        return None
    numbers = opened(token, feed_binding(user_id), "since", INVALID_SINCE, FOREIGN_SINCE)
    if not all(type(number) is int and number >= 0 for number in numbers):
        field_error("since", INVALID_SINCE)
    change_number, task_id, caught_up_at = numbers
    return FeedToken(Position(0, change_number, task_id), caught_up_at)


def fingerprint(*binding: str) -> str:
    """Binds a cursor to a user and query: any other binding has another fingerprint."""
    return hashlib.sha256("\x00".join(binding).encode()).hexdigest()[:16]


def opened(text: str, binding: tuple[str, ...], field: str, invalid: str, foreign: str) -> list:
    """The three values sealed in ``text`` after its fingerprint; a 400 naming ``field``
    (saying ``invalid`` or ``foreign``) unless this server sealed it for ``binding``."""
    try:
        mark, *values = unseal(text)
    except ValueError:
        field_error(field, invalid)
    if len(values) != 3:
        field_error(field, invalid)
    if mark != fingerprint(*binding):
        field_error(field, foreign)
    return values


def field_error(field: str, message: str) -> NoReturn:
    raise ValidationError({field: [message]})


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
    """The values ``seal`` sealed; ValueError for anything this server did not seal."""
    try:
        sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plaintext = _cipher(current_app.config["SECRET_KEY"]).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None
        )
        values = json.loads(plaintext)
    except (InvalidTag, ValueError, TypeError) as error:
        raise ValueError("not sealed by this server") from error
    if not isinstance(values, list) or not values:
        raise ValueError("not sealed by this server")
    return values
