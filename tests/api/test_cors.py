"""CORS headers (docs/frontend.md, CORS); infrastructure/test_browser.py checks them in a
real browser."""

from __future__ import annotations

import pytest

from ..helpers import TASKS, bearer

FRONTEND = "https://app.example.com"


@pytest.fixture
def cors_client(app, database_url, make_app):
    return make_app(database_url, CORS_ORIGINS=[FRONTEND, "http://localhost:3000"]).test_client()


def test_preflight_needs_no_token(cors_client):
    response = cors_client.options(
        "/api/alice/tasks/1",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in ("authorization", "content-type", "if-match"):
        assert header in allowed
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_allowed_origin_can_read_the_headers_it_needs(cors_client):
    response = cors_client.post(TASKS, json={"title": "x"}, headers=bearer() | {"Origin": FRONTEND})
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "location", "link", "x-total-count", "retry-after", "x-request-id"} <= exposed


def test_errors_carry_cors_headers_too(cors_client):
    response = cors_client.get(TASKS, headers={"Origin": FRONTEND})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND


def test_disallowed_origin_gets_no_allow_origin(cors_client):
    for method in ("options", "get"):
        response = getattr(cors_client, method)(
            TASKS,
            headers=bearer()
            | {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in response.headers


def test_production_default_allows_no_origin(monkeypatch, tmp_path, make_app):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("BETTER_AUTH_SECRET", "s" * 43)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    client = make_app().test_client()
    response = client.get("/healthz", headers={"Origin": "http://localhost:3000"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_development_default_allows_localhost_3000(tmp_path):
    from taskapi.config import load_config

    development = {"APP_ENV": "development"}
    assert load_config(development, str(tmp_path))["CORS_ORIGINS"] == ["http://localhost:3000"]
    assert load_config(
        development | {"CORS_ORIGINS": "https://a.example, https://b.example/"}, str(tmp_path)
    )["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]


def test_preflight_allows_only_the_listed_headers_and_methods(cors_client):
    def preflight(method, headers):
        return cors_client.options(
            TASKS,
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )

    response = preflight("POST", "Idempotency-Key, X-Custom, content-type")
    assert response.headers["Access-Control-Max-Age"] == "600"
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed == {"idempotency-key", "content-type"}  # not x-custom: the browser refuses it
    refused = preflight("TRACE", "authorization")
    assert "Access-Control-Allow-Methods" not in refused.headers
    assert "Access-Control-Allow-Headers" not in refused.headers


def test_origins_match_in_any_letter_case_and_only_on_api_paths(cors_client):
    shouted = cors_client.get(TASKS, headers=bearer() | {"Origin": FRONTEND.upper()})
    assert shouted.headers["Access-Control-Allow-Origin"] == FRONTEND.upper()
    health = cors_client.get("/healthz", headers={"Origin": FRONTEND})
    assert "Access-Control-Allow-Origin" not in health.headers
    assert "Origin" in health.vary
