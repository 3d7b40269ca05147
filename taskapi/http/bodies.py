"""Reading JSON request bodies: 415 for the wrong type, 400 for bad JSON, 413 when too big."""

from __future__ import annotations

from flask import abort, json, request
from marshmallow import Schema
from werkzeug.wsgi import LimitedStream


def load_json(schema: Schema, *, optional: bool = False) -> dict | None:
    """Parse the body as a JSON object and load it through ``schema``.

    With ``optional``, an empty body is allowed and gives ``None``.
    """
    raw = request_body()
    if optional and not raw:
        return None
    if not request.is_json:
        abort(415, "Send the body as JSON with 'Content-Type: application/json'.")
    try:
        # Strict UTF-8: Python's JSON parser would let encoded surrogates through.
        data = json.loads(raw.decode())
    except UnicodeDecodeError:
        abort(400, "The request body is not valid UTF-8.")
    except (ValueError, RecursionError):
        abort(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        abort(400, "The request body must be a JSON object.")
    return schema.load(data)


def request_body() -> bytes:
    """The whole body; 413 when it is over MAX_CONTENT_LENGTH, chunked or not.

    Werkzeug refuses a Content-Length over the limit, but a chunked body
    (gunicorn terminates those) is only read up to the limit and the rest
    silently dropped: a cut-off body could still parse as JSON.
    """
    raw = request.get_data(cache=True)
    stream = request.stream
    if (
        request.content_length is None
        and isinstance(stream, LimitedStream)
        and stream.is_exhausted
        and request.environ["wsgi.input"].read(1)
    ):
        abort(413)
    return raw
