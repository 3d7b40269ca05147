"""Real ``send-reminders`` processes (contract 4.10): on time, stopped gracefully,
two at once (directly and through PgBouncer) with one killed mid-batch and
nothing skipped, three at once (soak), refused without keys in production.

The processes run on the tests' database against the stand-in push service
(harness/push_service.py), trusting its CA through SSL_CERT_FILE. Each test
starts its dispatchers first and writes its data while they start.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from harness.dispatchers import dispatcher_environment, dispatchers
from harness.gunicorn import ROOT
from harness.pgbouncer import pgbouncer
from harness.push_service import Answer, PushService
from taskapi.config import generate_vapid_private_key, public_key_of
from taskapi.data.models import PushDelivery
from taskapi.extensions import db

from ..helpers import SECRET, TEST_DATABASE_URL, bearer, build_app, dispose

VAPID_PRIVATE_KEY = generate_vapid_private_key()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    key = public_key_of(VAPID_PRIVATE_KEY)
    service = PushService(tmp_path_factory.mktemp("push"), vapid_key=key)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def push_app(database_url, migrated_app):
    app = build_app(database_url, PUSH_SERVICE_HOSTS="127.0.0.1")
    yield app
    dispose(app)


@pytest.fixture
def client(app, push_app):
    yield push_app.test_client()
    push_app.extensions["taskapi.known_users"].clear()  # `app` emptied the tables


@pytest.fixture
def environment(app, database_url, service):
    yield dispatcher_environment(database_url, service, VAPID_PRIVATE_KEY)
    problems, service.problems[:] = list(service.problems), []
    assert problems == []


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def subscribe_users(client, service, users: int, devices: int, *answers) -> dict:
    """user -> the endpoints of their devices (each answering ``answers`` first)."""
    endpoints = {}
    for n in range(users):
        user = f"user{n}"
        endpoints[user] = []
        for _ in range(devices):
            body = service.subscribe()
            service.answer(body["endpoint"], *answers)
            response = client.post(
                f"/api/{user}/push/subscriptions", json=body, headers=bearer(user)
            )
            assert response.status_code == 201
            endpoints[user].append(body["endpoint"])
    return endpoints


def create_reminders(client, users, per_user: int, remind_at: str) -> list[int]:
    ids = []
    for user in users:
        for n in range(per_user):
            body = {"title": f"task {n}", "remind_at": remind_at}
            response = client.post(f"/api/{user}/tasks", json=body, headers=bearer(user))
            ids.append(response.json["id"])
    return ids


def deliveries(service, endpoints: dict) -> Counter:
    """How many times each (endpoint, task id) arrived."""
    counts = Counter()
    for device_endpoints in endpoints.values():
        for endpoint in device_endpoints:
            for push in service.received(endpoint):
                counts[endpoint, push.payload["task_id"]] += 1
    return counts


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def claims_of(app, dispatcher_name: str) -> set[tuple[int, int]]:
    """The (task, subscription) pairs the dispatcher holds claims on."""
    with app.app_context():
        rows = db.session.execute(
            select(PushDelivery.task_id, PushDelivery.subscription_id).where(
                PushDelivery.claimed_by == dispatcher_name, PushDelivery.lease_until.is_not(None)
            )
        ).all()
        db.session.commit()
    return {tuple(row) for row in rows}


def subscription_ids(client, endpoints) -> dict[str, int]:
    ids = {}
    for user in endpoints:
        listed = client.get(f"/api/{user}/push/subscriptions", headers=bearer(user)).json
        ids |= {subscription["endpoint"]: subscription["id"] for subscription in listed}
    return ids


def test_on_time_and_a_graceful_stop(app, client, environment, service):
    """A reminder arrives within the poll interval; SIGTERM lets the pushes in flight
    finish and records them (nothing held, nothing to send twice)."""
    settings = {"REMINDER_POLL_SECONDS": "1", "REMINDER_CONCURRENCY": "4"}
    with dispatchers(environment | settings) as (dispatcher,):
        endpoints = subscribe_users(client, service, 1, 2)
        name = dispatcher.wait_started()
        (task_id,) = create_reminders(client, endpoints, 1, at(1))
        due = time.time() + 1
        assert wait_until(lambda: len(deliveries(service, endpoints)) == 2, 10)
        latest = max(push.at for e in endpoints["user0"] for push in service.received(e))
        assert latest - due < 1 + 2  # the poll interval plus a little

        for endpoint in endpoints["user0"]:
            service.answer(endpoint, *[Answer(delay=0.5)] * 4)
        arrived = len(service.arrivals)
        create_reminders(client, endpoints, 4, at(0))  # 8 slow pushes
        assert wait_until(lambda: len(service.arrivals) >= arrived + 2, 10)
        stopping = time.monotonic()
        assert dispatcher.stop() == 0
        assert time.monotonic() - stopping < 10
    assert "stopping: finishing" in dispatcher.output
    assert claims_of(app, name) == set()  # recorded, or given back for another
    assert set(deliveries(service, endpoints).values()) == {1}
    for endpoint in endpoints["user0"]:
        assert endpoint.rsplit("/", 1)[1] not in dispatcher.output
    assert f"/tasks/{task_id}" not in dispatcher.output


@pytest.mark.parametrize("pooler", ["direct", "pgbouncer"])
def test_two_dispatchers_one_killed_mid_batch(
    app, client, environment, service, database_url, backend, pooler
):
    """Both send, nothing is skipped, and only what the killed one had in flight may
    arrive twice."""
    settings = {"REMINDER_CONCURRENCY": "4", "REMINDER_LEASE_SECONDS": "2"}
    with ExitStack() as stack:
        if pooler == "pgbouncer":
            if backend != "postgresql":
                pytest.skip("PgBouncer runs in front of PostgreSQL")
            # Transaction mode, two server connections for both dispatchers.
            bouncer = stack.enter_context(pgbouncer(TEST_DATABASE_URL, pool_size=2))
            settings["DATABASE_URL"] = (
                make_url(bouncer)
                .set(database=make_url(database_url).database)
                .render_as_string(hide_password=False)
            )
        arrived = len(service.arrivals)
        killed, survivor = stack.enter_context(dispatchers(environment | settings, 2))
        # Slow pushes (0.3 s each), so that each dispatcher always has some in flight.
        endpoints = subscribe_users(client, service, 6, 2, *[Answer(delay=0.3)] * 3)
        tasks = create_reminders(client, endpoints, 3, at(0.5))  # 36 pushes
        name = killed.wait_started()
        survivor.wait_started()
        assert wait_until(lambda: len(service.arrivals) >= arrived + 8, 20)
        killed.kill()
        in_flight = claims_of(app, name)
        assert wait_until(lambda: len(deliveries(service, endpoints)) == 2 * len(tasks), 40)
        time.sleep(0.5)  # anything sent twice would have arrived by now
        assert survivor.stop() == 0
    assert 0 < len(in_flight) <= 4
    ids = subscription_ids(client, endpoints)
    counts = deliveries(service, endpoints)
    assert len(counts) == 36  # nothing skipped
    repeated = {(task_id, ids[endpoint]) for (endpoint, task_id), n in counts.items() if n > 1}
    assert max(counts.values()) <= 2
    assert repeated <= in_flight


@pytest.mark.soak
def test_three_dispatchers_send_each_reminder_once(client, environment, service):
    with dispatchers(environment | {"REMINDER_CONCURRENCY": "4"}, 3) as started:
        endpoints = subscribe_users(client, service, 10, 2)
        tasks = create_reminders(client, endpoints, 4, at(0.5))  # 80 pushes due at once
        assert wait_until(lambda: len(deliveries(service, endpoints)) == 2 * len(tasks), 60)
        time.sleep(1)  # anything sent twice would have arrived by now
        assert [dispatcher.stop() for dispatcher in started] == [0, 0, 0]
    counts = deliveries(service, endpoints)
    assert len(counts) == 80 and set(counts.values()) == {1}


def test_production_refuses_to_dispatch_without_vapid_keys(database_url):
    environment = {
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "taskapi", "send-reminders"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if "VAPID" in line] == [
        "Error: taskapi cannot start: send-reminders needs VAPID_PRIVATE_KEY and VAPID_SUBJECT "
        "(make a key pair with: flask --app taskapi vapid-keys; VAPID_SUBJECT is "
        "mailto:you@example.com or an https: URL)."
    ]
