"""The tools' arguments: loaded through the REST API's own marshmallow schemas and fields.

A tool's arguments are JSON, like a request body; the fields a REST body or
query string has are loaded by the very schema (or field) that loads them
there, so the limits are the same and so are the messages of a refusal
(``ValidationError.messages`` is what a REST 400 carries as ``errors``).
What only tools have (``task_id``, ``expected_version``, ``idempotency_key``)
is loaded by the small schemas here. Each tool's input schema is generated
from the same schemas (``json_schema``), as the OpenAPI document is.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..data.models import IDEMPOTENCY_KEY_MAX_LENGTH
from ..errors import field_messages
from ..http.cursors import CURSOR_MAX_LENGTH
from ..schemas.changes import CHANGES_LIMIT_MAX, ChangesQuerySchema
from ..schemas.tasks import CompleteSchema, TaskSchema, TaskUpdateSchema, task_list_query_schema

# A page an agent reads goes into its context: smaller than the REST API's.
PAGE_LIMIT_MAX = 100
PAGE_LIMIT_DEFAULT = 50
CHANGES_LIMIT_DEFAULT = 100
# Filters of the task list that are text in a query string and in JSON alike.
LIST_FILTERS = ("status", "q", "sort", "tag", "due_after", "due_before", "remind_before")


def printable_ascii(key: str) -> None:
    """What the Idempotency-Key header accepts (taskapi.http.idempotency), with its message."""
    if not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationError(f"Must be 1-{IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters.")


class ToolArguments(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


class TaskId(ToolArguments):
    task_id = fields.Integer(strict=True, required=True, metadata={"description": "The task's id."})


class VersionedTaskId(TaskId):
    expected_version = fields.Integer(
        strict=True,
        metadata={
            "description": "The task's version as last read; if it changed since, nothing "
            "is written and the call fails (read the task again, then retry)."
        },
    )


class AddTaskOptions(ToolArguments):
    idempotency_key = fields.String(
        validate=printable_ascii,
        metadata={
            "description": "Any unique string; a retry with the same key and arguments "
            "within 24 hours returns the first task instead of adding another."
        },
    )


class PageArguments(ToolArguments):
    limit = fields.Integer(
        strict=True,
        load_default=PAGE_LIMIT_DEFAULT,
        validate=validate.Range(1, PAGE_LIMIT_MAX),
        metadata={"description": "Tasks per page."},
    )
    cursor = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=CURSOR_MAX_LENGTH),
        metadata={"description": "next_cursor of the previous page; none for the first."},
    )


# The REST list's filter fields, as they are (each validates and words its errors alike).
ListFilters = ToolArguments.from_dict(
    {name: task_list_query_schema.fields[name] for name in LIST_FILTERS}, name="ListFilters"
)


class ChangesArguments(ToolArguments):
    since = ChangesQuerySchema().fields["since"]
    limit = fields.Integer(
        strict=True,
        load_default=CHANGES_LIMIT_DEFAULT,
        validate=validate.Range(1, CHANGES_LIMIT_MAX),
        metadata={"description": "Changes per page."},
    )


task_id_arguments = TaskId()
versioned_task_id_arguments = VersionedTaskId()
add_task_options = AddTaskOptions()
page_arguments = PageArguments()
list_filters = ListFilters()
changes_arguments = ChangesArguments()
no_arguments = ToolArguments()
# The REST bodies' schemas, for the fields a tool shares with a body.
new_task = TaskSchema()
task_changes = TaskUpdateSchema()
completion = CompleteSchema()


def load_arguments(arguments: dict, own: Schema, body: Schema | None = None) -> tuple[dict, dict]:
    """``arguments`` loaded: the tool's own ones by ``own``, the rest by ``body`` (a REST
    schema), or refused as unknown without one. All problems are reported at once."""
    own_part = {name: value for name, value in arguments.items() if name in own.fields}
    rest = {name: value for name, value in arguments.items() if name not in own.fields}
    errors: dict = {}
    loaded_own: dict = {}
    loaded_body: dict = {}
    try:
        loaded_own = own.load(own_part)
    except ValidationError as error:
        errors |= field_messages(error)
    if body is not None:
        try:
            loaded_body = body.load(rest)
        except ValidationError as error:
            errors |= field_messages(error)
    else:
        errors |= {name: ["Unknown field."] for name in rest}
    if errors:
        raise ValidationError(errors)
    return loaded_own, loaded_body


def json_schema(*schemas: Schema) -> dict:
    """The JSON Schema (2020-12, as OpenAPI 3.1 has it) of arguments loaded by ``schemas``."""
    # Imported here: only building the server needs apispec.
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    plugin = MarshmallowPlugin()
    APISpec("taskapi", "1", "3.1.0", plugins=[plugin])
    properties: dict = {}
    required: list = []
    for schema in schemas:
        converted = plugin.converter.schema2jsonschema(schema)
        properties |= {
            name: prop for name, prop in converted["properties"].items() if not prop.get("readOnly")
        }
        required += converted.get("required", [])
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
