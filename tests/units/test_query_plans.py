"""On PostgreSQL, every sort order is served by an index: no Sort node, no full scan.

The queries checked are the ones the app really sends (captured from the
engine), for a first page and for a page after a cursor; and the tag filter,
the due date range and the reminder poll read indexes too.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text

from taskapi.data.change_feed import FeedToken
from taskapi.data.keyset import Position
from taskapi.extensions import db
from taskapi.http.cursors import encode_feed_token
from taskapi.schemas.fields import rfc3339

from ..helpers import TEST_DATABASE_URL, bearer, empty_tables

SORT_KEYS = ["created_at", "updated_at", "title", "due_at", "priority", "remind_at"]

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")


@pytest.fixture(scope="module")
def pg_app(migrated_app):
    """Seeded once for the module (its tests only read); emptied after it."""
    app = migrated_app
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("query plans are checked on PostgreSQL")
        # 20 users x 1,000 tasks, a fifth without due_at, then fresh statistics.
        db.session.execute(
            text("INSERT INTO users (id) SELECT 'user' || n FROM generate_series(1, 20) AS n")
        )
        db.session.execute(
            text(
                """
                INSERT INTO tasks (user_id, title, completed, due_at, priority,
                                   remind_at, created_at, updated_at)
                SELECT 'user' || (n % 20 + 1), 'task ' || (n % 97), n % 3 = 0,
                       CASE WHEN n % 5 = 0 THEN NULL
                            ELSE now() + (n % 50) * interval '1 day' END,
                       n % 3,
                       CASE WHEN n % 4 = 0 THEN NULL
                            ELSE now() + (n % 40 - 20) * interval '1 hour' END,
                       now() - n * interval '1 second', now() - n * interval '1 second'
                FROM generate_series(1, 20000) AS n
                """
            )
        )
        # One of ten tags on every task ("tag0" to "tag9"), "rare" on one in a hundred.
        db.session.execute(
            text(
                """
                INSERT INTO task_tags (task_id, user_id, name, name_folded)
                SELECT id, user_id, 'tag' || (id / 20 % 10), 'tag' || (id / 20 % 10) FROM tasks
                UNION ALL
                SELECT id, user_id, 'rare', 'rare' FROM tasks WHERE id / 20 % 100 = 0
                """
            )
        )
        # Every task its own change number; one in fifty in the trash.
        db.session.execute(
            text(
                "UPDATE tasks SET change_number = id, deleted_at = CASE WHEN id % 50 = 0 "
                "THEN now() - (id % 40) * interval '1 day' END"
            )
        )
        db.session.execute(text("UPDATE users SET change_number = 20000"))
        db.session.commit()
        db.session.execute(text("ANALYZE users, tasks, task_tags, tombstones"))
        db.session.commit()
    yield app
    empty_tables(app)


def captured_selects(app, request, start: str = "SELECT tasks.id") -> list[tuple[str, dict]]:
    statements = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().startswith(start):
            statements.append((statement, parameters))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            request()
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
    return statements


def plan_nodes(app, statement: str, parameters) -> list[dict]:
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0]
        finally:
            connection.close()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack += node.get("Plans", [])
    return nodes


@pytest.mark.parametrize("sort", SORT_KEYS + [f"-{key}" for key in SORT_KEYS])
def test_each_sort_order_uses_its_index(pg_app, sort):
    client = pg_app.test_client()
    url = f"/api/user7/tasks?sort={sort}&limit=50"

    def first_and_deep_page():
        first = client.get(url, headers=bearer("user7"))
        link = first.headers["Link"]
        deep = link[1 : link.index(">")].replace("http://localhost", "")
        for _ in range(5):  # a few pages in
            response = client.get(deep, headers=bearer("user7"))
            assert response.status_code == 200
            link = response.headers["Link"]
            deep = link[1 : link.index(">")].replace("http://localhost", "")

    statements = captured_selects(pg_app, first_and_deep_page)
    assert len(statements) >= 6
    key = sort.removeprefix("-")
    for statement, parameters in statements:
        nodes = plan_nodes(pg_app, statement, parameters)
        types = {node["Node Type"] for node in nodes}
        assert "Sort" not in types, (sort, types)
        assert "Seq Scan" not in types, (sort, types)
        indexes = {node.get("Index Name") for node in nodes}
        assert f"ix_tasks_user_id_{key}_id" in indexes, (sort, indexes)


def assert_no_full_scans(app, url: str) -> set[str]:
    """Request ``url``; no statement it sends scans a whole table. The indexes read."""
    client = app.test_client()

    def request():
        response = client.get(url, headers=bearer("user7"))
        assert response.status_code == 200 and response.json, response.json

    statements = captured_selects(app, request)
    assert statements
    indexes = set()
    for statement, parameters in statements:
        nodes = plan_nodes(app, statement, parameters)
        assert "Seq Scan" not in {node["Node Type"] for node in nodes}, url
        indexes |= {node.get("Index Name") for node in nodes} - {None}
    return indexes


@pytest.mark.parametrize("tags", ["tag3", "rare", "tag0,rare", "TAG3"])
@pytest.mark.parametrize("sort", ["-created_at", "title", "due_at"])
def test_the_tag_filter_reads_the_tag_index(pg_app, tags, sort):
    indexes = assert_no_full_scans(pg_app, f"/api/user7/tasks?tag={tags}&sort={sort}&limit=50")
    assert indexes & {"ix_task_tags_user_id_name_folded_task_id", "pk_task_tags"}, indexes


@pytest.mark.parametrize("sort", ["-created_at", "due_at"])
def test_a_due_date_range_reads_an_index(pg_app, sort):
    start = datetime.now(UTC) + timedelta(days=10)
    end = start + timedelta(days=20)
    url = (
        f"/api/user7/tasks?sort={sort}&limit=50"
        f"&due_after={rfc3339(start)}&due_before={rfc3339(end)}"
    )
    indexes = assert_no_full_scans(pg_app, url)
    assert indexes & {"ix_tasks_user_id_due_at_id", "ix_tasks_user_id_created_at_id"}, indexes


def test_the_reminder_poll_reads_the_remind_at_index_in_order(pg_app):
    url = f"/api/user7/tasks?status=pending&remind_before={rfc3339(datetime.now(UTC))}"
    url += "&sort=remind_at&limit=50"
    statements = captured_selects(
        pg_app, lambda: pg_app.test_client().get(url, headers=bearer("user7"))
    )
    (statement, parameters), *_ = statements
    nodes = plan_nodes(pg_app, statement, parameters)
    assert "Sort" not in {node["Node Type"] for node in nodes}
    assert "ix_tasks_user_id_remind_at_id" in {node.get("Index Name") for node in nodes}


def plans_of(app, url: str) -> list[dict]:
    """The plan nodes of every SELECT that ``url`` sends."""
    client = app.test_client()

    def request():
        response = client.get(url, headers=bearer("user7"))
        assert response.status_code == 200, response.json

    statements = captured_selects(app, request, start="SELECT")
    assert statements
    return [
        node
        for statement, parameters in statements
        for node in plan_nodes(app, statement, parameters)
    ]


def full_scans_of_tasks(nodes: list[dict]) -> list[dict]:
    return [n for n in nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] == "tasks"]


def test_an_incremental_poll_of_the_change_feed_reads_its_index(pg_app):
    with pg_app.app_context():
        token = encode_feed_token("user7", FeedToken(Position(0, 19_900, 0), int(time.time())))
    nodes = plans_of(pg_app, f"/api/user7/changes?since={token}")
    assert full_scans_of_tasks(nodes) == []
    assert "ix_tasks_user_id_change_number_id" in {node.get("Index Name") for node in nodes}


def test_the_trash_reads_its_partial_index(pg_app):
    nodes = plans_of(pg_app, "/api/user7/trash?limit=5")
    assert full_scans_of_tasks(nodes) == []
    assert "ix_tasks_user_id_deleted_at_id" in {node.get("Index Name") for node in nodes}


def test_purge_trash_finds_expired_tasks_by_index(pg_app):
    statement = (
        "SELECT id FROM tasks WHERE deleted_at IS NOT NULL "
        "AND deleted_at < now() - interval '30 days'"
    )
    nodes = plan_nodes(pg_app, statement, {})
    assert "ix_tasks_deleted_at" in {node.get("Index Name") for node in nodes}


def test_the_reminder_dispatcher_finds_due_reminders_by_their_index(pg_app):
    """Every user's reminders of the last 24 h, found by time: no scan of the tasks."""
    from taskapi.data import push_store

    with pg_app.app_context():
        db.session.execute(
            text(
                "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at, "
                "updated_at) SELECT 'user' || n, 'https://fcm.googleapis.com/x/' || n, 'k', 'a', "
                "now() - interval '2 days', now() FROM generate_series(1, 20) AS n"
            )
        )
        db.session.execute(text("ANALYZE push_subscriptions"))
        db.session.commit()
    try:
        now = datetime.now(UTC)

        def fan_out():
            assert push_store.fan_out(now, now - timedelta(hours=24), 20) == 20

        statements = captured_selects(pg_app, fan_out, start="INSERT INTO push_deliveries")
        assert len(statements) == 1
        nodes = plan_nodes(pg_app, *statements[0])
        assert full_scans_of_tasks(nodes) == []
        assert "ix_tasks_remind_at_id" in {node.get("Index Name") for node in nodes}
    finally:
        with pg_app.app_context():
            db.session.execute(text("DELETE FROM push_subscriptions"))  # and their rows
            db.session.commit()
