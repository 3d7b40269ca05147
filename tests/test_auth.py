"""Bearer tokens: every failure is a 401, other users' ids are 403, other users' tasks 404."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from sqlalchemy import select

from taskapi.extensions import db
from taskapi.models import Task, User

from .conftest import SECRET, bearer, make_token

NOW = int(time.time())


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(**payload) -> str:
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."


def tampered_token() -> str:
    header, _payload, signature = make_token("alice").split(".")
    return f"{header}.{b64({'sub': 'alice', 'exp': NOW + 3600, 'admin': True})}.{signature}"


REJECTED_AUTHORIZATION = {
    "scheme only": "Bearer",
    "basic scheme": "Basic YWxpY2U6c2VjcmV0",
    "two tokens": "Bearer a b",
    "garbage": "Bearer not-a-jwt",
    "three garbage parts": "Bearer a.b.c",
    "wrong secret": f"Bearer {make_token('alice', secret='another-secret-' + 'y' * 60)}",
    "tampered payload": f"Bearer {tampered_token()}",
    "alg none": f"Bearer {unsigned_token(sub='alice', exp=NOW + 3600)}",
    "expired": f"Bearer {make_token('alice', exp=NOW - 60)}",
    "not yet valid": f"Bearer {make_token('alice', nbf=NOW + 3600)}",
    "no sub": f"Bearer {make_token(None)}",
    "numeric sub": f"Bearer {make_token(12345)}",
    "no exp": f"Bearer {make_token('alice', exp=None)}",
    "string exp": f"Bearer {make_token('alice', exp='tomorrow')}",
    "HS512": "Bearer "
    + pyjwt.encode({"sub": "alice", "exp": NOW + 3600}, SECRET, algorithm="HS512"),
    "refresh token": f"Bearer {make_token('alice', type='refresh')}",
    "huge token": "Bearer " + "a" * 6000,
}


@pytest.mark.parametrize(
    "authorization", REJECTED_AUTHORIZATION.values(), ids=REJECTED_AUTHORIZATION
)
def test_bad_tokens_are_401(client, authorization):
    response = client.get("/api/alice/tasks", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    token = authorization.split()[-1]
    if len(token) > 8:  # never echoed back
        assert token not in response.get_data(as_text=True)


def test_missing_header_is_401_without_error_code(client):
    response = client.get("/api/alice/tasks")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_rejected_token_says_invalid_token(client):
    response = client.get("/api/alice/tasks", headers={"Authorization": "Bearer x.y.z"})
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_expired_token_says_so(client):
    response = client.get("/api/alice/tasks", headers=bearer(exp=NOW - 60))
    assert response.json["detail"] == "The access token has expired."


@pytest.mark.parametrize(
    "user_id", ["a b", "tab\there", "nul\x00", "x" * 256, "ünïcode", "semi;colon", ""]
)
def test_token_with_unusable_user_id_is_401(client, user_id):
    response = client.get("/api/alice/tasks", headers=bearer(user_id))
    assert response.status_code == 401


def test_bad_token_changes_nothing(client, create_task):
    task = create_task()
    forged = f"Bearer {make_token('alice', secret='another-secret-' + 'y' * 60)}"
    response = client.delete(f"/api/alice/tasks/{task['id']}", headers={"Authorization": forged})
    assert response.status_code == 401
    assert client.get(f"/api/alice/tasks/{task['id']}", headers=bearer()).status_code == 200


ENDPOINTS = [
    ("get", "/api/{user}/tasks", None),
    ("post", "/api/{user}/tasks", {"title": "x"}),
    ("get", "/api/{user}/tasks/{task}", None),
    ("put", "/api/{user}/tasks/{task}", {"title": "x"}),
    ("patch", "/api/{user}/tasks/{task}", {"title": "x"}),
    ("patch", "/api/{user}/tasks/{task}/complete", None),
    ("delete", "/api/{user}/tasks/{task}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_a_token(client, create_task, method, path, body):
    url = path.format(user="alice", task=create_task("alice")["id"])
    response = getattr(client, method)(url, json=body)
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_another_users_url_is_403(client, create_task, method, path, body):
    task = create_task("alice")
    url = path.format(user="alice", task=task["id"])
    response = getattr(client, method)(url, json=body, headers=bearer("bob"))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert client.get(f"/api/alice/tasks/{task['id']}", headers=bearer("alice")).json == task


@pytest.mark.parametrize("url_user", ["Alice", "alice ", "alice%00", "alice%2Fx", "x" * 300])
def test_url_user_id_must_match_exactly(client, url_user):
    response = client.get(f"/api/{url_user}/tasks", headers=bearer("alice"))
    assert response.status_code in (403, 404)
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS[2:])
def test_another_users_task_through_own_url_is_404(client, create_task, method, path, body):
    task = create_task("alice", title="Alice's")
    url = path.format(user="bob", task=task["id"])
    response = getattr(client, method)(url, json=body, headers=bearer("bob"))
    assert response.status_code == 404
    assert response.json["detail"] == "Task not found."
    assert client.get(f"/api/alice/tasks/{task['id']}", headers=bearer("alice")).json == task


def test_lists_never_include_other_users_tasks(client, create_task):
    alice_ids = {create_task("alice")["id"] for _ in range(3)}
    bob_ids = {create_task("bob")["id"] for _ in range(2)}
    assert {t["id"] for t in client.get("/api/alice/tasks", headers=bearer("alice")).json} == (
        alice_ids
    )
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
    token = make_token("alice", exp=int(time.time()) + 1)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/alice/tasks", headers=headers).status_code == 200
    assert client.get("/api/alice/tasks", headers=headers).status_code == 200
    time.sleep(1.1)
    response = client.get("/api/alice/tasks", headers=headers)
    assert response.status_code == 401
    assert response.json["detail"] == "The access token has expired."


def test_a_token_that_worked_still_only_opens_its_own_tasks(client):
    headers = bearer("alice")
    assert client.get("/api/alice/tasks", headers=headers).status_code == 200
    assert client.get("/api/bob/tasks", headers=headers).status_code == 403
