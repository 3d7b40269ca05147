"""Every error from every layer is problem+json, without internals (docs/api.md, Errors)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from taskapi.extensions import db

from ..helpers import TASKS, assert_problem, bearer


@pytest.mark.parametrize("path", ["/", "/nope", "/api", "/api/alice", "/api/alice/tasks/1/x"])
def test_unknown_routes_are_404(client, path):
    assert_problem(client.get(path, headers=bearer()), 404)


def test_trailing_slash_is_404_not_a_redirect(client):
    assert_problem(client.get("/api/alice/tasks/", headers=bearer()), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", TASKS, {"GET", "POST", "DELETE"}),
        ("post", "/api/alice/tasks/1", {"GET", "PUT", "PATCH", "DELETE"}),
        ("get", "/api/alice/tasks/1/complete", {"PATCH"}),
        ("get", "/api/auth/login", {"POST"}),
    ],
)
def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path, headers=bearer())
    assert_problem(response, 405)
    assert allowed <= set(response.headers["Allow"].split(", "))


@pytest.fixture
def broken_app(database_url, make_app):
    app = make_app(database_url)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals at /srv/app.py")

    @app.get("/bad-sql")
    def bad_sql():
        db.session.execute(text("SELECT secret_column FROM no_such_table"))

    return app


def test_unhandled_exception_is_500_without_internals(broken_app):
    response = broken_app.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in body.get("detail", "")


def test_database_error_is_500_without_sql(broken_app):
    response = broken_app.test_client().get("/bad-sql")
    assert_problem(response, 500)
    text_ = response.get_data(as_text=True)
    assert "no_such_table" not in text_ and "secret_column" not in text_


@pytest.fixture
def app_without_database(make_app):
    # Port 1 on loopback refuses at once; the request must not hang.
    return make_app("postgresql://postgres@127.0.0.1:1/taskapi")


def test_unreachable_database_is_503(app_without_database):
    client = app_without_database.test_client()
    started = time.monotonic()
    response = client.get(TASKS, headers=bearer())
    assert time.monotonic() - started < 10
    body = assert_problem(response, 503)
    assert "127.0.0.1" not in body["detail"]
    assert response.headers["Retry-After"]


def test_readyz_reports_database_down(app_without_database):
    assert_problem(app_without_database.test_client().get("/readyz"), 503)


def test_healthz_does_not_need_the_database(app_without_database):
    response = app_without_database.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
