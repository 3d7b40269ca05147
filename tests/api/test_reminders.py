"""Reminders (remind_at, remind_before, sort=remind_at) and due date ranges (docs/api.md,
Reminders and Listing)."""

from __future__ import annotations

import pytest

from ..helpers import TASKS, bearer


def titles(client, query: str) -> list[str]:
    response = client.get(f"{TASKS}?{query}", headers=bearer())
    assert response.status_code == 200, response.json
    return [task["title"] for task in response.json]


def test_remind_at_is_optional_stored_in_utc_and_clearable(client, create_task):
    assert create_task()["remind_at"] is None
    task = create_task(remind_at="2027-01-04T09:30:00+01:00")
    assert task["remind_at"] == "2027-01-04T08:30:00Z"
    url = f"{TASKS}/{task['id']}"
    assert client.get(url, headers=bearer()).json["remind_at"] == "2027-01-04T08:30:00Z"
    assert client.patch(url, json={"remind_at": None}, headers=bearer()).json["remind_at"] is None


@pytest.mark.parametrize("value", ["2027-01-04T09:30:00", "soon", "", 1767000000, True])
def test_bad_remind_at_is_400(client, value):
    response = client.post(TASKS, json={"title": "x", "remind_at": value}, headers=bearer())
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


def poll_and_claim(client, poll: str) -> dict[int, tuple[int, str | None]]:
    """One tab running docs/frontend.md's recipe: list the due reminders, read each
    task's ETag, and claim it by clearing remind_at with If-Match. A 200 means
    "show it", a 412 "another tab did". Task id -> (status, ETag after the claim)."""
    answers = {}
    for listed in client.get(poll, headers=bearer()).json:
        url = f"{TASKS}/{listed['id']}"
        etag = client.get(url, headers=bearer()).headers["ETag"]
        claim = client.patch(url, json={"remind_at": None}, headers=bearer() | {"If-Match": etag})
        answers[listed["id"]] = (claim.status_code, claim.headers.get("ETag"))
    return answers


def test_two_tabs_polling_together_notify_once_and_snooze_works(client, create_task):
    first = create_task(title="first", remind_at="2027-01-04T08:00:00Z")
    second = create_task(title="second", remind_at="2027-01-04T08:30:00Z")
    create_task(title="later", remind_at="2027-01-04T09:30:00Z")
    poll = f"{TASKS}?status=pending&remind_before=2027-01-04T09:00:00Z&sort=remind_at"
    # Both tabs list the same reminders and read the same ETags before either claims.
    listed = [client.get(poll, headers=bearer()).json for _ in range(2)]
    assert [task["title"] for task in listed[0]] == ["first", "second"] and listed[0] == listed[1]
    etags = {
        task["id"]: client.get(f"{TASKS}/{task['id']}", headers=bearer()).headers["ETag"]
        for task in listed[0]
    }
    shown, claimed = {}, {}
    for tab in ("one", "two"):
        for task in listed[0]:
            claim = client.patch(
                f"{TASKS}/{task['id']}",
                json={"remind_at": None},
                headers=bearer() | {"If-Match": etags[task["id"]]},  # as the tab read it
            )
            shown.setdefault(task["id"], []).append((tab, claim.status_code))
            if claim.status_code == 200:
                claimed[task["id"]] = claim.headers["ETag"]
    assert shown == {
        first["id"]: [("one", 200), ("two", 412)],
        second["id"]: [("one", 200), ("two", 412)],
    }
    assert client.get(poll, headers=bearer()).json == []
    assert poll_and_claim(client, poll) == {}  # a later poll finds nothing left to show

    # Snooze the first for 15 minutes, with the ETag its claim returned.
    snoozed = client.patch(
        f"{TASKS}/{first['id']}",
        json={"remind_at": "2027-01-04T09:15:00Z"},
        headers=bearer() | {"If-Match": claimed[first["id"]]},
    )
    assert snoozed.status_code == 200
    later = f"{TASKS}?status=pending&remind_before=2027-01-04T09:15:00Z&sort=remind_at"
    claims = poll_and_claim(client, later)
    assert [status for status, _etag in claims.values()] == [200]
    assert list(claims) == [first["id"]]


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
    url, seen = f"{TASKS}?{query}", []
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
    first = client.get(f"{TASKS}?due_after=2027-01-01T00:00:00Z&limit=1", headers=bearer())
    link = first.headers["Link"]
    cursor = link[link.index("cursor=") + 7 : link.index(">")]
    for query in ("due_after=2026-01-01T00:00:00Z", "", "remind_before=2027-01-01T00:00:00Z"):
        response = client.get(f"{TASKS}?{query}&limit=1&cursor={cursor}", headers=bearer())
        assert response.status_code == 400, query
