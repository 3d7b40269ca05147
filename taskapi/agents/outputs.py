"""The tools' output schemas (structured content), from the REST API's response schemas.

A task is the REST ``Task`` (from ``TaskSchema``, as the OpenAPI document
has it) plus ``version``; clients validate structured content against these.
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from ..schemas.changes import DeletionSchema
from ..schemas.tags import TagSchema
from ..schemas.tasks import TaskSchema
from ..schemas.trash import TrashedTaskSchema

_plugin = MarshmallowPlugin()
APISpec("taskapi", "1", "3.1.0", plugins=[_plugin])

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_INTEGER = {"type": ["integer", "null"]}
VERSION = {
    "type": "integer",
    "description": "Goes up on every write; the number after the dot in the REST ETag. "
    "Pass it as expected_version to write only if nobody changed the task meanwhile.",
}


def object_of(schema: Schema, **extra: dict) -> dict:
    """Every field of ``schema`` as an output has it (all present), plus ``extra``."""
    properties = {
        name: {key: value for key, value in prop.items() if key not in ("readOnly", "default")}
        for name, prop in _plugin.converter.schema2jsonschema(schema)["properties"].items()
    }
    properties |= extra
    return {"type": "object", "properties": properties, "required": list(properties)}


def result(**properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties)}


TASK = object_of(TaskSchema(), version=VERSION)
TRASHED_TASK = object_of(TrashedTaskSchema(), version=VERSION)
DELETION = object_of(DeletionSchema())
NEXT_CURSOR = NULLABLE_STRING | {"description": "Pass as cursor for the next page; null: none."}
TOTAL = {"type": "integer", "description": "How many match, on all pages."}

ONE_TASK = result(task=TASK)
WRITTEN_TASK = result(
    task=TASK,
    next_occurrence_id=NULLABLE_INTEGER
    | {"description": "The task a completion of a recurring task created, or null."},
)
TASK_PAGE = result(tasks={"type": "array", "items": TASK}, next_cursor=NEXT_CURSOR, total=TOTAL)
TRASH_PAGE = result(
    tasks={"type": "array", "items": TRASHED_TASK}, next_cursor=NEXT_CURSOR, total=TOTAL
)
DELETED = result(task_id={"type": "integer"}, in_trash={"type": "boolean"})
TAGS = result(tags={"type": "array", "items": object_of(TagSchema())})
CHANGES = result(
    changes={"type": "array", "items": {"anyOf": [TASK, DELETION]}},
    next={"type": "string", "description": "Pass as since to read on (store it)."},
    more={"type": "boolean", "description": "true: call again at once with next."},
)
