"""Recurring tasks (docs/api.md, Recurring tasks): rules, zones, next occurrences, and
each spawned once."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..helpers import TASKS, bearer

MONDAY = "2027-01-04T09:00:00Z"


def post(client, body):
    return client.post(TASKS, json={"title": "repeat"} | body, headers=bearer())


def next_occurrence(client, task: dict, **request) -> dict | None:
    """Complete ``task`` with the toggle (or ``request``); the task its Link names, if any."""
    method = request.pop("method", "patch")
    path = request.pop("path", f"{TASKS}/{task['id']}/complete")
    response = getattr(client, method)(path, headers=bearer(), **request)
    assert response.status_code == 200, response.json
    assert response.json["completed"] is True
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'</api/alice/tasks/(\d+)>; rel="next-occurrence"', link)
    assert match, link
    found = client.get(f"{TASKS}/{match.group(1)}", headers=bearer())
    assert found.status_code == 200
    return found.json


def due_dates(client, create_task, steps: int, **fields) -> list[str]:
    """The due_at of the first task and of each next occurrence, completing ``steps`` times."""
    task = create_task(**fields)
    dates = [task["due_at"]]
    for _ in range(steps):
        task = next_occurrence(client, task)
        if task is None:
            break
        dates.append(task["due_at"])
    return dates


def all_tasks(client) -> list[dict]:
    return client.get(f"{TASKS}?sort=created_at&limit=500", headers=bearer()).json


# Validation.


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,WE",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "freq=weekly;interval=2;wkst=su;byday=tu",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=YEARLY;BYDAY=+53MO",
        "FREQ=DAILY;COUNT=2",
        "FREQ=DAILY;COUNT=1000",
        "FREQ=DAILY;UNTIL=20991231T000000Z",
        "FREQ=YEARLY;INTERVAL=366",
        "FREQ=DAILY;INTERVAL=1;BYMONTH=1,12",
    ],
)
def test_rules_in_the_allowed_subset_are_stored_as_sent(create_task, rule):
    task = create_task(due_at=MONDAY, recurrence=rule)
    assert task["recurrence"] == rule
    assert task["series_id"] == task["id"]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY",
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "FREQ=DAILY;BYHOUR=9",
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1",
        "FREQ=YEARLY;BYWEEKNO=1",
        "FREQ=YEARLY;BYYEARDAY=1",
        "FREQ=DAILY;BYMINUTE=5",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;INTERVAL=367",
        "FREQ=DAILY;INTERVAL=-1",
        "FREQ=DAILY;INTERVAL=\u0661",  # an Arabic-Indic 1
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;COUNT=1001",
        "FREQ=DAILY;COUNT=3;UNTIL=20991231T000000Z",
        "FREQ=DAILY;UNTIL=20991231",
        "FREQ=DAILY;UNTIL=20991231T000000",
        "FREQ=DAILY;UNTIL=20991331T000000Z",
        "RRULE:FREQ=DAILY",
        "",
        "   ",
        "FREQ=DAILY;",
        "FREQ=DAILY;;INTERVAL=2",
        "FREQ",
        "FREQ=DAILY;FREQ=WEEKLY",
        "INTERVAL=2",
        "FREQ=FORTNIGHTLY",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=WEEKLY;BYDAY=MO,",
        "FREQ=WEEKLY;BYDAY=1MO",
        "FREQ=DAILY;BYDAY=-1FR",
        "FREQ=MONTHLY;BYDAY=6MO",
        "FREQ=MONTHLY;BYDAY=0MO",
        "FREQ=WEEKLY;BYMONTHDAY=1",
        "FREQ=MONTHLY;BYMONTHDAY=0",
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=YEARLY;BYMONTH=13",
        "FREQ=YEARLY;BYMONTH=-1",
        "FREQ=WEEKLY;WKST=XX",
        "FREQ=DAILY;EXDATE=20270101T000000Z",
        "FREQ=DAILY;X-NAME=1",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31,-31",
        "FREQ=DAILY;UNTIL=20200101T000000Z",
        "FREQ=DAILY;COUNT=1",
        "FREQ=DAILY;INTERVAL=7;BYDAY=TU",
        "FREQ=DAILY\x00",
        "FREQ=DAILY;" + "BYMONTH=1," * 20,
        "FREQ=YEARLY;BYDAY=20MO;BYMONTH=12",  # with BYMONTH, the weekday counts in the month
        "FREQ=YEARLY;BYDAY=-6FR;BYMONTH=2",
        "FREQ=DA\u0131LY",  # a dotless i upper-cases to I
        "FREQ=WEEKLY;BYDAY=MO,\u017fU",  # a long s upper-cases to S
        42,
        ["FREQ=DAILY"],
    ],
)
def test_rules_outside_the_subset_are_400_naming_recurrence(client, rule):
    response = post(client, {"due_at": MONDAY, "recurrence": rule})
    assert response.status_code == 400, response.json
    assert "recurrence" in response.json["errors"], response.json
    assert all_tasks(client) == []


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"])
def test_iana_zones_are_accepted(create_task, zone):
    task = create_task(due_at=MONDAY, recurrence="FREQ=DAILY", time_zone=zone)
    assert task["time_zone"] == zone


@pytest.mark.parametrize(
    "zone",
    ["Mars/Olympus", "europe/berlin", "../../etc/passwd", "/etc/localtime", "localtime", "", 3],
)
def test_unknown_zones_are_400(client, zone):
    response = post(client, {"time_zone": zone})
    assert response.status_code == 400
    assert "time_zone" in response.json["errors"]
    assert all_tasks(client) == []


def test_a_recurring_task_needs_due_at(client, create_task):
    response = post(client, {"recurrence": "FREQ=DAILY"})
    assert response.status_code == 400
    assert "due_at" in response.json["errors"]
    plain = create_task()
    url = f"{TASKS}/{plain['id']}"
    response = client.patch(url, json={"recurrence": "FREQ=DAILY"}, headers=bearer())
    assert response.status_code == 400
    assert "due_at" in response.json["errors"]
    recurring = create_task(due_at=MONDAY, recurrence="FREQ=DAILY")
    url = f"{TASKS}/{recurring['id']}"
    response = client.patch(url, json={"due_at": None}, headers=bearer())
    assert response.status_code == 400
    assert "due_at" in response.json["errors"]
    assert client.get(url, headers=bearer()).json == recurring
    assert client.get(f"{TASKS}/{plain['id']}", headers=bearer()).json == plain


def test_a_write_that_leaves_no_next_occurrence_is_400_and_changes_nothing(client, create_task):
    task = create_task(
        due_at=MONDAY, recurrence="FREQ=DAILY;UNTIL=20270110T090000Z", time_zone="Europe/Berlin"
    )
    url = f"{TASKS}/{task['id']}"
    for change in (
        {"due_at": "2027-01-10T09:00:00Z"},
        {"recurrence": "FREQ=DAILY;UNTIL=20270104T090000Z"},
        {"title": "with it", "due_at": "2027-02-01T00:00:00Z"},
    ):
        response = client.patch(url, json=change, headers=bearer())
        assert response.status_code == 400, change
        assert "recurrence" in response.json["errors"]
    assert client.get(url, headers=bearer()).json == task
    # In Berlin, Sunday 23:30 UTC is already Monday: the next Monday is a week on, past UNTIL.
    sunday_night = create_task(
        due_at="2027-01-10T23:30:00Z", recurrence="FREQ=WEEKLY;BYDAY=MO;UNTIL=20270112T000000Z"
    )
    url = f"{TASKS}/{sunday_night['id']}"
    response = client.patch(url, json={"time_zone": "Europe/Berlin"}, headers=bearer())
    assert response.status_code == 400
    assert "recurrence" in response.json["errors"]
    assert client.get(url, headers=bearer()).json == sunday_night


@pytest.mark.parametrize(
    ("due_at", "zone"),
    [("9999-12-31T00:00:00Z", None), ("9999-12-31T20:00:00Z", "Asia/Tokyo")],
)
def test_no_occurrence_past_the_calendars_end_is_400(client, due_at, zone):
    response = post(client, {"due_at": due_at, "recurrence": "FREQ=DAILY", "time_zone": zone})
    assert response.status_code == 400
    assert "recurrence" in response.json["errors"]


def test_the_earliest_times_recur(create_task, client):
    task = create_task(due_at="0001-01-01T12:00:00Z", recurrence="FREQ=YEARLY", time_zone="UTC")
    assert next_occurrence(client, task)["due_at"] == "0002-01-01T12:00:00Z"


def test_a_reminder_that_cannot_move_is_dropped_not_a_500(client, create_task):
    task = create_task(due_at=MONDAY, remind_at="9999-12-31T23:59:00Z", recurrence="FREQ=DAILY")
    following = next_occurrence(client, task)
    assert (following["due_at"], following["remind_at"]) == ("2027-01-05T09:00:00Z", None)


def test_series_id_is_read_only_and_null_for_plain_tasks(client, create_task):
    assert create_task()["series_id"] is None
    for field in ("series_id", "occurrence", "spawned_at_version"):  # the last two: internal
        response = post(client, {field: 1})
        assert response.status_code == 400
        assert field in response.json["errors"]
    assert len(all_tasks(client)) == 1  # the plain task above


def test_a_task_that_stops_recurring_keeps_its_series(client, create_task):
    task = create_task()
    url = f"{TASKS}/{task['id']}"
    body = {"due_at": MONDAY, "recurrence": "FREQ=DAILY"}
    assert client.patch(url, json=body, headers=bearer()).json["series_id"] == task["id"]
    stopped = client.patch(url, json={"recurrence": None}, headers=bearer()).json
    assert (stopped["recurrence"], stopped["series_id"]) == (None, task["id"])
    assert next_occurrence(client, stopped) is None


# Next occurrences.


def test_the_next_occurrence_copies_the_task(client, create_task):
    task = create_task(
        title="Water plants",
        description="all of them",
        priority="high",
        tags=["home", "Garden"],
        due_at=MONDAY,
        remind_at="2027-01-04T08:30:00Z",
        recurrence="FREQ=DAILY",
        time_zone="Europe/Berlin",
    )
    following = next_occurrence(client, task)
    assert following["id"] != task["id"]
    assert following["completed"] is False
    for field in ("title", "description", "priority", "tags", "recurrence", "time_zone"):
        assert following[field] == task[field], field
    assert following["series_id"] == task["id"]
    assert following["due_at"] == "2027-01-05T09:00:00Z"
    assert following["remind_at"] == "2027-01-05T08:30:00Z"
    pending = client.get(f"{TASKS}?tag=garden&status=pending", headers=bearer()).json
    assert pending == [following]
    assert next_occurrence(client, following)["series_id"] == task["id"]


# (first due_at, rule, the due dates of the series as its tasks are completed in turn)
SERIES = {
    "weekly on several days": (
        MONDAY,
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        ["2027-01-04", "2027-01-06", "2027-01-08", "2027-01-11", "2027-01-13"],
    ),
    "weekly from a day off the rule": (
        "2027-01-06T09:00:00Z",
        "FREQ=WEEKLY;BYDAY=MO",
        ["2027-01-06", "2027-01-11", "2027-01-18"],
    ),
    "every other week keeps its weeks": (
        MONDAY,
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
        ["2027-01-04", "2027-01-06", "2027-01-18", "2027-01-20", "2027-02-01"],
    ),
    "monthly from the 31st skips shorter months": (
        "2027-01-31T10:00:00Z",
        "FREQ=MONTHLY",
        ["2027-01-31", "2027-03-31", "2027-05-31", "2027-07-31"],
    ),
    "BYMONTHDAY=-1 is each month's last day": (
        "2027-01-31T10:00:00Z",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"],
    ),
    "BYMONTHDAY=-1 in a leap year": (
        "2028-01-31T10:00:00Z",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        ["2028-01-31", "2028-02-29", "2028-03-31"],
    ),
    "yearly on February 29th, past 2100": (
        "2096-02-29T12:00:00Z",
        "FREQ=YEARLY",
        ["2096-02-29", "2104-02-29", "2108-02-29"],
    ),
    "COUNT counts the whole series": (
        MONDAY,
        "FREQ=DAILY;COUNT=3",
        ["2027-01-04", "2027-01-05", "2027-01-06"],
    ),
    "UNTIL includes an occurrence at it": (
        MONDAY,
        "FREQ=DAILY;UNTIL=20270106T090000Z",
        ["2027-01-04", "2027-01-05", "2027-01-06"],
    ),
    "UNTIL just before an occurrence excludes it": (
        MONDAY,
        "FREQ=DAILY;UNTIL=20270106T085959Z",
        ["2027-01-04", "2027-01-05"],
    ),
}


@pytest.mark.parametrize(("due_at", "rule", "days"), SERIES.values(), ids=SERIES)
def test_each_series_follows_rfc_5545(client, create_task, due_at, rule, days):
    dates = due_dates(client, create_task, len(days), due_at=due_at, recurrence=rule)
    assert [date[:10] for date in dates[: len(days)]] == days
    ends = "COUNT" in rule or "UNTIL" in rule  # then completing the last day's task creates none
    assert len(dates) == len(days) + (0 if ends else 1)
    assert {date[10:] for date in dates} == {due_at[10:]}  # the same time of day


def test_count_is_not_restarted_by_editing_a_later_occurrence(client, create_task):
    first = create_task(due_at=MONDAY, recurrence="FREQ=DAILY;COUNT=2")
    second = next_occurrence(client, first)
    url = f"{TASKS}/{second['id']}"
    moved = client.patch(url, json={"due_at": "2027-02-01T09:00:00Z"}, headers=bearer())
    assert moved.status_code == 200
    assert next_occurrence(client, moved.json) is None


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # 09:00 local, the day before and the day of each change.
        ("Europe/Berlin", "2027-03-27T08:00:00Z", "2027-03-28T07:00:00Z"),
        ("Europe/Berlin", "2027-10-30T07:00:00Z", "2027-10-31T08:00:00Z"),
        ("America/New_York", "2027-03-13T14:00:00Z", "2027-03-14T13:00:00Z"),
        ("America/New_York", "2027-11-06T13:00:00Z", "2027-11-07T14:00:00Z"),
    ],
)
def test_a_daily_task_stays_at_nine_local_across_dst(client, create_task, zone, before, after):
    dates = due_dates(
        client, create_task, 1, due_at=before, recurrence="FREQ=DAILY", time_zone=zone
    )
    assert dates == [before, after]


def test_without_a_zone_occurrences_are_in_utc(client, create_task):
    dates = due_dates(
        client, create_task, 1, due_at="2027-03-27T08:00:00Z", recurrence="FREQ=DAILY"
    )
    assert dates[1] == "2027-03-28T08:00:00Z"


def test_remind_at_keeps_its_offset_and_fractions_stay(client, create_task):
    task = create_task(
        due_at="2027-03-27T08:00:00.250Z",
        remind_at="2027-03-26T20:00:00Z",
        recurrence="FREQ=DAILY",
        time_zone="Europe/Berlin",
    )
    following = next_occurrence(client, task)
    assert following["due_at"] == "2027-03-28T07:00:00.250000Z"
    assert following["remind_at"] == "2027-03-27T19:00:00Z"  # 12 h before, as before


@pytest.mark.parametrize(
    ("method", "body"), [("patch", {"completed": True}), ("put", {"completed": True, "title": "t"})]
)
def test_completing_by_put_or_patch_creates_the_next_occurrence(client, create_task, method, body):
    task = create_task(due_at=MONDAY, recurrence="FREQ=DAILY")
    following = next_occurrence(
        client, task, method=method, path=f"{TASKS}/{task['id']}", json=body
    )
    assert following["due_at"] == "2027-01-05T09:00:00Z"


def test_plain_tasks_and_uncompleting_create_nothing(client, create_task):
    plain = create_task(due_at=MONDAY)
    assert next_occurrence(client, plain) is None
    recurring = create_task(due_at=MONDAY, recurrence="FREQ=DAILY", completed=True)
    url = f"{TASKS}/{recurring['id']}/complete"
    response = client.patch(url, json={"completed": False}, headers=bearer())
    assert (response.status_code, response.headers.get("Link")) == (200, None)
    assert len(all_tasks(client)) == 2


# At most one next occurrence per task.


def test_complete_uncomplete_complete_spawns_once(client, create_task):
    task = create_task(due_at=MONDAY, recurrence="FREQ=DAILY")
    url = f"{TASKS}/{task['id']}"
    assert next_occurrence(client, task) is not None
    for _ in range(3):
        client.patch(f"{url}/complete", headers=bearer())  # back to pending
        assert next_occurrence(client, task) is None
        assert (
            client.patch(url, json={"completed": True}, headers=bearer()).headers.get("Link")
            is None
        )
    assert len(all_tasks(client)) == 2


def test_deleting_the_next_occurrence_does_not_let_the_task_spawn_again(client, create_task):
    task = create_task(due_at=MONDAY, recurrence="FREQ=DAILY")
    following = next_occurrence(client, task)
    assert client.delete(f"{TASKS}/{following['id']}", headers=bearer()).status_code == 204
    client.patch(f"{TASKS}/{task['id']}/complete", headers=bearer())
    assert next_occurrence(client, task) is None
    assert [t["id"] for t in all_tasks(client)] == [task["id"]]


def test_a_retried_toggle_with_an_idempotency_key_is_answered_once(client, create_task):
    task = create_task(due_at=MONDAY, recurrence="FREQ=DAILY")
    url = f"{TASKS}/{task['id']}/complete"
    headers = bearer() | {"Idempotency-Key": "complete-once"}
    first = client.patch(url, headers=headers)
    retries = [client.patch(url, headers=headers) for _ in range(3)]
    assert first.status_code == 200 and first.json["completed"] is True
    for retry in retries:
        assert retry.status_code == 200
        assert retry.json == first.json
        assert retry.headers["Link"] == first.headers["Link"]
        assert retry.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["completed"] is True
    assert len(all_tasks(client)) == 2
    other = client.patch(url, json={"completed": True}, headers=headers)
    assert other.status_code == 409  # the same key with another body


def test_concurrent_completions_spawn_once(app, client, create_task):
    tasks = [create_task(due_at=MONDAY, recurrence="FREQ=DAILY") for _ in range(4)]

    def complete(n):
        task = tasks[n % len(tasks)]
        test_client = app.test_client()
        body = {"completed": True} if n % 2 else None
        response = test_client.patch(f"{TASKS}/{task['id']}/complete", json=body, headers=bearer())
        return response.status_code, response.headers.get("Link")

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(complete, range(64)))
    assert {status for status, _ in results} == {200}
    links = [link for _, link in results if link]
    assert len(links) == len(set(links)) == len(tasks)
    series = {}
    for task in all_tasks(client):
        series.setdefault(task["series_id"], []).append(task)
    assert sorted(len(members) for members in series.values()) == [2] * len(tasks)
