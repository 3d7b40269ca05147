"""Trash schemas (docs/api.md, "Trash"): the trash listing's parameters and its tasks."""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import Schema, fields, validate

from ..http.cursors import CURSOR_MAX_LENGTH
from .fields import PageLimit, UTCDateTime, rfc3339
from .queries import QuerySchema
from .tasks import LIST_LIMIT_MAX, TaskSchema, task_json


class TrashQuerySchema(QuerySchema):
    """Query parameters of ``GET /api/{user_id}/trash``."""

    limit = PageLimit(load_default=100, validate=validate.Range(1, LIST_LIMIT_MAX))
    cursor = fields.String(load_default=None, validate=validate.Length(max=CURSOR_MAX_LENGTH))


class TrashedTaskSchema(TaskSchema):
    """A task in the trash: the task, and when it was deleted."""

    deleted_at = UTCDateTime(dump_only=True)


class DeletedCountSchema(Schema):
    deleted = fields.Integer(metadata={"description": "Tasks moved to the trash.", "example": 3})


def trashed_task_json(task: Mapping) -> dict:
    return task_json(task) | {"deleted_at": rfc3339(task["deleted_at"])}
