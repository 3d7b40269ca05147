"""Idempotency-Key on POST (docs/api.md, Idempotent creates): retries create nothing new."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

import pytest
from sqlalchemy import func, select, update

from taskapi.data.models import IdempotencyKey, utcnow
from taskapi.extensions import db

from ..helpers import TASKS, assert_problem, bearer


def post(client, body, key, user="alice"):
    return client.post(
        f"/api/{user}/tasks", json=body, headers=bearer(user) | {"Idempotency-Key": key}
    )


def count_tasks(client, user="alice"):
    return len(client.get(f"/api/{user}/tasks", headers=bearer(user)).json)


def test_retry_returns_the_first_response_and_creates_nothing(client):
    first = post(client, {"title": "once"}, "key-1")
    assert first.status_code == 201
    again = post(client, {"title": "once"}, "key-1")
    assert again.status_code == 201
    assert again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count_tasks(client) == 1


def test_same_body_in_another_formatting_is_the_same(client):
    first = post(client, {"title": "once", "priority": "high"}, "key-1")
    again = client.post(
        TASKS,
        data='{ "priority" : "high",\n "title": "once" }',
        content_type="application/json",
        headers=bearer() | {"Idempotency-Key": "key-1"},
    )
    assert again.json == first.json
    assert count_tasks(client) == 1


def test_different_body_with_the_same_key_is_409(client):
    post(client, {"title": "first"}, "key-1")
    response = post(client, {"title": "second"}, "key-1")
    assert_problem(response, 409)
    assert count_tasks(client) == 1


def test_keys_of_different_users_never_collide(client):
    assert post(client, {"title": "x"}, "shared", "alice").status_code == 201
    bob = post(client, {"title": "x"}, "shared", "bob")
    assert bob.status_code == 201
    assert "Idempotent-Replayed" not in bob.headers
    assert bob.json["user_id"] == "bob"


def test_different_keys_create_different_tasks(client):
    post(client, {"title": "x"}, "key-1")
    post(client, {"title": "x"}, "key-2")
    assert count_tasks(client) == 2


def test_failed_request_is_not_remembered(client):
    assert post(client, {"title": ""}, "key-1").status_code == 400
    assert post(client, {"title": "fixed"}, "key-1").status_code == 201


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there", "ünï", "nul\x00"])
def test_bad_keys_are_400(client, key):
    # Through the WSGI environ: the test client refuses to send some of these headers.
    response = client.post(
        TASKS,
        json={"title": "x"},
        headers=bearer(),
        environ_overrides={"HTTP_IDEMPOTENCY_KEY": key},
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json["errors"]
    assert count_tasks(client) == 0


def test_longest_key_is_accepted(client):
    assert post(client, {"title": "x"}, "k" * 255).status_code == 201


def test_expired_key_creates_again_and_old_rows_are_cleaned(app, client, runner):
    post(client, {"title": "x"}, "old")
    post(client, {"title": "x"}, "older")
    with app.app_context():
        db.session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    assert "Idempotent-Replayed" not in post(client, {"title": "x"}, "old").headers
    assert count_tasks(client) == 3
    with app.app_context():  # the other expired key of this user went with it
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


def test_purge_command_deletes_expired_keys(app, client, runner):
    post(client, {"title": "x"}, "old")
    post(client, {"title": "x"}, "new")
    with app.app_context():
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=utcnow() - timedelta(hours=25))
        )
        db.session.commit()
    result = runner.invoke(args=["purge-idempotency-keys"])
    assert "Deleted 1 expired" in result.output
    with app.app_context():
        assert db.session.scalars(select(IdempotencyKey.key)).all() == ["new"]


def test_concurrent_duplicates_create_exactly_one_task(app, client):
    client.get(TASKS, headers=bearer())  # the user exists; the race is on the key alone
    for round_ in range(3):
        barrier = Barrier(8)

        def send(_n, key=f"race-{round_}", title=f"race {round_}", barrier=barrier):
            test_client = app.test_client()
            barrier.wait()
            return post(test_client, {"title": title}, key)

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(send, range(8)))
        assert {response.status_code for response in responses} == {201}
        assert len({response.json["id"] for response in responses}) == 1
    assert count_tasks(client) == 3
