"""Change feed schemas: the parameters, a deletion, and a page of changes.

Their contract: docs/api.md, "Change feed (sync)".
"""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import Schema, fields, validate

from .fields import PageLimit, UTCDateTime, rfc3339
from .queries import QuerySchema
from .tasks import task_json

CHANGES_LIMIT_MAX = 1000
TOKEN_MAX_LENGTH = 256  # a token is about 120 characters


class ChangesQuerySchema(QuerySchema):
    """Query parameters of ``GET /api/{user_id}/changes``."""

    since = fields.String(
        load_default=None,
        validate=validate.Length(1, TOKEN_MAX_LENGTH),
        metadata={"description": "The next token of the previous answer; none: every task."},
    )
    limit = PageLimit(load_default=500, validate=validate.Range(1, CHANGES_LIMIT_MAX))


class DeletionSchema(Schema):
    """A task moved to the trash, or erased."""

    id = fields.Integer()
    deleted = fields.Boolean(metadata={"example": True})
    deleted_at = UTCDateTime()


class ChangesSchema(Schema):
    """A page of changes: each is a task (its latest state) or a deletion."""

    changes = fields.Raw(
        metadata={
            "description": "Tasks (their latest state) and deletions, oldest change first.",
            "type": "array",
            "items": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Task"},
                    {"$ref": "#/components/schemas/Deletion"},
                ]
            },
        }
    )
    next = fields.String(metadata={"description": "Pass as since to read on (store it)."})
    more = fields.Boolean(metadata={"description": "false: up to date."})


def change_json(task: Mapping) -> dict:
    """A task row of the feed as the client sees it: the task, or its deletion."""
    if task["deleted_at"] is not None:
        return {"id": task["id"], "deleted": True, "deleted_at": rfc3339(task["deleted_at"])}
    return task_json(task)
