"""The OpenAPI 3 document, built from what sits on each view.

A view's docstring gives the summary; ``@documented(...)`` its responses,
errors and headers; ``@arguments`` (taskapi.http.arguments) the body or query
string it loads, from the schema that loads it; ``user_view`` marks it as
needing a token (401 and 403 then go without saying). Building the document
fails loudly for an undocumented route, and a test builds it.
"""

from __future__ import annotations

import inspect
import re

from flask import Flask, current_app
from marshmallow import Schema, fields

from ..data.models import IDEMPOTENCY_KEY_MAX_LENGTH, TASK_ID_MAX
from ..schemas.changes import ChangesSchema, DeletionSchema
from ..schemas.push import PushKeySchema, SubscriptionSchema
from ..schemas.tags import TagSchema
from ..schemas.tasks import TaskSchema
from ..schemas.trash import TrashedTaskSchema
from .idempotency import HEADER as IDEMPOTENCY_HEADER


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
    401: "Missing, malformed, badly signed or expired token; Authorization must be "
    "exactly 'Bearer <token>'.",
    403: "The token's user id is not the URL's.",
    404: "No such task (or tag, task in the trash, push subscription) for this user, or no "
    "such route; GET /api/push/key: Web Push is not configured.",
    409: "Conflict (email taken; Idempotency-Key reused with another body; 20 push "
    "subscriptions already).",
    410: "The change-feed token is older than the trash retention: start again without since.",
    412: "If-Match names an ETag the task no longer has.",
    413: "Body over MAX_CONTENT_LENGTH.",
    414: "The query string (the cursor aside) is over 4096 bytes, percent-encoded.",
    415: "The body is not sent as application/json.",
    429: "Rate limit exceeded; see Retry-After.",
    500: "Unexpected error (details are logged, never returned).",
    503: "The database is unavailable or too slow (DATABASE_STATEMENT_TIMEOUT), or the "
    "identity provider's signing keys cannot be fetched; see Retry-After.",
}
COMMON_ERRORS = (414, 429, 500, 503)
AUTH_ERRORS = (401, 403)
# Errors every view that reads a JSON body can answer.
BODY_ERRORS = (400, 413, 415)

# Path parameters, by name, wherever a route has them.
PATH_PARAMETERS = {
    "user_id": {"type": "string"},
    "task_id": {"type": "integer", "minimum": 1, "maximum": TASK_ID_MAX},
    "filename": {"type": "string"},
    "name": {"type": "string", "minLength": 1, "description": "A tag, percent-encoded."},
    "subscription_id": {"type": "integer", "minimum": 1, "maximum": TASK_ID_MAX},
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
    "Link": {
        "schema": {"type": "string"},
        "description": 'The next page (<url>; rel="next"), or the task a completion created '
        '(<url>; rel="next-occurrence").',
    },
    "X-Total-Count": {"schema": {"type": "integer"}, "description": "Tasks matching the filter."},
}


def documented(*, responses: dict, errors: tuple = (), headers: tuple = ()):
    """Describe a view for the OpenAPI document; the view itself is unchanged.

    ``responses`` maps success statuses to ``success(...)``; ``errors`` are the
    view's own error statuses; ``headers`` are request header parameters.
    """
    operation = {
        "responses": {str(status): spec for status, spec in responses.items()},
        "errors": tuple(errors),
        "parameters": list(headers),
    }

    def decorate(view):
        view.openapi = operation
        return view

    return decorate


def input_spec(schema_class: type, location: str, required: bool) -> dict:
    """What ``@arguments`` adds to an operation: a query parameter or a request body."""
    if location == "query":
        return {"parameters": [{"in": "query", "schema": schema_class}], "errors": ()}
    return {
        "parameters": [],
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema_class}},
        },
        "errors": BODY_ERRORS,
    }


def success(schema=None, description: str = "OK", headers: tuple = ()) -> dict:
    """A success response: its body's schema (or none) and its headers."""
    spec = {"description": description}
    if schema is not None:
        spec["content"] = {"application/json": {"schema": schema}}
    if headers:
        spec["headers"] = {name: HEADERS[name] for name in headers}
    return spec


def operation_of(view, rule, docstring: str) -> dict:
    """The OpenAPI operation for ``view`` at ``rule``, from what the view carries."""
    documented_operation = view.openapi  # AttributeError: an undocumented route
    inputs = getattr(view, "openapi_inputs", ())
    secure = getattr(view, "requires_token", False)
    responses = dict(documented_operation["responses"])
    errors = set(documented_operation["errors"]) | set(COMMON_ERRORS)
    for loaded in inputs:
        errors.update(loaded["errors"])
    if secure:
        errors |= set(AUTH_ERRORS)
    for status in sorted(errors):
        responses[str(status)] = {"description": ERROR_TEXT[status]}
        if status != 304:
            problem_content = {"application/problem+json": {"schema": "Problem"}}
            responses[str(status)]["content"] = problem_content
    path_parameters = [
        {"in": "path", "name": name, "required": True, "schema": PATH_PARAMETERS[name]}
        for name in RULE_VARIABLE.findall(rule.rule)
    ]
    summary, _, description = docstring.strip().partition("\n")
    spec = {
        "summary": summary,
        "responses": responses,
        "parameters": [
            *path_parameters,
            *(parameter for loaded in inputs for parameter in loaded["parameters"]),
            *documented_operation["parameters"],
        ],
    }
    if description.strip():
        spec["description"] = inspect.cleandoc(description)
    for loaded in inputs:
        if "requestBody" in loaded:
            spec["requestBody"] = loaded["requestBody"]
    if not secure:
        spec["security"] = []
    return spec


IGNORED_METHODS = {"HEAD", "OPTIONS"}
# A variable in a Flask rule, with or without a converter: <user_id>, <int:task_id>.
RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


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
    spec.components.schema("Tag", schema=TagSchema)
    spec.components.schema("TrashedTask", schema=TrashedTaskSchema)
    spec.components.schema("Deletion", schema=DeletionSchema)
    spec.components.schema("Changes", schema=ChangesSchema)
    spec.components.schema("Subscription", schema=SubscriptionSchema)
    spec.components.schema("PushKey", schema=PushKeySchema)
    spec.components.schema("Problem", schema=ProblemSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        operations = {}
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - IGNORED_METHODS):
            operations[method.lower()] = operation_of(view, rule, view.__doc__ or "")
        spec.path(path=openapi_path(rule.rule), operations=operations)
    return spec.to_dict()


def openapi_path(flask_rule: str) -> str:
    """``/api/<user_id>/tasks/<int:task_id>`` -> ``/api/{user_id}/tasks/{task_id}``."""
    return RULE_VARIABLE.sub(r"{\1}", flask_rule)


def current_spec() -> dict:
    """The document for the running app, built once."""
    cache = current_app.extensions.setdefault("taskapi.openapi", {})
    if "spec" not in cache:
        cache["spec"] = build_spec(current_app)
    return cache["spec"]
