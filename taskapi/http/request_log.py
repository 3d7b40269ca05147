"""Request ids and structured logs: one JSON object per line.

Every response carries ``X-Request-ID`` (the client's when it is sane, else a
new one), and every request leaves one access line with that id, method,
path, status, duration and user id. Only those fields are logged: never
headers, bodies or query strings, so tokens and passwords cannot leak.
Tracebacks of database errors keep where and what failed (the statement,
without values, and the database's one-line message) but drop PostgreSQL's
DETAIL and the like, which quote rows: "Key (email)=(...) already exists",
"Failing row contains (...)" with a task's title.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import sys
import time
import traceback

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler
from sqlalchemy.exc import StatementError

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
RECORD_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "user_id")

access_log = logging.getLogger("taskapi.access")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in RECORD_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return encode_json(entry)

    def formatException(self, exc_info) -> str:
        return "".join(scrubbed_traceback(exc_info[1])).rstrip("\n")


def scrubbed_traceback(error: BaseException) -> list[str]:
    """``traceback.format_exception(error)``, with database errors' messages scrubbed."""
    lines = []
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None:
        lines += scrubbed_traceback(cause)
        lines.append(
            "\nThe above exception was the direct cause of the following exception:\n\n"
            if error.__cause__ is not None
            else "\nDuring handling of the above exception, another exception occurred:\n\n"
        )
    lines.append("Traceback (most recent call last):\n")
    lines += traceback.format_tb(error.__traceback__)
    lines.append(f"{type(error).__module__}.{type(error).__qualname__}: {safe_message(error)}\n")
    return lines


def safe_message(error: BaseException) -> str:
    if isinstance(error, StatementError):
        return f"{database_message(error.orig)}\n[SQL: {error.statement}]"
    if isinstance(error, sqlite3.Error) or hasattr(error, "pgcode"):
        return database_message(error)
    return str(error)


def database_message(error: BaseException) -> str:
    """The driver's one-line message and SQLSTATE; never DETAIL, HINT or CONTEXT."""
    diag = getattr(error, "diag", None)  # psycopg2
    if diag is not None:
        primary = diag.message_primary or ""
        return f"({type(error).__name__}) SQLSTATE {getattr(error, 'pgcode', None)}: {primary}"
    return f"({type(error).__name__}) {str(error).partition(chr(10))[0]}"


# One encoder for every line: json.dumps with options builds a new one per call.
encode_json = json.JSONEncoder(ensure_ascii=False).encode
_formatted_second: tuple[int, str] = (-1, "")


def utc_time(record: logging.LogRecord) -> str:
    """``2026-11-27T05:20:00.123Z``; the part down to the second is formatted once a second."""
    global _formatted_second
    second = int(record.created)
    if _formatted_second[0] != second:
        _formatted_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_formatted_second[1]}.{int(record.msecs):03d}Z"


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged during it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


def configure_logging(app: Flask) -> None:
    logger = logging.getLogger("taskapi")
    logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    app.logger.removeHandler(default_handler)
    if not any(isinstance(h.formatter, JSONFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JSONFormatter())
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
    # One line per event: not again through whatever the root logger has.
    logger.propagate = False


def start_request() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else new_request_id()


def new_request_id() -> str:
    """32 random hex digits: as unique as a UUID4's, without building a UUID."""
    return os.urandom(16).hex()


def finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or new_request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    method, path, status = request.method, request.path, response.status_code
    access_log.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(
                (time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2
            ),
            "user_id": g.get("user_id"),
        },
    )
    return response


def init_request_log(app: Flask) -> None:
    configure_logging(app)
    app.before_request(start_request)
    app.after_request(finish_request)
