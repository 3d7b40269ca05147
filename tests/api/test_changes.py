"""The change feed (docs/api.md, "Change feed (sync)"): a first sync, changes since a
token, paging, tokens, 410.

The concurrency proof (writers through gunicorn committing out of order while
a reader follows the feed) is in tests/infrastructure/test_change_feed_concurrency.py.
"""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, select, update

from taskapi.data.change_feed import FeedToken
from taskapi.data.change_numbers import execute_with_change_number
from taskapi.data.database import atomic
from taskapi.data.keyset import Position
from taskapi.data.models import Task, User
from taskapi.extensions import db
from taskapi.http.cursors import decode_feed_token, encode_feed_token

from ..helpers import CHANGES, TASKS, TRASH, assert_problem, bearer


def poll(client, since: str | None = None, user: str = "alice", **params):
    query = {"since": since, **params} if since else params
    response = client.get(f"/api/{user}/changes", query_string=query, headers=bearer(user))
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"changes", "next", "more"}
    return body


def follow(client, since: str | None = None, user: str = "alice", **params):
    """Every change from ``since`` on, page after page; and the last token."""
    changes = []
    while True:
        body = poll(client, since, user, **params)
        changes += body["changes"]
        since = body["next"]
        if not body["more"]:
            return changes, since


def apply(state: dict, changes: list[dict]) -> dict:
    """What a client does with changes: keep the latest state, drop deletions."""
    for change in changes:
        if change.get("deleted"):
            state.pop(change["id"], None)
        else:
            state[change["id"]] = change
    return state


def current_tasks(client, user: str = "alice") -> dict:
    response = client.get(f"/api/{user}/tasks?limit=500", headers=bearer(user))
    return {task["id"]: task for task in response.json}


def test_without_since_every_current_task_and_a_token(client, create_task):
    tasks = [create_task(title=f"t{n}") for n in range(3)]
    trashed = create_task(title="trashed")
    client.delete(f"{TASKS}/{trashed['id']}", headers=bearer())
    create_task(user_id="bob")
    body = poll(client)
    assert body["more"] is False
    assert body["changes"] == tasks  # each task exactly as the API shows it, oldest change first
    assert body["next"]


def test_an_empty_account_gets_no_changes_and_a_working_token(client, create_task):
    body = poll(client)
    assert (body["changes"], body["more"]) == ([], False)
    task = create_task()
    assert poll(client, body["next"])["changes"] == [task]


def test_since_a_token_every_change_after_it_with_the_latest_state(client, create_task):
    kept = create_task(title="kept")
    edited = create_task(title="edited")
    trashed = create_task(title="trashed")
    token = poll(client)["next"]

    new = create_task(title="new")
    client.patch(f"{TASKS}/{edited['id']}", json={"title": "edited twice"}, headers=bearer())
    client.patch(f"{TASKS}/{edited['id']}", json={"priority": "high"}, headers=bearer())
    client.delete(f"{TASKS}/{trashed['id']}", headers=bearer())

    changes, token = follow(client, token)
    by_id = {change["id"]: change for change in changes}
    assert kept["id"] not in by_id
    assert by_id[new["id"]] == new
    latest = client.get(f"{TASKS}/{edited['id']}", headers=bearer()).json
    assert by_id[edited["id"]] == latest
    assert (latest["title"], latest["priority"]) == ("edited twice", "high")
    deletion = by_id[trashed["id"]]
    assert set(deletion) == {"id", "deleted", "deleted_at"}
    assert deletion["deleted"] is True
    assert deletion["deleted_at"].endswith("Z")
    # The same token later: only what is newer.
    assert poll(client, token)["changes"] == []
    restored = client.post(f"{TRASH}/{trashed['id']}/restore", headers=bearer()).json
    assert poll(client, token)["changes"] == [restored]


def test_following_the_feed_rebuilds_the_task_list(client, create_task):
    state = apply({}, follow(client)[0])
    token = follow(client)[1]
    tasks = [create_task(title=f"t{n}", tags=["x"], completed=n % 2 == 0) for n in range(6)]
    client.delete(f"{TASKS}?status=completed", headers=bearer())
    client.patch("/api/alice/tags/x", json={"name": "y"}, headers=bearer())
    client.post(f"{TRASH}/{tasks[0]['id']}/restore", headers=bearer())
    client.delete(f"{TRASH}/{tasks[2]['id']}", headers=bearer())
    client.delete(TRASH, headers=bearer())
    changes, token = follow(client, token, limit=1)
    assert apply(state, changes) == current_tasks(client)
    assert state[tasks[1]["id"]]["tags"] == ["y"]  # renamed while live
    assert state[tasks[0]["id"]]["tags"] == ["x"]  # in the trash meanwhile
    assert poll(client, token)["changes"] == []


def test_pages_of_a_bulk_change_miss_nothing(client, create_task):
    """Clear completed writes many tasks in one transaction: one change number for all."""
    token = poll(client)["next"]
    tasks = [create_task(completed=True) for _ in range(5)]
    _, token = follow(client, token)
    client.delete(f"{TASKS}?status=completed", headers=bearer())
    pages, changes = 0, []
    while True:
        body = poll(client, token, limit=2)
        pages += 1
        changes += body["changes"]
        token = body["next"]
        if not body["more"]:
            break
    assert pages == 3
    assert sorted(change["id"] for change in changes) == [task["id"] for task in tasks]
    assert all(change["deleted"] for change in changes)


def test_erased_tasks_come_as_deletions(client, create_task):
    task = create_task()
    client.delete(f"{TASKS}/{task['id']}", headers=bearer())
    token = poll(client)["next"]
    client.delete(f"{TRASH}/{task['id']}", headers=bearer())
    (change,) = poll(client, token)["changes"]
    assert (change["id"], change["deleted"]) == (task["id"], True)
    # A token from before the task existed gets its deletion (and not the task).
    changes, _ = follow(client, seal_token("alice", 0, 0))
    assert [(c["id"], c.get("deleted")) for c in changes] == [(task["id"], True)]


def test_a_completed_recurring_task_and_its_next_occurrence_both_come(client, create_task):
    task = create_task(due_at="2027-01-04T09:00:00Z", recurrence="FREQ=DAILY")
    token = poll(client)["next"]
    done = client.patch(f"{TASKS}/{task['id']}/complete", headers=bearer())
    changes = poll(client, token)["changes"]
    assert [change["id"] for change in changes] == sorted(current_tasks(client))
    assert changes[0] == done.json


def test_another_users_changes_never_appear(client, create_task):
    create_task(user_id="bob", title="bob's")
    token = poll(client)["next"]
    bobs = create_task(user_id="bob")
    client.delete(f"/api/bob/tasks/{bobs['id']}", headers=bearer("bob"))
    assert poll(client)["changes"] == []
    assert poll(client, token)["changes"] == []


def seal_token(user: str, number: int, task_id: int, issued_at: float | None = None) -> str:
    """A token as the server makes them (tests share the secret; the fixture below
    gives the sealing its app)."""
    issued = int(time.time() if issued_at is None else issued_at)
    return encode_feed_token(user, FeedToken(Position(0, number, task_id), issued))


@pytest.fixture(autouse=True)
def app_context(app):
    with app.app_context():
        yield


def test_a_token_older_than_the_retention_is_410(client, create_task):
    create_task()
    fresh = seal_token("alice", 0, 0, time.time() - 29 * 86400)
    assert client.get(f"{CHANGES}?since={fresh}", headers=bearer()).status_code == 200
    old = seal_token("alice", 0, 0, time.time() - 31 * 86400)
    response = client.get(f"{CHANGES}?since={old}", headers=bearer())
    assert_problem(response, 410)
    assert "without since" in response.json["detail"]


def test_a_token_mid_backlog_ages_from_when_its_reader_was_last_caught_up(
    app, client, create_task, monkeypatch
):
    """A reader that stops mid-backlog and returns after the retention must start
    over: the deletions it has not read yet may have been purged meanwhile."""
    first, second = create_task(), create_task()
    position = decode_feed_token("alice", poll(client)["next"]).position
    number, task_id = position.value, position.id
    # Caught up at that position 29.5 days ago: within the retention of 30.
    token = seal_token("alice", number, task_id, time.time() - 29.5 * 86400)
    client.patch(f"{TASKS}/{second['id']}", json={"title": "edited"}, headers=bearer())
    client.delete(f"{TASKS}/{first['id']}", headers=bearer())
    page = poll(client, token, limit=1)
    assert page["more"] is True and [c["id"] for c in page["changes"]] == [second["id"]]
    # A day later (the same as a retention a day shorter): issued a day ago, but
    # its reader was last caught up 30.5 days ago.
    monkeypatch.setitem(app.config, "TRASH_RETENTION_DAYS", 29)
    assert client.get(f"{CHANGES}?since={page['next']}", headers=bearer()).status_code == 410
    # Read to the end instead, a reader is caught up now, and its token is young.
    caught_up = poll(client, seal_token("alice", number, task_id))
    assert caught_up["more"] is False
    assert [change["id"] for change in caught_up["changes"]] == [second["id"], first["id"]]
    assert poll(client, caught_up["next"])["changes"] == []


def test_a_token_from_before_the_user_was_made_again_is_410(app, client, create_task):
    """An operator deleted the user's row (and so its tasks); a new one began a new feed."""
    for _ in range(5):
        create_task()
    token = poll(client)["next"]
    with app.app_context():
        db.session.execute(delete(Task).where(Task.user_id == "alice"))
        db.session.execute(delete(User).where(User.id == "alice"))
        db.session.commit()
    create_task()
    response = client.get(f"{CHANGES}?since={token}", headers=bearer())
    assert response.status_code == 410
    assert "without since" in response.json["detail"]


def test_other_users_tokens_list_cursors_and_garbage_are_400(client, create_task):
    for _ in range(3):
        create_task()
    bobs = poll(client, user="bob")["next"]
    link = client.get(f"{TASKS}?limit=1", headers=bearer()).headers["Link"]
    cursor = link.split("cursor=")[1].split(">")[0].split("&")[0]
    mine = poll(client)["next"]
    tampered = mine[:-2] + ("AA" if mine[-2:] != "AA" else "BB")
    for since in (bobs, cursor, tampered, "nonsense", "x" * 257):
        response = client.get(f"{CHANGES}?since={since}", headers=bearer())
        assert response.status_code == 400, since
        assert "since" in response.json["errors"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "limit=%EF%BC%95", "since="])
def test_bad_parameters_are_400(client, query):
    assert client.get(f"{CHANGES}?{query}", headers=bearer()).status_code == 400


def test_the_limit_defaults_to_500_and_goes_to_1000(client, create_task):
    for n in range(3):
        create_task(title=f"t{n}")
    assert len(poll(client, limit=1000)["changes"]) == 3
    assert poll(client, limit=2)["more"] is True


def test_tokens_reveal_nothing_of_tasks(client, create_task):
    create_task(title="secret plans")
    token = poll(client)["next"]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"secret" not in raw
    assert b"alice" not in raw
    create_task(title="x" * 200)
    assert len(poll(client)["next"]) == len(token)


def test_a_reader_misses_nothing_while_threads_write_on_either_database(app, client):
    """In-process, on SQLite too: its single writer orders the change numbers by commit."""

    def write(n: int) -> None:
        writer = app.test_client()
        created = writer.post(TASKS, json={"title": f"t{n}", "tags": ["x"]}, headers=bearer())
        assert created.status_code == 201, created.json
        task_id = created.json["id"]
        writer.patch(f"{TASKS}/{task_id}", json={"title": f"t{n} edited"}, headers=bearer())
        if n % 3 == 0:
            writer.delete(f"{TASKS}/{task_id}", headers=bearer())
        if n % 6 == 0:
            writer.post(f"{TRASH}/{task_id}/restore", headers=bearer())
        if n % 5 == 0:
            writer.patch(f"{TASKS}/{task_id}/complete", headers=bearer())

    state: dict = {}
    token = follow(client)[1]
    done = threading.Event()

    def read() -> None:
        nonlocal token
        reader = app.test_client()
        while not done.is_set():
            changes, token = follow(reader, token, limit=3)
            apply(state, changes)

    reader_thread = threading.Thread(target=read)
    reader_thread.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(60)))
    done.set()
    reader_thread.join()
    changes, token = follow(client, token)
    assert apply(state, changes) == current_tasks(client)
    assert len(state) == 50  # 20 trashed (every third), 10 of them restored (every sixth)


def test_the_writes_of_one_transaction_share_one_change_number(client, create_task):
    """Even when the first write's RETURNING does not carry the number (data.change_numbers)."""
    first, second = create_task(), create_task()
    tasks = Task.__table__
    with atomic():
        for task, title in ((first, "one"), (second, "two")):
            rename = update(tasks).where(tasks.c.id == task["id"]).values(title=title)
            execute_with_change_number("alice", rename.returning(tasks.c.id))
    numbers = db.session.execute(
        select(tasks.c.change_number).where(tasks.c.id.in_([first["id"], second["id"]]))
    ).scalars()
    assert len(set(numbers)) == 1
