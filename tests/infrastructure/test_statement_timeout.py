"""DATABASE_STATEMENT_TIMEOUT: no query or lock wait runs past it; the client gets a 503.

On PostgreSQL also through a real PgBouncer in transaction mode, where a
session-level ``SET`` would not reliably apply.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager

import flask_migrate
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from harness.pgbouncer import pgbouncer
from taskapi.extensions import db

from ..helpers import TASKS, TEST_DATABASE_URL, assert_problem, bearer

TIMEOUT = 0.5


@contextmanager
def row_locked(database_url: str, task_id: int):
    """Hold a write lock on the task (another client's open transaction) for the block."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")  # SQLite locks the whole database
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task_id})
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def assert_unavailable(response):
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0


def write_while_locked(app, database_url):
    client = app.test_client()
    task = client.post(TASKS, json={"title": "locked"}, headers=bearer()).json
    with row_locked(database_url, task["id"]):
        started = time.monotonic()
        response = client.patch(f"{TASKS}/{task['id']}", json={"title": "waited"}, headers=bearer())
        waited = time.monotonic() - started
    return task, response, waited


def test_a_lock_wait_past_the_timeout_is_503(app, database_url, make_app):
    limited = make_app(database_url, DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    task, response, waited = write_while_locked(limited, database_url)
    assert_unavailable(response)
    assert waited < 5  # the limit, not gunicorn's 30 s worker timeout
    # Once the lock is gone, the same write goes through.
    client = limited.test_client()
    url = f"{TASKS}/{task['id']}"
    assert client.patch(url, json={"title": "later"}, headers=bearer()).status_code == 200


def test_a_lock_wait_inside_a_transaction_is_503_too(app, database_url, make_app):
    """A tag rename locks its tasks in one transaction (atomic()): the limit holds there."""
    limited = make_app(database_url, DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    client = limited.test_client()
    task = client.post(TASKS, json={"title": "tagged", "tags": ["old"]}, headers=bearer()).json
    with row_locked(database_url, task["id"]):
        started = time.monotonic()
        response = client.patch("/api/alice/tags/old", json={"name": "new"}, headers=bearer())
        waited = time.monotonic() - started
    assert_unavailable(response)
    assert waited < 5
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["tags"] == ["old"]


@pytest.fixture
def pg_url(backend, database_url):
    if backend != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    return database_url


def test_a_slow_statement_is_cancelled(app, pg_url, make_app):
    limited = make_app(pg_url, DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    with limited.app_context(), pytest.raises(OperationalError) as raised:
        db.session.execute(text("SELECT pg_sleep(3)"))
    assert raised.value.orig.pgcode == "57014"  # query_canceled


def test_the_timeout_is_not_left_on_the_session(app, pg_url, make_app):
    limited = make_app(pg_url, DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    with limited.app_context():
        connection = db.session.connection()
        connection.exec_driver_sql("SELECT 1")
        raw = connection.connection.dbapi_connection.cursor()
        raw.execute("SHOW statement_timeout")  # straight to the driver: no SET LOCAL in front
        assert raw.fetchone()[0] == "0"


@contextmanager
def table_locked(database_url: str, table: str, seconds: float):
    """Another client holds ``table`` exclusively for ``seconds`` from the block's start."""
    locked = threading.Event()

    def hold() -> None:
        engine = create_engine(database_url)
        with engine.connect() as connection:
            connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            time.sleep(seconds)
            connection.rollback()
        engine.dispose()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        holder.join()


def test_the_release_step_waits_out_a_lock_past_the_limit(app, pg_url, make_app):
    """flask db upgrade is not limited: kept waiting for the schema longer than
    DATABASE_STATEMENT_TIMEOUT (another release, a long query), it still completes."""
    limited = make_app(pg_url, DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    with table_locked(pg_url, "alembic_version", TIMEOUT * 4), limited.app_context():
        started = time.monotonic()
        flask_migrate.upgrade()  # reads alembic_version: waits for the lock
        waited = time.monotonic() - started
    assert waited > TIMEOUT * 2  # it did wait, well past the limit, and was not cancelled


@pytest.fixture(scope="module")
def bouncer():
    if not TEST_DATABASE_URL:
        pytest.skip("PgBouncer runs in front of TEST_DATABASE_URL's PostgreSQL")
    with pgbouncer(TEST_DATABASE_URL, pool_size=2) as url:
        yield url


def through(bouncer_url: str, database_url: str) -> str:
    return (
        make_url(bouncer_url)
        .set(database=make_url(database_url).database)
        .render_as_string(hide_password=False)
    )


def test_behind_pgbouncer_a_lock_wait_is_503(app, pg_url, bouncer, make_app):
    limited = make_app(through(bouncer, pg_url), DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    _task, response, waited = write_while_locked(limited, pg_url)
    assert_unavailable(response)
    assert waited < 5


def test_behind_pgbouncer_every_statement_carries_its_limit(app, pg_url, bouncer, make_app):
    """Many clients share two server connections; each statement is still limited,
    and no limit leaks onto a server connection another client then uses."""
    limited = make_app(through(bouncer, pg_url), DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    failures = []

    def sleeper():
        with limited.app_context():
            try:
                db.session.execute(text("SELECT pg_sleep(2)"))
                failures.append("a slow statement ran to its end")
            except OperationalError as error:
                if error.orig.pgcode != "57014":
                    failures.append(error.orig.pgcode)

    threads = [threading.Thread(target=sleeper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    plain = create_engine(through(bouncer, pg_url), isolation_level="AUTOCOMMIT")
    with plain.connect() as connection:
        for _ in range(4):  # whichever server connection answers
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    plain.dispose()


def test_other_engines_are_not_limited(app, pg_url, make_app):
    """The limit is the app's: an engine of its own in the same process (a one-off
    script, the bench's seeding) runs a statement longer than it to the end."""
    limited = make_app(pg_url, DATABASE_STATEMENT_TIMEOUT=TIMEOUT)
    slow = text("SELECT 'finished' FROM pg_sleep(:s)")
    with limited.app_context(), pytest.raises(OperationalError):
        db.session.execute(slow, {"s": TIMEOUT + 0.2})  # the app's own: cancelled
    other = create_engine(pg_url)
    with other.connect() as connection:
        assert connection.execute(slow, {"s": TIMEOUT + 0.2}).scalar() == "finished"
    other.dispose()
