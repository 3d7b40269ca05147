"""Fields stricter than marshmallow's defaults, as docs/api.md asks."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from marshmallow import ValidationError, fields

RFC3339_WITHOUT_OFFSET = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,6})?", re.ASCII)
RFC3339 = re.compile(RFC3339_WITHOUT_OFFSET.pattern + r"([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def is_storable(value: str) -> bool:
    """False for text no database column can hold: NUL, or a lone surrogate.

    JSON can spell a lone surrogate (``"\\ud800"``) and Python's JSON parser
    lets one through, but it is no Unicode character: UTF-8 cannot encode it.
    """
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def reject_unstorable(value: str) -> None:
    if not is_storable(value):
        raise ValidationError("Must not contain NUL characters or lone surrogates.")


class Text(fields.String):
    """A string that never contains NUL (PostgreSQL cannot store it) or a lone surrogate."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.insert(0, reject_unstorable)


class TrimmedText(Text):
    """A string with surrounding white space removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class StrictBoolean(fields.Boolean):
    """Only JSON ``true`` and ``false``; no "yes", 1 or "true"."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class PageLimit(fields.Integer):
    """A query parameter's page size: ASCII digits only (``int()`` would read a
    fullwidth five or an underscore in ``1_0``), like the ids in URLs."""

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class UTCDateTime(fields.AwareDateTime):
    """RFC 3339 in UTC with a ``Z`` suffix: ``2026-11-26T07:00:00.123456Z``.

    On input an explicit offset is required (a time without one is ambiguous);
    the value is converted to UTC.
    """

    default_error_messages = {
        "invalid_awareness": "Not a valid time with an offset (e.g. 2026-11-26T07:00:00Z).",
        "out_of_range": "The time is outside the years 0001-9999 in UTC.",
    }

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            if isinstance(value, str) and RFC3339_WITHOUT_OFFSET.fullmatch(value):
                raise self.make_error("invalid_awareness", awareness="aware")
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        try:
            return super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59:59-23:59 is past year 9999 in UTC
            raise self.make_error("out_of_range") from None

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        return rfc3339(value)


def rfc3339(value: datetime | None) -> str | None:
    """``2026-11-26T07:00:00.123456Z``: UTC, with a Z."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")
