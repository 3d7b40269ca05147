"""Behind PgBouncer in transaction mode the app leaves nothing on the server connection.

A pooler hands each transaction to whichever server connection is free, so
anything kept in the session (a ``SET``, a prepared statement, a ``LISTEN``,
an advisory lock) would reach another client or be missing on the next
transaction. With one server connection, every request below runs on the
same one; afterwards it must carry nothing the app left behind.

A request waiting in PgBouncer's queue for a server connection is not bound
by the app's connect or statement limits, only by PgBouncer's
``query_wait_timeout`` (120 s unless set): docs/scaling.md sets it below
gunicorn's 30 s, and then a full pool is a prompt 503.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.pgbouncer import pgbouncer

from ..helpers import TEST_DATABASE_URL, assert_problem, bearer

# Parameters PgBouncer itself sets on a server connection to match each
# client's startup packet (its tracked parameters); anything else is the app's.
TRACKED_BY_PGBOUNCER = {
    "client_encoding",
    "datestyle",
    "timezone",
    "standard_conforming_strings",
    "application_name",
}


QUEUE_WAIT = 1


@pytest.fixture
def pooled_app(app, backend, database_url, make_app):
    """The app through a PgBouncer with one server connection; and that PgBouncer's URL."""
    if backend != "postgresql" or not TEST_DATABASE_URL:
        pytest.skip("PgBouncer pools PostgreSQL connections")
    with pgbouncer(TEST_DATABASE_URL, pool_size=1, query_wait_timeout=QUEUE_WAIT) as bouncer:
        url = make_url(bouncer).set(database=make_url(database_url).database)
        pooled = url.render_as_string(hide_password=False)
        yield make_app(pooled, DATABASE_STATEMENT_TIMEOUT=5), pooled


def every_kind_of_request(client) -> None:
    """What the app does to a database: reads, writes, transactions, conflicts."""
    user = "pooled"
    headers = bearer(user)
    tasks = f"/api/{user}/tasks"
    assert client.get("/readyz").status_code == 200
    assert (
        client.post(
            "/api/auth/register",
            json={"email": "pooled@example.com", "name": "Pooled", "password": "correct horse"},
        ).status_code
        == 201
    )
    keyed = {**headers, "Idempotency-Key": "pooled-key"}
    created = client.post(tasks, json={"title": "a", "tags": ["work"]}, headers=keyed)
    assert created.status_code == 201
    assert client.post(tasks, json={"title": "a", "tags": ["work"]}, headers=keyed).json == (
        created.json
    )
    task_url = f"{tasks}/{created.json['id']}"
    recurring = client.post(
        tasks,
        json={"title": "weekly", "due_at": "2027-01-04T09:00:00Z", "recurrence": "FREQ=WEEKLY"},
        headers=headers,
    ).json
    completed = client.patch(f"{tasks}/{recurring['id']}/complete", headers=headers)
    assert completed.status_code == 200
    assert "next-occurrence" in completed.headers["Link"]
    assert client.get(f"{tasks}?limit=1", headers=headers).headers["Link"]
    etag = client.get(task_url, headers=headers).headers["ETag"]
    assert client.get(task_url, headers={**headers, "If-None-Match": etag}).status_code == 304
    changed = client.patch(task_url, json={"title": "b"}, headers={**headers, "If-Match": etag})
    assert changed.status_code == 200
    assert (
        client.put(task_url, json={"title": "c"}, headers={**headers, "If-Match": etag}).status_code
        == 412
    )
    assert client.patch(f"/api/{user}/tags/work", json={"name": "job"}, headers=headers).json == {
        "name": "job",
        "count": 1,
    }
    assert client.delete(f"/api/{user}/tags/job", headers=headers).status_code == 204
    assert client.delete(task_url, headers=headers).status_code == 204
    assert client.get(task_url, headers=headers).status_code == 404


def test_no_session_state_is_left_on_the_pooled_server_connection(pooled_app):
    app, pooled_url = pooled_app
    every_kind_of_request(app.test_client())

    # The pool's one server connection, which served every request above.
    probe = create_engine(pooled_url, isolation_level="AUTOCOMMIT")
    with probe.connect() as connection:

        def query(sql: str):
            return connection.exec_driver_sql(sql).scalars().all()

        changed = set(query("SELECT lower(name) FROM pg_settings WHERE source = 'session'"))
        assert changed - TRACKED_BY_PGBOUNCER == set()
        assert query("SELECT name FROM pg_prepared_statements") == []
        assert query("SELECT pg_listening_channels()") == []
        assert (
            query(
                "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            == []
        )
        assert query("SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema()") == []
        assert query("SHOW statement_timeout") == ["0"]
        assert query("SELECT count(*) FROM pg_cursors") == [0]
    probe.dispose()


def test_a_full_pgbouncer_pool_is_a_prompt_503_then_service_resumes(pooled_app):
    app, pooled_url = pooled_app
    client = app.test_client()
    url = "/api/queued/tasks"
    assert client.get(url, headers=bearer("queued")).status_code == 200
    other = create_engine(pooled_url)
    with other.connect() as connection:
        connection.execute(text("SELECT 1"))  # an open transaction: the one server connection
        started = time.monotonic()
        response = client.get(url, headers=bearer("queued"))
        waited = time.monotonic() - started
        connection.rollback()
    other.dispose()
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert QUEUE_WAIT <= waited < QUEUE_WAIT + 3
    assert client.get(url, headers=bearer("queued")).status_code == 200
