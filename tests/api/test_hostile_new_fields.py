"""Hostile input in the fields of tags, recurrence and reminders: a 400 naming
the field, never a 500, and nothing stored."""

from __future__ import annotations

import pytest

from ..helpers import TAGS, TASKS, bearer

LONE = "\ud800"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tags", [f"work{LONE}"]),
        ("tags", ["ok", f"{LONE}"]),
        ("tags", ["nul\x00"]),
        ("recurrence", f"FREQ=DAILY{LONE}"),
        ("recurrence", "FREQ=DAILY\x00"),
        ("time_zone", f"Europe/Berlin{LONE}"),
        ("time_zone", "Europe/Berlin\x00"),
        ("remind_at", "9999-12-31T23:59:59-23:59"),
        ("remind_at", "0001-01-01T00:00:00+01:00"),
        ("remind_at", f"2027-01-01T00:00:00Z{LONE}"),
        ("due_at", "9999-12-31T23:59:59-23:59"),
    ],
)
@pytest.mark.parametrize("method", ["post", "patch"])
def test_hostile_values_in_the_new_fields_are_400(client, create_task, method, field, value):
    task = create_task(due_at="2027-01-04T09:00:00Z", recurrence="FREQ=DAILY", tags=["kept"])
    body = {field: value} | ({"title": "x"} if method == "post" else {})
    url = TASKS if method == "post" else f"{TASKS}/{task['id']}"
    response = getattr(client, method)(url, json=body, headers=bearer())
    assert response.status_code == 400, response.get_data(as_text=True)
    assert field in response.json["errors"]
    assert client.get(TASKS, headers=bearer()).json == [task]


@pytest.mark.parametrize(
    "query",
    [
        "tag=nul%00",
        "due_after=9999-12-31T23:59:59-23:59",
        "due_before=0001-01-01T00:00:00%2B01:00",
        "remind_before=9999-12-31T23:59:59-23:59",
    ],
)
def test_hostile_list_parameters_are_400(client, query):
    response = client.get(f"{TASKS}?{query}", headers=bearer())
    assert response.status_code == 400, response.get_data(as_text=True)
    assert query.split("=")[0] in response.json["errors"]


def test_a_surrogate_percent_encoded_in_a_tag_filter_matches_nothing(client, create_task):
    """Bytes that are not UTF-8 in a query string arrive replaced (U+FFFD): no error."""
    create_task(tags=["kept"])
    response = client.get(f"{TASKS}?tag=a%ED%A0%80b", headers=bearer())
    assert (response.status_code, response.json) == (200, [])


def test_hostile_tag_names_in_the_url_are_404(client, create_task):
    create_task(tags=["kept"])
    for name in ("a%ED%A0%80b", "nul%00", "%FF%FE"):
        assert client.delete(f"{TAGS}/{name}", headers=bearer()).status_code == 404
        response = client.patch(f"{TAGS}/{name}", json={"name": "x"}, headers=bearer())
        assert response.status_code == 404
    assert client.get(TAGS, headers=bearer()).json == [{"name": "kept", "count": 1}]
