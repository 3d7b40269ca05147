"""Listing (docs/api.md, Listing): filters, every sort order, keyset pages, cursors, counts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from taskapi.data.models import PRIORITIES, Task
from taskapi.extensions import db

from ..helpers import TASKS, assert_problem, bearer

SORT_KEYS = ["created_at", "updated_at", "title", "due_at", "priority", "remind_at"]


def next_link(response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<(/api/[^>]+)>; rel="next"', link)
    assert match, link
    return match.group(1)


def walk(client, url: str, user: str = "alice") -> tuple[list[dict], list]:
    """Follow Link headers from ``url``; return every task seen and each page's size."""
    tasks, sizes = [], []
    while url:
        response = client.get(url, headers=bearer(user))
        assert response.status_code == 200, response.json
        tasks += response.json
        sizes.append(len(response.json))
        url = next_link(response)
        assert len(sizes) < 1000
    return tasks, sizes


def test_first_page_defaults(client, create_task):
    ids = [create_task()["id"] for _ in range(3)]
    response = client.get(TASKS, headers=bearer())
    assert [task["id"] for task in response.json] == ids[::-1]
    assert response.headers["X-Total-Count"] == "3"
    assert "Link" not in response.headers


def test_pages_follow_link_until_the_end(client, create_task):
    ids = [create_task(title=f"t{n}")["id"] for n in range(7)]
    first = client.get(f"{TASKS}?limit=3", headers=bearer())
    assert first.headers["X-Total-Count"] == "7"
    link = next_link(first)
    query = parse_qs(urlsplit(link).query)
    assert query["limit"] == ["3"] and query["sort"] == ["-created_at"] and "cursor" in query
    tasks, sizes = walk(client, f"{TASKS}?limit=3")
    assert sizes == [3, 3, 1]
    assert [task["id"] for task in tasks] == ids[::-1]


def test_exact_multiple_of_limit_has_no_empty_last_page(client, create_task):
    for _ in range(4):
        create_task()
    _tasks, sizes = walk(client, f"{TASKS}?limit=2")
    assert sizes == [2, 2]


@pytest.fixture
def tied_tasks(app, create_task):
    """Tasks with many equal sort values, some without due_at or remind_at."""
    base = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    tasks = []
    for n in range(13):
        due = None if n % 4 == 0 else (base + timedelta(days=n % 3)).isoformat()
        remind = None if n % 3 == 1 else (base - timedelta(hours=n % 2)).isoformat()
        tasks.append(
            create_task(
                title="abc"[n % 3], priority=PRIORITIES[n % 3], due_at=due, remind_at=remind
            )
        )
    with app.app_context():  # ties in the timestamps too: two values for 13 tasks
        for task in tasks:
            stamp = base + timedelta(minutes=task["id"] % 2)
            db.session.execute(
                update(Task).where(Task.id == task["id"]).values(created_at=stamp, updated_at=stamp)
            )
        db.session.commit()
    return tasks


def expected_order(tasks: list[dict], sort: str) -> list[int]:
    key = sort.removeprefix("-")
    descending = sort.startswith("-")

    def value(task):
        return PRIORITIES.index(task[key]) if key == "priority" else task[key]

    present = [task for task in tasks if task[key] is not None]
    missing = [task for task in tasks if task[key] is None]  # null due_at: always last
    present.sort(key=lambda task: (value(task), task["id"]), reverse=descending)
    missing.sort(key=lambda task: task["id"], reverse=descending)
    return [task["id"] for task in present + missing]


@pytest.mark.parametrize("sort", SORT_KEYS + [f"-{key}" for key in SORT_KEYS])
@pytest.mark.parametrize("limit", [1, 4, 500])
def test_every_sort_order_walks_each_task_once_in_order(client, tied_tasks, sort, limit):
    current = {task["id"]: task for task in client.get(TASKS, headers=bearer()).json}
    tasks, _sizes = walk(client, f"{TASKS}?sort={sort}&limit={limit}")
    assert [task["id"] for task in tasks] == expected_order(list(current.values()), sort)


def test_priority_sorts_by_rank_not_alphabet(client, create_task):
    for priority in ["normal", "high", "low"]:
        create_task(priority=priority)
    listed = client.get(f"{TASKS}?sort=-priority", headers=bearer()).json
    assert [task["priority"] for task in listed] == ["high", "normal", "low"]


@pytest.mark.parametrize("sort", ["-created_at", "title", "due_at", "-priority"])
def test_walk_is_stable_while_tasks_come_and_go(client, create_task, sort):
    survivors = [
        create_task(title=f"s{n}", due_at=None if n % 3 else "2027-01-01T00:00:00Z")
        for n in range(12)
    ]
    doomed = [create_task(title=f"d{n}") for n in range(6)]
    url, seen, page = f"{TASKS}?sort={sort}&limit=3", [], 0
    while url:
        response = client.get(url, headers=bearer())
        seen += [task["id"] for task in response.json]
        url = next_link(response)
        # Between pages: new tasks arrive and others are deleted.
        create_task(title=f"new{page}", due_at="2026-12-01T00:00:00Z")
        if doomed:
            victim = doomed.pop()
            assert client.delete(f"{TASKS}/{victim['id']}", headers=bearer()).status_code == 204
        page += 1
    assert len(seen) == len(set(seen)), "a task was listed twice"
    assert {task["id"] for task in survivors} <= set(seen)


def test_status_filters_and_counts(client, create_task):
    past, future = "2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    done = create_task(title="done", completed=True, due_at=past)
    late = create_task(title="late", due_at=past)
    later = create_task(title="later", due_at=future)
    undated = create_task(title="undated")
    cases = {
        "all": {done["id"], late["id"], later["id"], undated["id"]},
        "pending": {late["id"], later["id"], undated["id"]},
        "completed": {done["id"]},
        "overdue": {late["id"]},
    }
    for status, expected in cases.items():
        response = client.get(f"{TASKS}?status={status}&limit=1", headers=bearer())
        assert response.headers["X-Total-Count"] == str(len(expected)), status
        assert {task["id"] for task in walk(client, f"{TASKS}?status={status}&limit=1")[0]} == (
            expected
        )


@pytest.mark.parametrize(
    ("needle", "matches"),
    [
        ("milk", {"Buy MILK", "oat milk"}),
        ("MiLk", {"Buy MILK", "oat milk"}),
        ("100%", {"100% done"}),
        ("%", {"100% done"}),
        ("a_b", {"a_b"}),
        ("_", {"a_b"}),
        ("it's", {'it\'s "quoted"'}),
        ('"quoted"', {'it\'s "quoted"'}),
        ("back\\slash", {"back\\slash"}),
        ("\\", {"back\\slash"}),
        ("in description", {"plain"}),
        ("nothing like this", set()),
    ],
)
def test_q_matches_literally_in_title_or_description(client, create_task, needle, matches):
    for title in ["Buy MILK", "100% done", "a_b", "aXb", 'it\'s "quoted"', "back\\slash"]:
        create_task(title=title)
    create_task(title="oat", description="oat milk")
    create_task(title="plain", description="text in description")
    response = client.get(TASKS, query_string={"q": needle}, headers=bearer())
    assert response.status_code == 200
    found = {
        task["title"] if task["title"] != "oat" else task["description"] for task in response.json
    }
    assert found == matches
    assert response.headers["X-Total-Count"] == str(len(matches))


def test_q_folds_case_beyond_ascii(client, create_task):
    create_task(title="ÉCOLE Straße")
    for needle in ("école", "ÉCOLE", "straße", "STRASSE"[:4]):
        listed = client.get(TASKS, query_string={"q": needle}, headers=bearer()).json
        assert [task["title"] for task in listed] == ["ÉCOLE Straße"], needle


def test_q_keeps_other_users_out(client, create_task):
    create_task("bob", title="secret milk")
    assert client.get(TASKS, query_string={"q": "milk"}, headers=bearer()).json == []


def test_q_and_status_carry_over_to_next_page(client, create_task):
    for n in range(5):
        create_task(title=f"match {n}", completed=n % 2 == 0)
    create_task(title="other")
    tasks, _ = walk(client, f"{TASKS}?q=match&status=completed&limit=1")
    assert sorted(task["title"] for task in tasks) == ["match 0", "match 2", "match 4"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=%EF%BC%95",  # a fullwidth 5
        "limit=1_0",
        "limit=%205",
        "sort=bogus",
        "sort=--title",
        "sort=id",
        "sort=",
        "sort=tags",
        "due_after=tomorrow",
        "due_after=2027-01-01",
        "due_before=2027-01-01T00:00:00",
        "due_before=2027-01-01T00:00:00%20Z",
        "remind_before=now",
        "remind_before=",
        "status=done",
        "status=",
        "cursor=garbage",
        "q=" + "x" * 201,
        "q=nul%00",
        "limit=1&limit=2",
    ],
)
def test_bad_parameters_are_400(client, query):
    response = client.get(f"{TASKS}?{query}", headers=bearer())
    assert_problem(response, 400)
    assert query.split("=")[0] in response.json["errors"]


def test_limit_bounds_accepted(client, create_task):
    create_task()
    for limit in (1, 500):
        assert client.get(f"{TASKS}?limit={limit}", headers=bearer()).status_code == 200


def test_empty_cursor_and_q_mean_none(client, create_task):
    create_task()
    response = client.get(f"{TASKS}?cursor=&q=", headers=bearer())
    assert response.status_code == 200
    assert len(response.json) == 1


def test_unknown_parameters_are_ignored(client):
    assert client.get(f"{TASKS}?_=12345", headers=bearer()).status_code == 200


def first_cursor(client, user="alice", query="limit=1"):
    link = next_link(client.get(f"/api/{user}/tasks?{query}", headers=bearer(user)))
    return parse_qs(urlsplit(link).query)["cursor"][0]


def test_tampered_cursor_is_400(client, create_task):
    for _ in range(3):
        create_task()
    cursor = first_cursor(client)
    middle = len(cursor) // 2
    for forged in (
        cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :],
        cursor[:-2],
        cursor + "x",
    ):
        response = client.get(f"{TASKS}?limit=1&cursor={forged}", headers=bearer())
        assert response.status_code == 400
        assert "cursor" in response.json["errors"]


def test_another_users_cursor_is_400(client, create_task):
    for _ in range(2):
        create_task("bob", title="bob's")
        create_task("alice")
    bobs_cursor = first_cursor(client, "bob")
    response = client.get(f"{TASKS}?limit=1&cursor={bobs_cursor}", headers=bearer())
    assert response.status_code == 400
    assert "bob's" not in response.get_data(as_text=True)


def test_cursor_from_another_query_is_400(client, create_task):
    for _ in range(3):
        create_task()
    cursor = first_cursor(client, query="limit=1&sort=title")
    response = client.get(f"{TASKS}?limit=1&sort=-title&cursor={cursor}", headers=bearer())
    assert response.status_code == 400
    response = client.get(f"{TASKS}?limit=1&sort=title&q=x&cursor={cursor}", headers=bearer())
    assert response.status_code == 400
    # The limit may change between pages.
    response = client.get(f"{TASKS}?limit=2&sort=title&cursor={cursor}", headers=bearer())
    assert response.status_code == 200


def test_empty_page_after_a_cursor_still_counts(client, create_task):
    older, newer = create_task(title="older"), create_task(title="newer")
    first_page = client.get(f"{TASKS}?limit=1", headers=bearer())
    assert [task["id"] for task in first_page.json] == [newer["id"]]
    link = next_link(first_page)
    assert client.delete(f"{TASKS}/{older['id']}", headers=bearer()).status_code == 204
    response = client.get(link.replace("http://localhost", ""), headers=bearer())
    assert response.json == []
    assert response.headers["X-Total-Count"] == "1"
    assert "Link" not in response.headers
