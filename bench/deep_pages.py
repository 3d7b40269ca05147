"""Measure list pages for a user with 100,000 tasks among 1,000,000 (docs/api.md, "Listing").

Usage: .venv/bin/python bench/deep_pages.py [POSTGRES_SERVER_URL]

Creates a fresh PostgreSQL database, migrates it, seeds the tasks with
generate_series (each with about two tags, half with a reminder), then times
GET /api/heavy/tasks through the whole Flask stack (token check, query,
count, JSON) for the first page and for a page 75,000 tasks deep, for
several sort orders; then the first page with a tag filter, a due date range
and the reminder poll, against the plain first page; GET /api/heavy/tags;
and the change feed: a poll that finds a few changes against one that finds
none (docs/api.md, "Change feed (sync)"). Drops the database at the end.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
import jwt
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from harness.databases import fresh_postgres_database
from taskapi import create_app
from taskapi.data.change_feed import FeedToken, reading_started
from taskapi.data.keyset import Position
from taskapi.data.task_list import TaskQuery
from taskapi.data.tasks_table import TASKS
from taskapi.extensions import db
from taskapi.http.cursors import encode_cursor, encode_feed_token, task_listing

SECRET = "bench-secret-" + "x" * 60
HEAVY_TASKS = 100_000
TOTAL_TASKS = 1_000_000
OTHER_USERS = 900
DEEP = 75_000  # due_at is null for a fifth of the tasks: stay among the dated ones
RUNS = 30
SORTS = ["-created_at", "title", "due_at", "-priority", "-updated_at"]

SEED_USERS = """
INSERT INTO users (id) SELECT 'heavy'
UNION ALL SELECT 'user' || n FROM generate_series(1, :others) AS n
"""
# Tags: "work" or "home" on two thirds of the tasks, "urgent" on a tenth, and one of
# 50 projects ("project-0" to "project-49", 2% each) on every task.
SEED_TASKS = """
INSERT INTO tasks (user_id, title, description, completed, due_at, priority,
                   tags, remind_at, created_at, updated_at, change_number)
SELECT CASE WHEN n <= :heavy THEN 'heavy' ELSE 'user' || (n % :others + 1) END,
       'task ' || md5(n::text), 'description of task ' || n, n % 3 = 0,
       CASE WHEN n % 5 = 0 THEN NULL ELSE now() + (n % 400) * interval '1 hour' END,
       n % 3,
       to_json(array_remove(ARRAY[
           CASE n % 3 WHEN 0 THEN 'work' WHEN 1 THEN 'home' END,
           'project-' || (n / 7 % 50),
           CASE WHEN n % 10 = 1 THEN 'urgent' END], NULL))::text,
       CASE WHEN n % 2 = 0 THEN now() + (n % 200 - 100) * interval '1 hour' END,
       now() - n * interval '1 second', now() - (n % 1000) * interval '1 minute', n
FROM generate_series(1, :total) AS n
"""
# Every task was written once, in order: each user's counter is past its tasks' numbers.
SEED_COUNTERS = "UPDATE users SET change_number = :total"
SEED_TAGS = """
INSERT INTO task_tags (task_id, user_id, name, name_folded)
SELECT id, user_id, name, lower(name) FROM tasks, json_array_elements_text(tags::json) AS name
"""


def timed(call, runs=RUNS) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and 90th percentile."""
    samples = sorted(samples)
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def main(server_url: str) -> None:
    with fresh_postgres_database(server_url, prefix="taskapi_bench") as database_url:
        run(database_url)


def seed(database_url: str) -> None:
    """The tasks, through a connection of its own: the app's statements are cut at
    DATABASE_STATEMENT_TIMEOUT, and seeding a million rows takes longer."""
    started = time.perf_counter()
    params = {"heavy": HEAVY_TASKS, "total": TOTAL_TASKS, "others": OTHER_USERS}
    engine = create_engine(
        make_url(database_url).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as connection:
        connection.execute(text(SEED_USERS), params)
        connection.execute(text(SEED_TASKS), params)
        connection.execute(text(SEED_TAGS))
        connection.execute(text(SEED_COUNTERS), params)
        # As autovacuum leaves a table after a bulk load: statistics, and the visibility
        # map that lets counts read indexes alone.
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    print(
        f"seeded {TOTAL_TASKS:,} tasks ({HEAVY_TASKS:,} for one user) "
        f"in {time.perf_counter() - started:.1f} s"
    )


def run(database_url: str) -> None:
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JWT_SECRET_KEY": SECRET,
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "WARNING",  # no access line per timed request
            "RATELIMIT_ENABLED": False,  # hundreds of requests a minute for one user
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
    seed(database_url)
    with app.app_context():
        cursors = {}
        for sort in SORTS:
            query = TaskQuery(user_id="heavy", status="all", q="", sort=sort)
            column, task_id = query.order.column, TASKS.c.id
            order = (column.desc(), task_id.desc()) if query.order.descending else (column, task_id)
            row = db.session.execute(
                select(column, task_id)
                .where(TASKS.c.user_id == "heavy", column.is_not(None))
                .order_by(*order)
                .offset(DEEP)
                .limit(1)
            ).one()
            cursors[sort] = encode_cursor(task_listing(query), Position(0, row[0], row[1]))
        count_ms = timed(
            lambda: db.session.execute(
                text("SELECT count(*) FROM tasks WHERE user_id = 'heavy'")
            ).scalar()
        )

    token = jwt.encode({"sub": "heavy", "exp": int(time.time()) + 3600}, SECRET, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    print(
        f"\nGET /api/heavy/tasks?limit=100, {RUNS} runs each, median / p90 in ms "
        "(whole request in-process: JWT, queries, count, JSON)"
    )
    print(f"{'sort':<14}{'first page':>16}{'page at 75,000':>18}")
    for sort in SORTS:
        url = f"/api/heavy/tasks?limit=100&sort={sort}"
        for check in (url, f"{url}&cursor={cursors[sort]}"):
            response = client.get(check, headers=headers)
            assert response.status_code == 200 and len(response.json) == 100, response.json
        first = timed(lambda url=url: client.get(url, headers=headers))
        deep = timed(
            lambda url=url, sort=sort: client.get(f"{url}&cursor={cursors[sort]}", headers=headers)
        )
        print(f"{sort:<14}{first[0]:>9.1f} / {first[1]:<5.1f}{deep[0]:>11.1f} / {deep[1]:<5.1f}")
    print(f"\nX-Total-Count alone (count of 100,000 rows): {count_ms[0]:.1f} ms median")
    filters(client, headers)
    change_feed(app, client, headers)
    with app.app_context():
        db.engine.dispose()


def filters(client, headers: dict) -> None:
    """First pages with the filters of docs/api.md "Listing", each against the plain first page.

    Each filter's requests alternate with plain ones, so that drift on the
    machine (other work on it) touches both sides of the ratio alike.
    """
    now = datetime.now(UTC)
    url = "/api/heavy/tasks?limit=100"
    cases = {
        "tag=urgent (10%)": f"{url}&tag=urgent",
        "tag=project-7 (2%)": f"{url}&tag=project-7",
        "tag=work,urgent": f"{url}&tag=work,urgent",
        "tag=urgent, sort=due_at": f"{url}&tag=urgent&sort=due_at",
        "due in 4 days": f"{url}&due_after={at(now)}&due_before={at(now + timedelta(days=4))}",
        "due in a day, due_at": f"{url}&due_after={at(now)}&due_before="
        f"{at(now + timedelta(days=1))}&sort=due_at",
        "reminder poll": f"{url}&status=pending&remind_before={at(now)}&sort=remind_at",
    }
    print(f"\nfirst page with a filter, {RUNS} runs each alternating with the plain first page")
    print(f"{'filter':<26}{'median / p90 ms':>17}{'plain ms':>10}{'ratio':>7}{'matching':>10}")
    for name, case in cases.items():
        response = client.get(case, headers=headers)
        assert response.status_code == 200 and len(response.json) == 100, (name, response.json)
        samples: dict[str, list[float]] = {case: [], url: []}
        for _ in range(RUNS):
            for each in (case, url):
                started = time.perf_counter()
                client.get(each, headers=headers)
                samples[each].append((time.perf_counter() - started) * 1000)
        median, p90 = summary(samples[case])
        plain = summary(samples[url])[0]
        total = int(response.headers["X-Total-Count"])
        ratio = median / plain
        print(f"{name:<26}{median:>9.1f} / {p90:<5.1f}{plain:>10.1f}{ratio:>7.2f}{total:>10,}")
    tags = client.get("/api/heavy/tags", headers=headers)
    assert tags.status_code == 200 and len(tags.json) == 53, tags.json
    median, p90 = timed(lambda: client.get("/api/heavy/tags", headers=headers))
    rows = sum(tag["count"] for tag in tags.json)
    print(f"\nGET /api/heavy/tags (53 tags, {rows:,} task_tags rows): {median:.1f} / {p90:.1f} ms")


def change_feed(app, client, headers: dict) -> None:
    """A poll of the change feed after a few changes, against a poll that finds none.

    Both read one user's changes after a token through the feed's index; the
    user has 100,000 tasks. The polls alternate, as the filters' do.
    """
    changed = 5
    with app.app_context():
        position = Position(0, TOTAL_TASKS + 1, 0)
        before = encode_feed_token("heavy", FeedToken(position, reading_started()))
    ids = [task["id"] for task in client.get("/api/heavy/tasks?limit=5", headers=headers).json]
    for task_id in ids[:changed]:
        response = client.patch(
            f"/api/heavy/tasks/{task_id}", json={"priority": "high"}, headers=headers
        )
        assert response.status_code == 200, response.json
    after = client.get(f"/api/heavy/changes?since={before}", headers=headers).json
    assert len(after["changes"]) == changed and after["more"] is False, after
    polls = {
        f"{changed} changes": f"/api/heavy/changes?since={before}",
        "no change": f"/api/heavy/changes?since={after['next']}",
    }
    assert client.get(polls["no change"], headers=headers).json["changes"] == []
    samples: dict[str, list[float]] = {name: [] for name in polls}
    for _ in range(RUNS * 3):
        for name, url in polls.items():
            started = time.perf_counter()
            client.get(url, headers=headers)
            samples[name].append((time.perf_counter() - started) * 1000)
    first_sync = timed(lambda: client.get("/api/heavy/changes", headers=headers))
    print(f"\nGET /api/heavy/changes?since=<token>, {RUNS * 3} runs each, alternating")
    empty = summary(samples["no change"])[0]
    for name in polls:
        median, p90 = summary(samples[name])
        print(f"{name:<26}{median:>9.1f} / {p90:<5.1f}  ratio {median / empty:.2f}")
    print(f"first sync page (500 tasks, no since): {first_sync[0]:.1f} / {first_sync[1]:.1f} ms")


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
