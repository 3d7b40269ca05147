"""Fixtures: one app per database backend, a client, app factories and token helpers.

Every test runs against SQLite and, when ``TEST_DATABASE_URL`` names a
PostgreSQL server, against a fresh PostgreSQL database created for this run
and dropped after it. The schema comes from the migrations, as in production.
Shared helpers are in ``tests/helpers.py``.
"""

from __future__ import annotations

import logging

import flask_migrate
import pytest

from taskapi import create_app
from taskapi.extensions import db

from .helpers import BACKENDS, RecordList, bearer, build_app, dispose, empty_tables, fresh_database


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_app(database_url):
    app = build_app(database_url)
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    dispose(app)


@pytest.fixture
def app(migrated_app):
    """The migrated app; every row a test writes is removed after it."""
    yield migrated_app
    empty_tables(migrated_app)


@pytest.fixture
def make_app():
    """Build more apps; each is disposed after the test.

    ``make_app(url, **config)`` is ``helpers.build_app``; ``make_app()`` is
    ``create_app()`` from the environment, as wsgi.py calls it.
    """
    built = []

    def make(database_url: str | None = None, **config):
        app = create_app() if database_url is None else build_app(database_url, **config)
        built.append(app)
        return app

    yield make
    for app in built:
        dispose(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def limited_client(app, database_url, make_app):
    """``limited_client(**config)``: a client of a new app with rate limits on (the
    other tests' apps have them off), counted in memory unless ``config`` says where."""

    def make(**config):
        return make_app(database_url, RATELIMIT_ENABLED=True, **config).test_client()

    return make


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


@pytest.fixture
def log_records():
    """Every record the app logs during the test."""
    handler = RecordList()
    logger = logging.getLogger("taskapi")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


@pytest.fixture
def debug_log_records(log_records):
    """``log_records`` with the app's loggers at DEBUG for the test (LOG_LEVEL=DEBUG)."""
    logger = logging.getLogger("taskapi")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield log_records
    logger.setLevel(level)
