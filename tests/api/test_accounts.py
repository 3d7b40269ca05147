"""Register and log in (docs/api.md, Accounts); their tokens work on the task endpoints."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from sqlalchemy import select

from taskapi.data.models import User
from taskapi.extensions import db

from ..helpers import SECRET, assert_problem

ALICE = {"email": "Alice@Example.com", "name": " Alice ", "password": "correct horse"}


def register(client, **overrides):
    return client.post("/api/auth/register", json=ALICE | overrides)


def login(client, email="alice@example.com", password="correct horse"):
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_register_returns_user_and_token(app, client):
    response = register(client)
    assert response.status_code == 201
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["name"] == "Alice"
    assert set(body["user"]) == {"id", "email", "name", "created_at"}
    assert len(body["user"]["id"]) == 32
    claims = pyjwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == body["user"]["id"]
    assert claims["exp"] - claims["iat"] == 3600
    assert "correct horse" not in response.get_data(as_text=True)
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash))
    assert stored and "correct horse" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_token_from_register_and_login_works_on_tasks(client):
    user_id = register(client).json["user"]["id"]
    token = login(client).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post(f"/api/{user_id}/tasks", json={"title": "x"}, headers=headers)
    assert created.status_code == 201
    assert client.get(f"/api/{user_id}/tasks", headers=headers).json == [created.json]


@pytest.mark.parametrize("email", ["alice@example.com", "ALICE@EXAMPLE.COM", " alice@example.com "])
def test_duplicate_email_in_any_case_is_409(client, email):
    assert register(client).status_code == 201
    response = register(client, email=email)
    assert_problem(response, 409)
    assert "email" in response.json["errors"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", ""),
        ("email", "a@" + "b" * 250 + ".com"),
        ("email", 42),
        ("name", ""),
        ("name", "   "),
        ("name", "n" * 101),
        ("name", None),
        ("password", "short"),
        ("password", "p" * 129),
        ("password", 12345678),
        ("password", "nul\u0000nul\u0000"),
    ],
)
def test_register_rejects_bad_fields(app, client, field, value):
    response = register(client, **{field: value})
    assert response.status_code == 400
    assert field in response.json["errors"]
    with app.app_context():
        assert db.session.scalar(select(User.id)) is None


@pytest.mark.parametrize("field", ["email", "name", "password"])
def test_register_requires_every_field(client, field):
    body = {key: value for key, value in ALICE.items() if key != field}
    response = client.post("/api/auth/register", json=body)
    assert response.status_code == 400
    assert field in response.json["errors"]


def test_register_rejects_unknown_fields(client):
    response = register(client, id="chosen-id")
    assert response.status_code == 400
    assert "id" in response.json["errors"]


def test_password_boundaries(client):
    assert register(client, email="a@example.com", password="p" * 8).status_code == 201
    assert register(client, email="b@example.com", password="p" * 128).status_code == 201


def test_login_with_any_email_case(client):
    register(client)
    response = login(client, email="ALICE@example.com")
    assert response.status_code == 200
    assert response.json["user"]["email"] == "alice@example.com"


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong password"), ("nobody@example.com", "correct horse")],
)
def test_login_failures_look_the_same(client, email, password):
    register(client)
    response = login(client, email, password)
    assert response.status_code == 401
    assert response.json["detail"] == "The email or password is wrong."
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_only_user_cannot_log_in(client):
    from ..helpers import bearer

    client.get("/api/u1/tasks", headers=bearer("u1", email="u1@example.com"))
    assert login(client, "u1@example.com", "anything at all").status_code == 401


def test_register_needs_json(client):
    response = client.post("/api/auth/register", data=ALICE)
    assert response.status_code == 415
