"""Request ids and structured logs: one JSON object per line.

Every response carries ``X-Request-ID`` (the client's when it is sane, else a
new one), and every request leaves one access line with that id, method,
path, status, duration and user id. Only those fields are logged: never
headers, bodies or query strings, so tokens and passwords cannot leak.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
RECORD_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "user_id")

access_log = logging.getLogger("taskapi.access")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
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
        return json.dumps(entry, ensure_ascii=False)


JSONFormatter.converter = time.gmtime


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged during it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
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
    g.request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    access_log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
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
