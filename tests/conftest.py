"""Fixtures: one app per database backend, a client, and token helpers.

Every test runs against SQLite and, when ``TEST_DATABASE_URL`` names a
PostgreSQL server, against a fresh PostgreSQL database created for this run
and dropped after it. The schema comes from the migrations, as in production.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import flask_migrate
import jwt as pyjwt
import pytest
from sqlalchemy import delete

from taskapi import create_app
from taskapi.extensions import db
from taskapi.models import Task, User

from .databases import fresh_postgres_database

SECRET = "test-secret-" + "x" * 60
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite", "postgresql"] if TEST_DATABASE_URL else ["sqlite"]


def make_token(user_id: str | None = "alice", *, secret: str = SECRET, **claims) -> str:
    """An HS256 token like Better Auth's; a claim set to None is left out."""
    now = int(time.time())
    payload = {"sub": user_id, "iat": now, "exp": now + 3600} | claims
    payload = {key: value for key, value in payload.items() if value is not None}
    return pyjwt.encode(payload, secret, algorithm="HS256")


def bearer(user_id: str = "alice", **claims) -> dict:
    return {"Authorization": f"Bearer {make_token(user_id, **claims)}"}


@contextmanager
def fresh_database(backend: str, folder: Path):
    """Yield the URL of a new, empty database; PostgreSQL ones are dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'taskapi-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    with fresh_postgres_database(TEST_DATABASE_URL) as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


def make_app(database_url: str, **config):
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JWT_SECRET_KEY": SECRET,
            "SECRET_KEY": SECRET,
            # Tests send many requests per user; test_limits turns limits on.
            "RATELIMIT_ENABLED": False,
            **config,
        }
    )


@pytest.fixture(scope="session")
def migrated_app(database_url):
    app = make_app(database_url)
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(migrated_app):
    """The migrated app; every row a test writes is removed after it."""
    yield migrated_app
    with migrated_app.app_context():
        db.session.execute(delete(Task))
        db.session.execute(delete(User))
        db.session.commit()
        migrated_app.extensions["taskapi.known_users"].clear()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def backend(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


@pytest.fixture
def create_task(client):
    """Create a task through the API and return its JSON."""

    def create(user_id: str = "alice", **fields):
        body = {"title": "A task"} | fields
        response = client.post(f"/api/{user_id}/tasks", json=body, headers=bearer(user_id))
        assert response.status_code == 201, response.json
        return response.json

    return create


class RecordList(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_records():
    """Every record the app logs during the test."""
    handler = RecordList()
    logger = logging.getLogger("taskapi")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)
