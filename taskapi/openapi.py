"""The OpenAPI 3 document, built from the marshmallow schemas that validate requests.

Every route the app registers must have an entry in ``OPERATIONS``; building
the document fails loudly otherwise, and a test builds it. Summaries are the
views' one-line docstrings.
"""

from __future__ import annotations

import re

from flask import Flask, current_app
from marshmallow import Schema, fields

from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .models import IDEMPOTENCY_KEY_MAX_LENGTH, TASK_ID_MAX
from .schemas.accounts import LoginSchema, RegisterSchema, TokenSchema
from .schemas.tasks import CompleteSchema, TaskListQuerySchema, TaskSchema, TaskUpdateSchema


class ProblemSchema(Schema):
    """RFC 9457 problem details: every error response has this shape."""

    type = fields.String(metadata={"example": "about:blank"})
    title = fields.String(metadata={"example": "Bad Request"})
    status = fields.Integer(metadata={"example": 400})
    detail = fields.String(metadata={"example": "The request is invalid."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field -> messages, on validation failures."},
    )


class StatusSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadySchema(StatusSchema):
    database = fields.String(metadata={"example": "ok"})


ERROR_TEXT = {
    304: "Not modified: If-None-Match names the current ETag.",
    400: "Invalid body, field, parameter, cursor or header.",
    401: "Missing, malformed, badly signed or expired token.",
    403: "The token's user id is not the URL's.",
    404: "No such task for this user, or no such route.",
    409: "Conflict (email taken; Idempotency-Key reused with another body).",
    412: "If-Match names an ETag the task no longer has.",
    413: "Body over MAX_CONTENT_LENGTH.",
    415: "The body is not sent as application/json.",
    429: "Rate limit exceeded; see Retry-After.",
    500: "Unexpected error (details are logged, never returned).",
    503: "The database is unavailable; see Retry-After.",
}
COMMON_ERRORS = (429, 500, 503)
AUTH_ERRORS = (401, 403)

USER_ID = {"in": "path", "name": "user_id", "required": True, "schema": {"type": "string"}}
TASK_ID = {
    "in": "path",
    "name": "task_id",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": TASK_ID_MAX},
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "schema": {"type": "string"},
    "description": "Write only if the task still has this ETag (else 412).",
}
IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "schema": {"type": "string"},
    "description": "304 if the task still has this ETag.",
}
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
    "description": "Repeat the first response for 24 hours instead of creating again.",
}
HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "Changes on every write."},
    "Location": {"schema": {"type": "string"}, "description": "The new task's path."},
    "Link": {"schema": {"type": "string"}, "description": 'The next page: <url>; rel="next".'},
    "X-Total-Count": {"schema": {"type": "integer"}, "description": "Tasks matching the filter."},
}


def json_body(schema, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def ok(schema=None, description: str = "OK", headers: tuple = ()) -> dict:
    response = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    if headers:
        response["headers"] = {name: HEADERS[name] for name in headers}
    return response


def operation(responses: dict, errors: tuple, *, parameters=(), body=None, secure=True) -> dict:
    responses = dict(responses)
    for status in sorted(set(errors) | set(COMMON_ERRORS)):
        responses[str(status)] = (
            {"description": ERROR_TEXT[status]}
            if status == 304
            else {
                "description": ERROR_TEXT[status],
                "content": {"application/problem+json": {"schema": "Problem"}},
            }
        )
    spec = {"responses": responses, "parameters": list(parameters)}
    if body is not None:
        spec["requestBody"] = body
    if not secure:
        spec["security"] = []
    return spec


TASK = ok("Task", headers=("ETag",))
TASK_ERRORS = (*AUTH_ERRORS, 404)
WRITE_ERRORS = (*TASK_ERRORS, 400, 412, 413, 415)

# (endpoint, method) -> the operation, minus summary (the view's docstring).
OPERATIONS = {
    ("health.healthz", "get"): operation({"200": ok(StatusSchema)}, (), secure=False),
    ("health.readyz", "get"): operation({"200": ok(ReadySchema)}, (503,), secure=False),
    ("accounts.register", "post"): operation(
        {"201": ok(TokenSchema, "Created")},
        (400, 409, 413, 415),
        body=json_body(RegisterSchema),
        secure=False,
    ),
    ("accounts.login", "post"): operation(
        {"200": ok(TokenSchema)}, (400, 401, 413, 415), body=json_body(LoginSchema), secure=False
    ),
    ("tasks.list_tasks", "get"): operation(
        {"200": ok({"type": "array", "items": "Task"}, headers=("Link", "X-Total-Count"))},
        (*AUTH_ERRORS, 400),
        parameters=(USER_ID, {"in": "query", "schema": TaskListQuerySchema}),
    ),
    ("tasks.create_task", "post"): operation(
        {"201": ok("Task", "Created", headers=("ETag", "Location"))},
        (*AUTH_ERRORS, 400, 409, 413, 415),
        parameters=(USER_ID, IDEMPOTENCY_KEY),
        body=json_body(TaskSchema),
    ),
    ("tasks.get_task", "get"): operation(
        {"200": TASK}, (*TASK_ERRORS, 304), parameters=(USER_ID, TASK_ID, IF_NONE_MATCH)
    ),
    ("tasks.update_task", "put"): operation(
        {"200": TASK},
        WRITE_ERRORS,
        parameters=(USER_ID, TASK_ID, IF_MATCH),
        body=json_body(TaskUpdateSchema),
    ),
    ("tasks.update_task", "patch"): operation(
        {"200": TASK},
        WRITE_ERRORS,
        parameters=(USER_ID, TASK_ID, IF_MATCH),
        body=json_body(TaskUpdateSchema),
    ),
    ("tasks.complete_task", "patch"): operation(
        {"200": TASK},
        WRITE_ERRORS,
        parameters=(USER_ID, TASK_ID, IF_MATCH),
        body=json_body(CompleteSchema, required=False),
    ),
    ("tasks.delete_task", "delete"): operation(
        {"204": {"description": "Deleted"}},
        (*TASK_ERRORS, 412),
        parameters=(USER_ID, TASK_ID, IF_MATCH),
    ),
    ("docs.openapi", "get"): operation({"200": ok({"type": "object"})}, (), secure=False),
    ("docs.docs_page", "get"): operation(
        {"200": {"description": "Swagger UI", "content": {"text/html": {}}}}, (), secure=False
    ),
    ("docs.docs_asset", "get"): operation(
        {"200": {"description": "A Swagger UI file"}},
        (404,),
        parameters=(
            {"in": "path", "name": "filename", "required": True, "schema": {"type": "string"}},
        ),
        secure=False,
    ),
}

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def build_spec(app: Flask) -> dict:
    # Imported here: only a request for the document needs apispec.
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec(
        title="taskapi",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Each person's tasks, guarded by bearer tokens (JWT)."},
        security=[{"bearerAuth": []}],
    )
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("Task", schema=TaskSchema)
    spec.components.schema("Problem", schema=ProblemSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        operations = {}
        for method in sorted(rule.methods - IGNORED_METHODS):
            entry = OPERATIONS[(rule.endpoint, method.lower())]  # KeyError: undocumented route
            docstring = (app.view_functions[rule.endpoint].__doc__ or "").strip()
            operations[method.lower()] = {"summary": docstring.splitlines()[0], **entry}
        spec.path(path=openapi_path(rule.rule), operations=operations)
    return spec.to_dict()


def openapi_path(flask_rule: str) -> str:
    """``/api/<user_id>/tasks/<int:task_id>`` -> ``/api/{user_id}/tasks/{task_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", flask_rule)


def current_spec() -> dict:
    """The document for the running app, built once."""
    cache = current_app.extensions.setdefault("taskapi.openapi", {})
    if "spec" not in cache:
        cache["spec"] = build_spec(current_app)
    return cache["spec"]
