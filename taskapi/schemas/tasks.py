"""Task schemas: what clients may send, and what they get back."""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    pre_load,
    validate,
    validates_schema,
)

from ..data.models import (
    DESCRIPTION_MAX_LENGTH,
    PRIORITIES,
    RECURRENCE_MAX_LENGTH,
    TIME_ZONE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
)
from ..http.cursors import CURSOR_MAX_LENGTH
from ..recurrence import check_rule, check_time_zone
from .fields import PageLimit, StrictBoolean, Text, TrimmedText, UTCDateTime, rfc3339
from .queries import QuerySchema
from .tags import TagFilter, TagList

READ_ONLY_FIELDS = ("id", "user_id", "series_id", "created_at", "updated_at")


class TaskSchema(Schema):
    """A task as the API returns it."""

    id = fields.Integer(dump_only=True)
    user_id = fields.String(dump_only=True)
    title = TrimmedText(required=True, validate=validate.Length(1, TITLE_MAX_LENGTH))
    description = Text(
        allow_none=True, load_default=None, validate=validate.Length(max=DESCRIPTION_MAX_LENGTH)
    )
    completed = StrictBoolean(load_default=False)
    due_at = UTCDateTime(allow_none=True, load_default=None)
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    tags = TagList(load_default=list)
    recurrence = TrimmedText(
        allow_none=True,
        load_default=None,
        validate=[validate.Length(1, RECURRENCE_MAX_LENGTH), check_rule],
        metadata={
            "description": "An RFC 5545 rule without RRULE: (FREQ, INTERVAL, COUNT, UNTIL, "
            "BYDAY, BYMONTHDAY, BYMONTH, WKST); needs due_at.",
            "example": "FREQ=WEEKLY;BYDAY=MO,WE",
        },
    )
    time_zone = Text(
        allow_none=True,
        load_default=None,
        validate=[validate.Length(max=TIME_ZONE_MAX_LENGTH), check_time_zone],
        metadata={"description": "IANA name; null is UTC.", "example": "Europe/Berlin"},
    )
    series_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The id of the series' first task; null if never recurring."},
    )
    remind_at = UTCDateTime(allow_none=True, load_default=None)
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)

    class Meta:
        unknown = RAISE
        ordered = True

    @pre_load
    def reject_read_only_fields(self, data, **kwargs):
        if not isinstance(data, dict):
            raise ValidationError("The request body must be a JSON object.")
        read_only = {name: ["Read-only field."] for name in READ_ONLY_FIELDS if name in data}
        if read_only:
            raise ValidationError(read_only)
        return data


class TaskUpdateSchema(TaskSchema):
    """PUT and PATCH: any subset of the writable fields, at least one."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        # TaskSchema's fields, validated alike, but none required and none
        # defaulted: a field that is not sent keeps its value.
        field_obj.required = False
        field_obj.load_default = missing

    @validates_schema
    def require_a_field(self, data, **kwargs):
        if not data:
            writable = ", ".join(self.load_fields)
            raise ValidationError(f"Send at least one of: {writable}.")


class CompleteSchema(Schema):
    """The optional body of PATCH .../complete."""

    completed = StrictBoolean(required=True)

    class Meta:
        unknown = RAISE


STATUSES = ("all", "pending", "completed", "overdue")
SORT_KEYS = ("created_at", "updated_at", "title", "due_at", "priority", "remind_at")
SORTS = SORT_KEYS + tuple(f"-{key}" for key in SORT_KEYS)
LIST_LIMIT_MAX = 500
QUERY_MAX_LENGTH = 200


class TaskListQuerySchema(QuerySchema):
    """Query parameters of ``GET /api/{user_id}/tasks`` (docs/api.md, "Listing")."""

    status = fields.String(load_default="all", validate=validate.OneOf(STATUSES))
    q = Text(load_default="", validate=validate.Length(max=QUERY_MAX_LENGTH))
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORTS))
    tag = TagFilter(
        load_default=(),
        metadata={"description": "Comma-separated names: tasks carrying all of them."},
    )
    due_after = UTCDateTime(load_default=None, metadata={"description": "due_at >= this."})
    due_before = UTCDateTime(load_default=None, metadata={"description": "due_at < this."})
    remind_before = UTCDateTime(
        load_default=None, metadata={"description": "remind_at <= this (due reminders)."}
    )
    limit = PageLimit(load_default=100, validate=validate.Range(1, LIST_LIMIT_MAX))
    cursor = fields.String(load_default=None, validate=validate.Length(max=CURSOR_MAX_LENGTH))


class ClearCompletedQuerySchema(QuerySchema):
    """Query parameters of ``DELETE /api/{user_id}/tasks``: only ``status=completed``."""

    status = fields.String(
        required=True,
        validate=validate.OneOf(["completed"]),
        metadata={"description": "Required: nothing else is ever deleted in bulk."},
    )


def task_json(task: Mapping) -> dict:
    """``TaskSchema().dump(task)``, written out: a page of 500 tasks is dumped
    several times faster. tests/units/test_schemas.py holds the two equal."""
    return {
        "id": task["id"],
        "user_id": task["user_id"],
        "title": task["title"],
        "description": task["description"],
        "completed": task["completed"],
        "due_at": rfc3339(task["due_at"]),
        "priority": task["priority"],
        "tags": task["tags"],
        "recurrence": task["recurrence"],
        "time_zone": task["time_zone"],
        "series_id": task["series_id"],
        "remind_at": rfc3339(task["remind_at"]),
        "created_at": rfc3339(task["created_at"]),
        "updated_at": rfc3339(task["updated_at"]),
    }


task_list_query_schema = TaskListQuerySchema()
