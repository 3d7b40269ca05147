"""Bodies encoded by orjson read exactly as Flask's own encoder would write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from flask import Flask

from taskapi.http.flask_app import TaskAPI

VALUES = {
    "a task": {"title": "Milch kaufen 🥛", "id": 7, "tags": ["home"], "due_at": None},
    "sorted keys": {"b": 1, "a": {"d": 2, "c": 3}},
    "a datetime (Flask writes an HTTP date)": {"at": datetime(2026, 12, 8, 7, 0, tzinfo=UTC)},
    "an integer past 64 bits (orjson refuses it)": {"n": 2**70},
    "integer keys": {1: "one"},
    "line separators": {"text": "a\u2028b\u2029c"},
}


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES)
def test_bodies_parse_as_flasks_and_end_with_a_newline(value):
    ours, flasks = TaskAPI(__name__), Flask(__name__)
    with ours.app_context():
        body = ours.json.response(value).get_data()
    with flasks.app_context():
        expected = flasks.json.response(value).get_data()
    assert json.loads(body) == json.loads(expected)
    assert body.endswith(b"\n") and not body.endswith(b"\n\n")
    assert list(json.loads(body)) == list(json.loads(expected))  # same key order


def test_debug_bodies_are_indented_for_reading():
    app = TaskAPI(__name__)
    app.debug = True
    with app.app_context():
        assert b'\n  "a": 1' in app.json.response({"a": 1}).get_data()
