"""Reading JSON request bodies: 415 for the wrong type, 400 for bad JSON."""

from __future__ import annotations

from flask import abort, json, request
from marshmallow import Schema


def load_json(schema: Schema, *, optional: bool = False) -> dict | None:
    """Parse the body as a JSON object and load it through ``schema``.

    With ``optional``, an empty body is allowed and gives ``None``.
    """
    raw = request.get_data(cache=True)  # 413 over MAX_CONTENT_LENGTH
    if optional and not raw:
        return None
    if not request.is_json:
        abort(415, "Send the body as JSON with 'Content-Type: application/json'.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        abort(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        abort(400, "The request body must be a JSON object.")
    return schema.load(data)
