"""Request ids and JSON access logs (docs/operations.md, Logs); no secrets in logs."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, text

from taskapi.data.models import User
from taskapi.extensions import db
from taskapi.http.request_log import JSONFormatter

from ..helpers import TASKS, bearer, make_token


def test_every_response_has_a_request_id(client):
    for response in (client.get("/healthz"), client.get("/nope"), client.get(TASKS)):
        assert len(response.headers["X-Request-ID"]) == 32


def test_a_sane_client_request_id_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "frontend-abc.123"})
    assert response.headers["X-Request-ID"] == "frontend-abc.123"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "new\nline", 'quote"', "ünï"])
def test_an_odd_client_request_id_is_replaced(client, bad):
    # Through the WSGI environ: the test client refuses to send some of these headers.
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": bad})
    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 32
    assert response.headers["X-Request-ID"] != bad


def test_one_json_access_line_per_request(client, log_records):
    response = client.post(TASKS, json={"title": "x"}, headers=bearer() | {"X-Request-ID": "req-1"})
    access = [r for r in log_records if r.name == "taskapi.access"]
    assert len(access) == 1
    line = json.loads(JSONFormatter().format(access[0]))
    assert line["request_id"] == "req-1" == response.headers["X-Request-ID"]
    assert (line["method"], line["path"], line["status"], line["user_id"]) == (
        "POST",
        TASKS,
        201,
        "alice",
    )
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO"


def test_tokens_and_passwords_never_reach_the_logs(app, client, log_records):
    password = "correct-horse-battery-staple"
    token = make_token("alice", email="alice@example.com")
    forged = make_token("alice", secret="wrong-secret-" + "z" * 60)
    client.post(
        "/api/auth/register", json={"email": "a@example.com", "name": "A", "password": password}
    )
    login = client.post("/api/auth/login", json={"email": "a@example.com", "password": password})
    client.post("/api/auth/login", json={"email": "a@example.com", "password": password + "x"})
    client.post(
        "/api/auth/register", json={"email": "a@example.com", "name": "A", "password": password}
    )  # 409
    issued = login.json["access_token"]
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {issued}"},
    ):
        client.get(TASKS, headers=headers)
        client.post(TASKS, data="{broken", content_type="application/json", headers=headers)
        client.get(f"{TASKS}?q={password}", headers=headers)
    formatter = JSONFormatter()
    text = "\n".join(formatter.format(record) for record in log_records)
    assert len(log_records) >= 13
    for secret in (
        password,
        token,
        forged,
        issued,
        token.split(".")[2],
        app.config["JWT_SECRET_KEY"],
    ):
        assert secret not in text


def test_errors_are_logged_with_the_request_id(database_url, log_records, make_app):
    app = make_app(database_url)

    @app.get("/boom-for-log")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/boom-for-log", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    errors = [r for r in log_records if r.levelname == "ERROR"]
    line = json.loads(JSONFormatter().format(errors[0]))
    assert line["request_id"] == "trace-me"
    assert "RuntimeError: boom" in line["exception"]


def test_database_errors_in_logs_carry_no_row_values(database_url, log_records, make_app):
    """PostgreSQL's DETAIL quotes rows ("Key (email)=(...)", "Failing row contains (...)");
    the log keeps what failed and where, never the values."""
    app = make_app(database_url)
    email, title = "private.person@example.com", "Divorce papers for the lawyer"

    @app.post("/api/<user_id>/raw-duplicate")
    def raw_duplicate(user_id):
        for n in (1, 2):
            db.session.execute(insert(User).values(id=f"{user_id}-{n}", email=email))

    @app.post("/api/<user_id>/raw-check")
    def raw_check(user_id):
        db.session.execute(insert(User).values(id=user_id))
        db.session.execute(
            text("INSERT INTO tasks (user_id, title, priority, version) VALUES (:u, :t, 7, 1)"),
            {"u": user_id, "t": title},
        )

    client = app.test_client()
    for path in ("/api/x/raw-duplicate", "/api/y/raw-check"):
        assert client.post(path).status_code == 500
    errors = [record for record in log_records if record.levelname == "ERROR"]
    assert len(errors) == 2
    text_ = "\n".join(JSONFormatter().format(record) for record in errors)
    assert email not in text_ and title not in text_
    assert "Divorce" not in text_ and "private.person" not in text_
    # Still enough to find the bug: the kind of error, the statement, the constraint.
    assert "IntegrityError" in text_ and "INSERT INTO users" in text_
    assert "Traceback" in text_
