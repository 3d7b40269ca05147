"""Fields stricter than marshmallow's defaults, as the contract asks."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from marshmallow import ValidationError, fields

RFC3339_WITHOUT_OFFSET = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,6})?", re.ASCII)
RFC3339 = re.compile(RFC3339_WITHOUT_OFFSET.pattern + r"([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def reject_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")


class Text(fields.String):
    """A string that never contains NUL (PostgreSQL cannot store it)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.insert(0, reject_nul)


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


class UTCDateTime(fields.AwareDateTime):
    """RFC 3339 in UTC with a ``Z`` suffix: ``2026-11-26T07:00:00.123456Z``.

    On input an explicit offset is required (a time without one is ambiguous);
    the value is converted to UTC.
    """

    default_error_messages = {
        "invalid_awareness": "Not a valid time with an offset (e.g. 2026-11-26T07:00:00Z)."
    }

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            if isinstance(value, str) and RFC3339_WITHOUT_OFFSET.fullmatch(value):
                raise self.make_error("invalid_awareness", awareness="aware")
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        return super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        return rfc3339(value)


def rfc3339(value: datetime | None) -> str | None:
    """``2026-11-26T07:00:00.123456Z``: UTC, with a Z."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")
