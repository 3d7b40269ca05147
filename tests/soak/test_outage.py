"""The database goes away in the middle of load, then comes back.

Its backends are killed and new connections refused for a few seconds (what a
restart or a serverless suspend looks like from the service). Meanwhile every
answer is a success or a 503 problem+json, quickly; within 5 seconds of the
database's return everything succeeds again; and no request is half-applied.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.gunicorn import call, gunicorn

from ..helpers import TEST_DATABASE_URL, fresh_database, make_token

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="the outage is a PostgreSQL outage"),
]

CLIENTS = 8
OUTAGE_STARTS, OUTAGE_ENDS, LOAD_ENDS = 2.0, 5.0, 12.0
RECOVERY_SECONDS = 5.0


def take_database_away(admin, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )


def bring_database_back(admin, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))


def test_service_answers_503_while_the_database_is_gone_and_recovers(tmp_path):
    with (
        fresh_database("postgresql", tmp_path) as database_url,
        gunicorn(database_url, RATELIMIT_ENABLED="false") as (base, _process),
    ):
        name = make_url(database_url).database
        admin = create_engine(
            make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg2"),
            isolation_level="AUTOCOMMIT",
        )
        started = time.monotonic()
        stop = threading.Event()

        def client(number: int) -> list[dict]:
            user_id = f"outage-{number}"
            token = make_token(user_id)
            records, n = [], 0
            while not stop.is_set():
                title = f"{user_id} task {n}"
                begin = time.monotonic() - started
                if n % 4 == 3:
                    status, headers, body = call(f"{base}/api/{user_id}/tasks", token=token)
                else:
                    status, headers, body = call(
                        f"{base}/api/{user_id}/tasks", "POST", {"title": title}, token
                    )
                records.append(
                    {
                        "user_id": user_id,
                        "title": title,
                        "post": n % 4 != 3,
                        "begin": begin,
                        "end": time.monotonic() - started,
                        "status": status,
                        "type": headers.get("Content-Type"),
                        "retry_after": headers.get("Retry-After"),
                        "body": body,
                    }
                )
                n += 1
            return records

        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client, number) for number in range(CLIENTS)]
            time.sleep(OUTAGE_STARTS)
            take_database_away(admin, name)
            time.sleep(OUTAGE_ENDS - OUTAGE_STARTS)
            bring_database_back(admin, name)
            time.sleep(LOAD_ENDS - OUTAGE_ENDS)
            stop.set()
            records = [record for future in futures for record in future.result()]

        statuses = {record["status"] for record in records}
        assert statuses <= {200, 201, 503}, statuses
        unavailable = [record for record in records if record["status"] == 503]
        assert unavailable, "the outage was not noticed"
        for record in unavailable:
            assert record["type"] == "application/problem+json"
            assert record["retry_after"]
            assert json.loads(record["body"])["status"] == 503
        assert max(record["end"] - record["begin"] for record in records) < 11

        # Back within RECOVERY_SECONDS of the database's return, and for good.
        late = [r for r in records if r["begin"] > OUTAGE_ENDS + RECOVERY_SECONDS]
        assert late and all(r["status"] in (200, 201) for r in late)
        first_success = min(
            r["end"] for r in records if r["begin"] > OUTAGE_ENDS and r["status"] in (200, 201)
        )
        assert first_success - OUTAGE_ENDS < RECOVERY_SECONDS

        # Nothing half-applied: each stored task is one we asked for, whole; every 201 is there.
        engine = create_engine(database_url)
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT user_id, title, completed, version, description FROM tasks")
            ).all()
        engine.dispose()
        admin.dispose()
        requested = {(r["user_id"], r["title"]) for r in records if r["post"]}
        created = {(r["user_id"], r["title"]) for r in records if r["status"] == 201}
        stored_titles = {(row.user_id, row.title) for row in stored}
        assert len(stored_titles) == len(stored), "a request created two tasks"
        assert created <= stored_titles
        assert stored_titles <= requested
        assert all(
            (row.completed, row.version, row.description) == (False, 1, None) for row in stored
        )
        print(
            f"\n{len(records)} requests, {len(unavailable)} answered 503, "
            f"first success {first_success - OUTAGE_ENDS:.2f} s after the database returned"
        )
