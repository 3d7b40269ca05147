"""``arguments``: a view's body or query string, loaded through a schema and documented by it."""

from __future__ import annotations

from functools import wraps

from flask import request

from .bodies import load_json
from .openapi import input_spec

# The keyword argument each location's loaded value is passed to the view as.
ARGUMENT_NAMES = {"json": "body", "query": "args"}


def arguments(schema_class: type, *, location: str = "json", required: bool = True):
    """Load the request's ``location`` through ``schema_class``; pass it to the view
    as ``body`` (``"json"``) or ``args`` (``"query"``); describe it in the OpenAPI document.

    A body is read by ``taskapi.http.bodies.load_json`` (415, 400 or 413 when
    it cannot be read); either way a field the schema refuses is a 400 naming
    it. With ``required=False`` an empty body is allowed and gives ``None``.
    Place it below ``user_view`` (or ``auth_rate_limit``): the token and the
    rate limit are checked before the request is read.
    """
    schema = schema_class()
    name = ARGUMENT_NAMES[location]

    def load():
        if location == "query":
            return schema.load(request.args)
        return load_json(schema, optional=not required)

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            return view(*args, **kwargs, **{name: load()})

        inputs = getattr(view, "openapi_inputs", ())
        wrapper.openapi_inputs = (*inputs, input_spec(schema_class, location, required))
        return wrapper

    return decorate
