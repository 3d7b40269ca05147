"""Bearer tokens: missing ones are 401, other users' ids are 403, other users' tasks 404.

The table of hostile tokens is in test_jwt_attacks.py.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from taskapi.auth.caches import BoundedCache
from taskapi.auth.users import ensure_user
from taskapi.data.models import Task, User
from taskapi.extensions import db

from ..helpers import TASK_ENDPOINTS, TASKS, USER_ENDPOINTS, assert_problem, bearer, make_token


def test_missing_header_is_401_without_error_code(client):
    response = client.get(TASKS)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_rejected_token_says_invalid_token(client):
    response = client.get(TASKS, headers={"Authorization": "Bearer x.y.z"})
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_expired_token_says_so(client):
    response = client.get(TASKS, headers=bearer(now=time.time() - 120, lifetime=60))
    assert response.json["detail"] == "The access token has expired."


@pytest.mark.parametrize(
    "user_id", ["a b", "tab\there", "nul\x00", "x" * 256, "ünïcode", "semi;colon", ""]
)
def test_token_with_unusable_user_id_is_401(client, user_id):
    response = client.get(TASKS, headers=bearer(user_id))
    assert response.status_code == 401


def test_bad_token_changes_nothing(client, create_task):
    task = create_task()
    forged = f"Bearer {make_token('alice', secret='another-secret-' + 'y' * 60)}"
    response = client.delete(f"{TASKS}/{task['id']}", headers={"Authorization": forged})
    assert response.status_code == 401
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), USER_ENDPOINTS)
def test_every_endpoint_needs_a_token(client, create_task, method, path, body):
    url = path.format(user="alice", task=create_task("alice")["id"])
    response = getattr(client, method)(url, json=body)
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), USER_ENDPOINTS)
def test_another_users_url_is_403(client, create_task, method, path, body):
    task = create_task("alice", tags=["work"])
    url = path.format(user="alice", task=task["id"])
    response = getattr(client, method)(url, json=body, headers=bearer("bob"))
    assert_problem(response, 403)
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer("alice")).json == task


@pytest.mark.parametrize("url_user", ["Alice", "alice ", "alice%00", "alice%2Fx", "x" * 300])
def test_url_user_id_must_match_exactly(client, url_user):
    response = client.get(f"/api/{url_user}/tasks", headers=bearer("alice"))
    assert response.status_code in (403, 404)
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(("method", "path", "body"), TASK_ENDPOINTS)
def test_another_users_task_through_own_url_is_404(client, create_task, method, path, body):
    task = create_task("alice", title="Alice's")
    url = path.format(user="bob", task=task["id"])
    response = getattr(client, method)(url, json=body, headers=bearer("bob"))
    assert response.status_code == 404
    assert response.json["detail"] == "Task not found."
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer("alice")).json == task


def test_lists_never_include_other_users_tasks(client, create_task):
    alice_ids = {create_task("alice")["id"] for _ in range(3)}
    bob_ids = {create_task("bob")["id"] for _ in range(2)}
    assert {t["id"] for t in client.get(TASKS, headers=bearer("alice")).json} == (alice_ids)
    assert {t["id"] for t in client.get("/api/bob/tasks", headers=bearer("bob")).json} == bob_ids
    assert client.get("/api/carol/tasks", headers=bearer("carol")).json == []


def test_user_is_created_from_token_claims_on_first_sight(app, client):
    headers = bearer("k3v9", email="Kim@Example.COM", name="  Kim  ")
    assert client.get("/api/k3v9/tasks", headers=headers).status_code == 200
    with app.app_context():
        user = db.session.get(User, "k3v9")
        assert (user.email, user.name, user.password_hash) == ("kim@example.com", "Kim", None)
        assert user.created_at.tzinfo is not None


def test_invalid_claims_are_not_stored(app, client):
    headers = bearer("u1", email="not an email", name="x" * 101)
    assert client.get("/api/u1/tasks", headers=headers).status_code == 200
    with app.app_context():
        user = db.session.get(User, "u1")
        assert (user.email, user.name) == (None, None)


def test_token_email_owned_by_another_user_is_dropped(app, client):
    client.get("/api/first/tasks", headers=bearer("first", email="same@example.com"))
    response = client.post(
        "/api/second/tasks", json={"title": "x"}, headers=bearer("second", email="same@example.com")
    )
    assert response.status_code == 201
    with app.app_context():
        assert db.session.get(User, "second").email is None
        assert db.session.get(User, "first").email == "same@example.com"


def test_deleting_a_user_deletes_their_tasks(app, create_task):
    create_task("alice")
    create_task("bob")
    with app.app_context():
        db.session.delete(db.session.get(User, "alice"))
        db.session.commit()
        owners = db.session.scalars(select(Task.user_id)).all()
    assert owners == ["bob"]


def test_a_token_that_worked_stops_working_when_it_expires(client):
    issued = time.time()
    token = make_token("alice", now=issued, lifetime=2.0)  # expires at issued + 2.0 s
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(TASKS, headers=headers).status_code == 200
    assert client.get(TASKS, headers=headers).status_code == 200  # remembered
    time.sleep(max(0.0, issued + 2.0 - time.time()) + 0.05)
    response = client.get(TASKS, headers=headers)
    assert response.status_code == 401
    assert response.json["detail"] == "The access token has expired."


def test_a_token_that_worked_still_only_opens_its_own_tasks(client):
    headers = bearer("alice")
    assert client.get(TASKS, headers=headers).status_code == 200
    assert client.get("/api/bob/tasks", headers=headers).status_code == 403


def test_remembered_entries_are_evicted_oldest_first():
    cache = BoundedCache(capacity=2)
    cache.put("first", 1)
    cache.put("second", 2)
    assert cache.get("first") == 1  # being read does not keep it longer
    cache.put("third", 3)
    assert "first" not in cache
    assert (cache.get("second"), cache.get("third"), len(cache)) == (2, 3, 2)


@pytest.mark.parametrize(
    "claims",
    [
        {"name": "Kim\ud800"},
        {"email": "kim\ud800@example.com"},
        {"email": "\u0130" * 200 + "@example.com"},  # 212 characters; 412 once lower-cased
    ],
    ids=["name with a lone surrogate", "email with a lone surrogate", "email longer when lower"],
)
def test_claims_that_cannot_be_stored_are_dropped_not_500(app, client, claims):
    headers = bearer("kim", **claims)
    for _ in range(2):
        assert client.get("/api/kim/tasks", headers=headers).status_code == 200
        assert (
            client.post("/api/kim/tasks", json={"title": "x"}, headers=headers).status_code == 201
        )
    with app.app_context():
        user = db.session.get(User, "kim")
        assert (user.email, user.name) == (None, None)


def test_a_user_is_provisioned_without_a_request_by_the_same_rules(app, client):
    """Another process (the MCP server, say) makes the row the web app would have made."""
    with app.app_context():
        ensure_user("carol", {"sub": "carol", "email": "Carol@Example.com", "name": " Carol "})
    with app.app_context():
        user = db.session.get(User, "carol")
        assert (user.email, user.name) == ("carol@example.com", "Carol")
    assert client.get("/api/carol/tasks", headers=bearer("carol")).status_code == 200


@pytest.mark.parametrize("idempotency_key", [None, "create-1"])
def test_a_user_row_deleted_while_remembered_is_made_again(app, client, idempotency_key):
    headers = bearer("gone", email="gone@example.com")
    assert (
        client.post("/api/gone/tasks", json={"title": "first"}, headers=headers).status_code == 201
    )
    with app.app_context():  # an operator deletes the user (and so their tasks)
        db.session.delete(db.session.get(User, "gone"))
        db.session.commit()
    extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = client.post("/api/gone/tasks", json={"title": "again"}, headers=headers | extra)
    assert response.status_code == 201
    assert [t["title"] for t in client.get("/api/gone/tasks", headers=headers).json] == ["again"]
    with app.app_context():
        assert db.session.get(User, "gone").email == "gone@example.com"
