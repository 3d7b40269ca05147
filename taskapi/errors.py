"""One error shape for the whole app: RFC 9457 problem+json.

Routing, HTTP, validation, database and unexpected errors all end here, so no
client ever sees HTML, a stack trace or a database message.
"""

from __future__ import annotations

import sqlite3
from http import HTTPStatus

from flask import Flask, Response, current_app, json
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError, TimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_MIMETYPE = "application/problem+json"
# Connection exceptions, rollbacks (serialization, deadlock), insufficient
# resources, operator intervention (shutdown, restart, statement timeout: 57014),
# and a lock wait past lock_timeout (55P03).
RETRYABLE_SQLSTATES = ("08", "40", "53", "57", "55P03")


def problem(
    status: int,
    detail: str | None = None,
    *,
    errors: dict | None = None,
    headers: dict | None = None,
    response: Response | None = None,
) -> Response:
    """Build a problem+json response, reusing ``response`` (and its headers) if given."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = response or Response()
    response.status_code = status
    # A final newline, as jsonify gives success bodies: curl output ends its line.
    response.set_data(json.dumps(body) + "\n")
    response.mimetype = PROBLEM_MIMETYPE
    response.headers.update(headers or {})
    return response


def service_unavailable(detail: str, retry_after: int = 5) -> Response:
    """503 with ``Retry-After`` (docs/api.md, "Headers": only 429 and 503 carry it)."""
    return problem(503, detail, headers={"Retry-After": str(retry_after)})


def handle_http_exception(error: HTTPException) -> Response:
    # get_response() keeps headers such as Allow (405) and Retry-After (429).
    return problem(error.code or 500, error.description, response=error.get_response())


def handle_validation_error(error: ValidationError) -> Response:
    return problem(400, "The request is invalid.", errors=field_messages(error))


def field_messages(error: ValidationError) -> dict[str, list[str]]:
    """A 400's ``errors``: field -> messages, flat as docs/api.md has it.

    A nested object's fields are named by path (``keys.auth``); a message about
    the nested object as a whole goes under its own name, and one about the
    whole body under ``_schema``.
    """
    flat: dict[str, list[str]] = {}

    def collect(messages, path: str) -> None:
        if isinstance(messages, str):
            flat.setdefault(path or "_schema", []).append(messages)
        elif isinstance(messages, dict):
            for name, inner in messages.items():
                collect(inner, path if name == "_schema" else f"{path}.{name}".lstrip("."))
        else:
            for inner in messages:
                collect(inner, path)

    collect(error.messages, "")
    return flat


def handle_database_error(error: SQLAlchemyError) -> Response:
    if is_unavailable(error):
        # The class name is enough: driver messages can carry host names and SQL.
        current_app.logger.warning(
            "database unavailable: %s (SQLSTATE %s)", type(error).__name__, sqlstate_of(error)
        )
        return service_unavailable("The database is unavailable; try again shortly.")
    current_app.logger.exception("database error")
    return problem(500, InternalServerError.description)


def handle_unexpected_error(error: Exception) -> Response:
    current_app.logger.exception("unhandled exception")
    return problem(500, InternalServerError.description)


def is_unavailable(error: SQLAlchemyError) -> bool:
    """True when the database cannot be reached or is busy: worth retrying (503).

    Other operational errors (SQLite's "no such table", say) are bugs: 500.
    """
    if isinstance(error, TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    if isinstance(error.orig, sqlite3.Error):
        return error.orig.sqlite_errorname in ("SQLITE_BUSY", "SQLITE_LOCKED")
    sqlstate = sqlstate_of(error)
    # No SQLSTATE: the connection failed before the server answered.
    return sqlstate is None or sqlstate.startswith(RETRYABLE_SQLSTATES)


def sqlstate_of(error: SQLAlchemyError) -> str | None:
    return getattr(getattr(error, "orig", None), "pgcode", None)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(SQLAlchemyError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected_error)
