"""Pooled connections the server closed: idle ones are pinged, others fail once as 503."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from taskapi.data import database
from taskapi.extensions import db

from ..helpers import TASKS, assert_problem, bearer


@pytest.fixture
def pg_client(app, backend):
    if backend != "postgresql":
        pytest.skip("closing server-side connections is a PostgreSQL test")
    yield app.test_client()
    with app.app_context():
        db.engine.dispose()  # no dead connection left for the next test


def close_server_side_connections(app) -> int:
    """What Neon does to idle connections, or a database restart to all of them."""
    with app.app_context():
        url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()
    return killed


def test_idle_connection_closed_by_the_server_is_replaced(app, pg_client, monkeypatch):
    assert pg_client.get(TASKS, headers=bearer()).status_code == 200
    assert close_server_side_connections(app) >= 1
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0)  # every pooled connection is "idle"
    assert pg_client.get(TASKS, headers=bearer()).status_code == 200


def test_recently_used_connection_closed_by_the_server_fails_once_then_recovers(app, pg_client):
    assert pg_client.get(TASKS, headers=bearer()).status_code == 200
    close_server_side_connections(app)
    response = pg_client.get(TASKS, headers=bearer())
    assert_problem(response, 503)
    assert response.headers["Retry-After"]
    assert pg_client.get(TASKS, headers=bearer()).status_code == 200


@contextmanager
def statements_sent(app) -> Iterator[list[str]]:
    """The SQL the app's engine sends during the block, in order."""
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_reads_send_no_begin_or_rollback(app, pg_client, create_task):
    task = create_task()
    with statements_sent(app) as statements:
        assert pg_client.get(f"{TASKS}/{task['id']}", headers=bearer()).status_code == 200
    assert [statement.split()[0].upper() for statement in statements] == ["SELECT"]


def test_a_create_and_an_edit_are_still_one_statement_each(app, pg_client, create_task):
    """The change number is taken in the same statement (a CTE): no extra round trip."""
    task = create_task()
    with statements_sent(app) as statements:
        created = pg_client.post(TASKS, json={"title": "x"}, headers=bearer())
        edited = pg_client.patch(f"{TASKS}/{task['id']}", json={"title": "y"}, headers=bearer())
    assert (created.status_code, edited.status_code) == (201, 200)
    assert len(statements) == 2, statements
    assert all("UPDATE users SET change_number" in statement for statement in statements)
    assert statements[0].lstrip().startswith("WITH")


def test_pool_holds_database_pool_size_connections_then_answers_503(
    app, backend, database_url, make_app
):
    if backend != "postgresql":
        pytest.skip("the pool size is a PostgreSQL setting")
    small = make_app(
        database_url,
        DATABASE_POOL_SIZE=2,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_timeout": 0.5},  # the real wait is 10 s
    )
    with small.app_context():
        engine = db.engine
        held = [engine.connect() for _ in range(2)]
    try:
        response = small.test_client().get(TASKS, headers=bearer())
        assert_problem(response, 503)
        assert response.headers["Retry-After"]
    finally:
        for connection in held:
            connection.close()
    assert small.test_client().get(TASKS, headers=bearer()).status_code == 200
