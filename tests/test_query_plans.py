"""On PostgreSQL, every sort order is served by an index: no Sort node, no full scan.

The queries checked are the ones the app really sends (captured from the
engine), for a first page and for a page after a cursor.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event, text

from taskapi.extensions import db

from .helpers import TEST_DATABASE_URL, bearer

SORT_KEYS = ["created_at", "updated_at", "title", "due_at", "priority"]

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")


@pytest.fixture
def pg_app(app, backend):
    if backend != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL")
    with app.app_context():
        # 20 users x 1,000 tasks, a fifth without due_at, then fresh statistics.
        db.session.execute(
            text("INSERT INTO users (id) SELECT 'user' || n FROM generate_series(1, 20) AS n")
        )
        db.session.execute(
            text(
                """
                INSERT INTO tasks (user_id, title, completed, due_at, priority,
                                   created_at, updated_at)
                SELECT 'user' || (n % 20 + 1), 'task ' || (n % 97), n % 3 = 0,
                       CASE WHEN n % 5 = 0 THEN NULL
                            ELSE now() + (n % 50) * interval '1 day' END,
                       n % 3, now() - n * interval '1 second', now() - n * interval '1 second'
                FROM generate_series(1, 20000) AS n
                """
            )
        )
        db.session.commit()
        db.session.execute(text("ANALYZE users, tasks"))
        db.session.commit()
    return app


def captured_selects(app, request) -> list[tuple[str, dict]]:
    statements = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().startswith("SELECT tasks.id"):
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
