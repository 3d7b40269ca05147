"""Task schemas: what clients may send, and what they get back."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from ..models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH
from .fields import StrictBoolean, Text, TrimmedText, UTCDateTime

READ_ONLY_FIELDS = ("id", "user_id", "created_at", "updated_at")


class TaskSchema(Schema):
    """A task as the API returns it."""

    id = fields.Integer(dump_only=True)
    user_id = fields.String(dump_only=True)
    title = TrimmedText(required=True, validate=validate.Length(1, TITLE_MAX_LENGTH))
    description = Text(
        allow_none=True, load_default=None, validate=validate.Length(max=DESCRIPTION_MAX_LENGTH)
    )
    completed = StrictBoolean(load_default=False)
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

    title = TrimmedText(validate=validate.Length(1, TITLE_MAX_LENGTH))
    description = Text(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX_LENGTH))
    completed = StrictBoolean()

    @validates_schema
    def require_a_field(self, data, **kwargs):
        if not data:
            raise ValidationError("Send at least one of: title, description, completed.")


class CompleteSchema(Schema):
    """The optional body of PATCH .../complete."""

    completed = StrictBoolean(required=True)

    class Meta:
        unknown = RAISE


task_schema = TaskSchema()
tasks_schema = TaskSchema(many=True)
task_update_schema = TaskUpdateSchema()
complete_schema = CompleteSchema()
