"""Planning fields (docs/api.md, Tasks): due_at with an offset, priority by rank."""

from __future__ import annotations

import pytest

from ..helpers import TASKS, bearer


def test_defaults(create_task):
    task = create_task()
    assert task["due_at"] is None
    assert task["priority"] == "normal"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-12-01T09:30:00Z", "2026-12-01T09:30:00Z"),
        ("2026-12-01T09:30:00+00:00", "2026-12-01T09:30:00Z"),
        ("2026-12-01T11:30:00+02:00", "2026-12-01T09:30:00Z"),
        ("2026-12-01T09:30:00.250-05:00", "2026-12-01T14:30:00.250000Z"),
    ],
)
def test_due_at_is_stored_in_utc(client, create_task, sent, stored):
    task = create_task(due_at=sent)
    assert task["due_at"] == stored
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["due_at"] == stored


@pytest.mark.parametrize(
    "due_at",
    [
        "2026-12-01T09:30:00",
        "2026-12-01",
        "tomorrow",
        "",
        1764581400,
        True,
        "2026-13-01T00:00:00Z",
        "2026-12-01T09:30:00Z\u0000",
    ],
)
def test_due_at_without_offset_or_invalid_is_400(client, due_at):
    response = client.post(TASKS, json={"title": "x", "due_at": due_at}, headers=bearer())
    assert response.status_code == 400
    assert "due_at" in response.json["errors"]
    assert client.get(TASKS, headers=bearer()).json == []


@pytest.mark.parametrize("priority", ["low", "normal", "high"])
def test_priorities(create_task, priority):
    assert create_task(priority=priority)["priority"] == priority


@pytest.mark.parametrize("priority", ["urgent", "HIGH", "", None, 2, ["high"]])
def test_bad_priority_is_400(client, priority):
    response = client.post(TASKS, json={"title": "x", "priority": priority}, headers=bearer())
    assert response.status_code == 400
    assert "priority" in response.json["errors"]


def test_planning_fields_are_writable_and_clearable(client, create_task):
    task = create_task(due_at="2026-12-01T09:30:00Z", priority="high")
    url = f"{TASKS}/{task['id']}"
    changed = client.patch(url, json={"priority": "low", "due_at": None}, headers=bearer()).json
    assert (changed["priority"], changed["due_at"]) == ("low", None)
    assert changed["title"] == task["title"]
    put = client.put(url, json={"due_at": "2027-01-01T00:00:00+01:00"}, headers=bearer()).json
    assert put["due_at"] == "2026-12-31T23:00:00Z"
    assert put["priority"] == "low"


def test_overdue_lists_only_pending_tasks_past_due(client, create_task):
    create_task(title="past, open", due_at="2020-01-01T00:00:00Z")
    create_task(title="past, done", due_at="2020-01-01T00:00:00Z", completed=True)
    create_task(title="future", due_at="2999-01-01T00:00:00Z")
    create_task(title="no due date")
    listed = client.get(f"{TASKS}?status=overdue", headers=bearer()).json
    assert [task["title"] for task in listed] == ["past, open"]
