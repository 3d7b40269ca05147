"""The change feed skips nothing while writes of one user run at once and commit late.

Through a real gunicorn on PostgreSQL: writer threads create, edit, complete,
trash, restore and erase one user's tasks (and another user's) while a
separate database session keeps taking locks for a moment at a time, on the
user's counter row and on single tasks, so writes queue and commit long after
they started. A reader follows ``next`` the whole time, in small pages. At
the end, what the reader applied (tasks kept, deletions dropped) must equal
the user's tasks as the API lists them, field for field, and nothing it read
may belong to the other user.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.parse

import psycopg2
import pytest

from harness.databases import fresh_postgres_database
from harness.gunicorn import call, gunicorn

from ..helpers import TEST_DATABASE_URL, make_token

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")

WRITERS = 3
OPERATIONS_PER_WRITER = 80


class Api:
    def __init__(self, base: str, user: str):
        self.base, self.user, self.token = base, user, make_token(user, lifetime=600)

    def __call__(self, method: str, path: str, body: dict | None = None):
        url = f"{self.base}/api/{self.user}{path}"
        status, _headers, data = call(url, method, body, self.token)
        return status, json.loads(data) if data else None


def write_at_random(api: Api, seed: int, failures: list) -> None:
    """A mix of every kind of write, on the writer's own tasks and on others'."""
    rng = random.Random(seed)
    mine: list[int] = []
    for n in range(OPERATIONS_PER_WRITER):
        kind = rng.choice(["create", "create", "edit", "complete", "trash", "restore", "erase"])
        if kind == "create" or not mine:
            body = {"title": f"w{seed}-{n}", "tags": [f"t{n % 3}"]}
            if rng.random() < 0.3:
                body |= {"due_at": "2027-01-04T09:00:00Z", "recurrence": "FREQ=DAILY"}
            status, task = api("POST", "/tasks", body)
            expected = {201}
            if status == 201:
                mine.append(task["id"])
        else:
            task_id = rng.choice(mine)
            if kind == "edit":
                status, _ = api("PATCH", f"/tasks/{task_id}", {"title": f"w{seed}-{n}-edited"})
            elif kind == "complete":
                status, _ = api("PATCH", f"/tasks/{task_id}/complete")
            elif kind == "trash":
                status, _ = api("DELETE", f"/tasks/{task_id}")
            elif kind == "restore":
                status, _ = api("POST", f"/trash/{task_id}/restore")
            else:
                status, _ = api("DELETE", f"/trash/{task_id}")
            expected = {200, 204, 404}  # 404: not live, or not in the trash
        if status not in expected:
            failures.append((kind, status))


def hold_locks(database_url: str, user: str, stop: threading.Event) -> int:
    """Lock the user's counter row, or one of the user's tasks, for a moment; again and again."""
    rng = random.Random(7)
    connection = psycopg2.connect(database_url.replace("+psycopg2", "", 1))
    held = 0
    try:
        while not stop.is_set():
            with connection.cursor() as cursor:
                if rng.random() < 0.5:
                    cursor.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user,))
                else:
                    cursor.execute(
                        "SELECT 1 FROM tasks WHERE user_id = %s "
                        "ORDER BY random() LIMIT 1 FOR UPDATE",
                        (user,),
                    )
                held += 1
                time.sleep(rng.uniform(0.02, 0.15))
            connection.commit()
            time.sleep(rng.uniform(0.0, 0.05))
    finally:
        connection.close()
    return held


def test_a_reader_following_next_misses_nothing_while_writes_commit_late():
    with (
        fresh_postgres_database(TEST_DATABASE_URL) as database_url,
        gunicorn(database_url, WEB_CONCURRENCY="6") as (base, _process),
    ):
        alice, bob = Api(base, "alice"), Api(base, "bob")
        bob("POST", "/tasks", {"title": "bob's first"})
        alice("POST", "/tasks", {"title": "before the reader"})

        state: dict[int, dict] = {}
        seen_ids: set[int] = set()
        polls = 0
        status, body = alice("GET", "/changes?limit=7")
        assert status == 200, body

        def apply(page: dict) -> str:
            for change in page["changes"]:
                seen_ids.add(change["id"])
                if change.get("deleted"):
                    state.pop(change["id"], None)
                else:
                    assert change["user_id"] == "alice", change
                    state[change["id"]] = change
            return page["next"]

        token = apply(body)
        stop_locks, writers_done = threading.Event(), threading.Event()
        failures: list = []
        locks_held: list[int] = []
        locker = threading.Thread(
            target=lambda: locks_held.append(hold_locks(database_url, "alice", stop_locks))
        )
        writers = [
            threading.Thread(target=write_at_random, args=(alice, seed, failures))
            for seed in range(WRITERS)
        ] + [threading.Thread(target=write_at_random, args=(bob, 99, failures))]
        locker.start()
        for writer in writers:
            writer.start()

        def watch_writers():
            for writer in writers:
                writer.join()
            writers_done.set()

        threading.Thread(target=watch_writers).start()
        while not writers_done.is_set():  # follow next all the time
            status, body = alice("GET", f"/changes?limit=7&since={quote(token)}")
            assert status == 200, body
            token = apply(body)
            polls += 1
        stop_locks.set()
        locker.join()
        while True:  # the writes are over: read to the end
            status, body = alice("GET", f"/changes?limit=7&since={quote(token)}")
            token = apply(body)
            if not body["more"]:
                break

        assert failures == []
        final = list_all(alice)
        bobs = set(list_all(bob)) | trashed_ids(bob)
        print(f"{len(final)} tasks, {polls} polls, {locks_held[0]} locks, {len(seen_ids)} ids")
        assert len(final) > 10 and polls > 20 and locks_held[0] > 10
        assert state == final  # nothing missing, nothing stale, nothing extra
        assert not seen_ids & bobs  # nothing from the other user
        status, body = alice("GET", f"/changes?since={quote(token)}")
        assert (status, body["changes"], body["more"]) == (200, [], False)


def quote(token: str) -> str:
    return urllib.parse.quote(token, safe="")


def list_all(api: Api) -> dict[int, dict]:
    status, tasks = api("GET", "/tasks?limit=500")
    assert status == 200 and len(tasks) < 500
    return {task["id"]: task for task in tasks}


def trashed_ids(api: Api) -> set[int]:
    status, tasks = api("GET", "/trash?limit=500")
    assert status == 200
    return {task["id"] for task in tasks}
