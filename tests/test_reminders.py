"""Reminders (4.6: remind_at, remind_before, sort=remind_at) and due date ranges (4.1)."""

from __future__ import annotations

import pytest

from .helpers import bearer

URL = "/api/alice/tasks"


def titles(client, query: str) -> list[str]:
    response = client.get(f"{URL}?{query}", headers=bearer())
    assert response.status_code == 200, response.json
    return [task["title"] for task in response.json]


def test_remind_at_is_optional_stored_in_utc_and_clearable(client, create_task):
    assert create_task()["remind_at"] is None
    task = create_task(remind_at="2027-01-04T09:30:00+01:00")
    assert task["remind_at"] == "2027-01-04T08:30:00Z"
    url = f"{URL}/{task['id']}"
    assert client.get(url, headers=bearer()).json["remind_at"] == "2027-01-04T08:30:00Z"
    assert client.patch(url, json={"remind_at": None}, headers=bearer()).json["remind_at"] is None


@pytest.mark.parametrize("value", ["2027-01-04T09:30:00", "soon", "", 1767000000, True])
def test_bad_remind_at_is_400(client, value):
    response = client.post(URL, json={"title": "x", "remind_at": value}, headers=bearer())
    assert response.status_code == 400
    assert "remind_at" in response.json["errors"]


def test_remind_before_lists_due_reminders_oldest_first(client, create_task):
    create_task(title="later", remind_at="2027-01-04T10:00:00Z")
    create_task(title="exactly now", remind_at="2027-01-04T09:00:00Z")
    create_task(title="earlier", remind_at="2027-01-04T08:00:00Z")
    create_task(title="done", remind_at="2027-01-04T07:00:00Z", completed=True)
    create_task(title="no reminder")
    create_task("bob", title="bob's", remind_at="2027-01-04T07:00:00Z")
    query = "status=pending&remind_before=2027-01-04T09:00:00Z&sort=remind_at"
    assert titles(client, query) == ["earlier", "exactly now"]
    assert titles(client, "remind_before=2027-01-04T10:00:00%2B01:00&sort=-remind_at") == [
        "exactly now",
        "earlier",
        "done",
    ]


def test_sort_by_remind_at_puts_tasks_without_one_last(client, create_task):
    create_task(title="none")
    create_task(title="b", remind_at="2027-01-02T00:00:00Z")
    create_task(title="a", remind_at="2027-01-01T00:00:00Z")
    assert titles(client, "sort=remind_at") == ["a", "b", "none"]
    assert titles(client, "sort=-remind_at") == ["b", "a", "none"]


def test_two_tabs_clearing_the_same_reminder_notify_once(client, create_task):
    """The polling recipe: list due reminders, then clear or snooze each with If-Match."""
    snoozed = create_task(title="snooze me", remind_at="2027-01-04T08:00:00Z")
    cleared = create_task(title="clear me", remind_at="2027-01-04T08:30:00Z")
    poll = f"{URL}?status=pending&remind_before=2027-01-04T09:00:00Z&sort=remind_at"
    tabs = [client.get(poll, headers=bearer()) for _ in range(2)]
    assert [task["title"] for task in tabs[0].json] == ["snooze me", "clear me"]
    assert tabs[0].json == tabs[1].json

    def etag(task):
        return f'"{task["id"]}.1"'  # the ETag of a task written once, as GET shows it

    assert client.get(f"{URL}/{cleared['id']}", headers=bearer()).headers["ETag"] == etag(cleared)
    answers = {}
    for tab, change in (("first", "2027-01-04T09:15:00Z"), ("second", "2027-01-04T09:20:00Z")):
        answers[tab] = [
            client.patch(
                f"{URL}/{snoozed['id']}",
                json={"remind_at": change},
                headers=bearer() | {"If-Match": etag(snoozed)},
            ).status_code,
            client.patch(
                f"{URL}/{cleared['id']}",
                json={"remind_at": None},
                headers=bearer() | {"If-Match": etag(cleared)},
            ).status_code,
        ]
    assert answers == {"first": [200, 200], "second": [412, 412]}  # the second tab stays quiet
    assert client.get(poll, headers=bearer()).json == []
    later = client.get(f"{URL}?remind_before=2027-01-04T09:15:00Z", headers=bearer()).json
    assert [(task["title"], task["remind_at"]) for task in later] == [
        ("snooze me", "2027-01-04T09:15:00Z")
    ]


def test_due_after_is_inclusive_and_due_before_exclusive(client, create_task):
    for day in ("01", "02", "03", "04"):
        create_task(title=day, due_at=f"2027-01-{day}T00:00:00Z")
    create_task(title="undated")
    query = "due_after=2027-01-02T00:00:00Z&due_before=2027-01-04T00:00:00Z&sort=due_at"
    assert titles(client, query) == ["02", "03"]
    assert titles(client, "due_after=2027-01-03T00:00:00Z&sort=due_at") == ["03", "04"]
    assert titles(client, "due_before=2027-01-02T00:00:00Z&sort=due_at") == ["01"]
    assert titles(client, "due_after=2027-01-04T00:00:00Z&due_before=2027-01-02T00:00:00Z") == []
    assert titles(client, "due_after=2027-01-02T01:00:00%2B01:00&sort=due_at") == ["02", "03", "04"]


def test_a_range_combines_with_filters_and_pages_carry_it(client, create_task):
    for n in range(9):
        create_task(
            title=f"t{n}", due_at=f"2027-01-0{n + 1}T12:00:00Z", tags=["x"] if n % 2 else []
        )
    query = "due_after=2027-01-02T00:00:00.5%2B00:00&due_before=2027-01-09T00:00:00Z&tag=x&limit=1"
    url, seen = f"{URL}?{query}", []
    while url:
        response = client.get(url, headers=bearer())
        assert response.status_code == 200, response.json
        assert response.headers["X-Total-Count"] == "4"
        seen += [task["title"] for task in response.json]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        if url:
            assert "due_after=2027-01-02T00:00:00.500000Z" in url, url
    assert seen == ["t7", "t5", "t3", "t1"]


def test_a_cursor_is_bound_to_its_range(client, create_task):
    for day in ("01", "02", "03"):
        create_task(due_at=f"2027-01-{day}T00:00:00Z")
    first = client.get(f"{URL}?due_after=2027-01-01T00:00:00Z&limit=1", headers=bearer())
    link = first.headers["Link"]
    cursor = link[link.index("cursor=") + 7 : link.index(">")]
    for query in ("due_after=2026-01-01T00:00:00Z", "", "remind_before=2027-01-01T00:00:00Z"):
        response = client.get(f"{URL}?{query}&limit=1&cursor={cursor}", headers=bearer())
        assert response.status_code == 400, query
