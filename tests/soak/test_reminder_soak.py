"""10,000 reminders due in the same minute, 1,000 users with 3 browsers each: 30,000
pushes through 2 dispatchers on PostgreSQL, each delivered once.

The stand-in push service (harness/push_service.py) checks and decrypts every
push. The dispatchers run with the production defaults (poll every 15 s,
20 pushes in flight each). The figures printed at the end (time to drain,
delay after each reminder's time) are in docs/performance.md.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import flask_migrate
import pytest
from sqlalchemy import insert, text

from harness.dispatchers import dispatcher_environment, dispatchers
from harness.push_service import PushService
from taskapi.config import generate_vapid_private_key, public_key_of
from taskapi.data.models import PushSubscription, Task, User
from taskapi.extensions import db

from ..helpers import TEST_DATABASE_URL, build_app, dispose, fresh_database

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="the soak runs against PostgreSQL"),
]

USERS = 1_000
DEVICES = 3
TASKS_PER_USER = 10
DISPATCHERS = 2
# The dispatchers start (about 2 s each) before the first reminder comes due.
LEAD_SECONDS = 20


def seed(app, service: PushService, first_due: datetime) -> dict[str, int]:
    """Users, their subscriptions and tasks; the minute's reminders spread over it.

    Returns each endpoint's token -> its user's number.
    """
    now = datetime.now(UTC)
    owners = {}
    subscriptions = []
    for user in range(USERS):
        for _ in range(DEVICES):
            body = service.subscribe()
            owners[body["endpoint"].rsplit("/", 1)[1]] = user
            subscriptions.append(
                {
                    "user_id": f"user{user}",
                    "endpoint": body["endpoint"],
                    "p256dh": body["keys"]["p256dh"],
                    "auth": body["keys"]["auth"],
                    "created_at": now - timedelta(hours=1),
                    "updated_at": now,
                }
            )
    tasks = [
        {
            "user_id": f"user{user}",
            "title": f"reminder {n} of user {user}",
            "remind_at": first_due + timedelta(seconds=(user * TASKS_PER_USER + n) % 60),
            "created_at": now,
            "updated_at": now,
        }
        for user in range(USERS)
        for n in range(TASKS_PER_USER)
    ]
    with app.app_context():
        connection = db.session.connection()
        connection.execute(insert(User), [{"id": f"user{user}"} for user in range(USERS)])
        connection.execute(insert(PushSubscription), subscriptions)
        connection.execute(insert(Task), tasks)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return owners


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_ten_thousand_reminders_in_one_minute_reach_every_device_once(tmp_path, capsys):
    vapid_private_key = generate_vapid_private_key()
    service = PushService(tmp_path / "push", vapid_key=public_key_of(vapid_private_key))
    with fresh_database("postgresql", tmp_path) as url:
        app = build_app(url)
        with app.app_context():
            flask_migrate.upgrade()
        first_due = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
        owners = seed(app, service, first_due)
        own_cpu = own_cpu_seconds()
        load_before = os.getloadavg()[0]
        expected = USERS * TASKS_PER_USER * DEVICES
        environment = dispatcher_environment(url, service, vapid_private_key)
        environment.pop("REMINDER_POLL_SECONDS")  # the production default
        with dispatchers(environment, DISPATCHERS) as started:
            for dispatcher in started:
                dispatcher.wait_started()
            assert datetime.now(UTC) < first_due, "seeding took longer than the lead time"
            deadline = time.monotonic() + LEAD_SECONDS + 900
            while len(service.received()) < expected and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(5)  # a push sent twice would have arrived by now
            dispatcher_cpu = [cpu_seconds(d.process.pid) for d in started]
            assert [dispatcher.stop() for dispatcher in started] == [0] * DISPATCHERS
        dispose(app)
    service.stop()

    pushes = service.received()
    counts = Counter((push.token, push.payload["task_id"]) for push in pushes)
    assert service.problems == []
    assert len(counts) == expected  # every reminder reached every device
    assert set(counts.values()) == {1}  # once
    # Each push went to its task's owner.
    assert all(push.payload["title"].endswith(f"of user {owners[push.token]}") for push in pushes)
    first, last = first_due.timestamp(), first_due.timestamp() + 59
    arrivals = sorted(push.at for push in pushes)
    delays = sorted(
        push.at - datetime.fromisoformat(push.payload["remind_at"]).timestamp() for push in pushes
    )
    load_after = os.getloadavg()[0]
    figures = {
        "pushes": len(pushes),
        "first push after the minute began (s)": round(arrivals[0] - first, 1),
        "drained after the minute began (s)": round(arrivals[-1] - first, 1),
        "drained after the last reminder's time (s)": round(arrivals[-1] - last, 1),
        "pushes per second while draining": round(len(pushes) / (arrivals[-1] - arrivals[0])),
        "delay after remind_at, median (s)": round(statistics.median(delays), 1),
        "delay after remind_at, p99 (s)": round(delays[int(len(delays) * 0.99)], 1),
        "delay after remind_at, max (s)": round(delays[-1], 1),
        "CPU s, each dispatcher": dispatcher_cpu,
        "CPU s, this process (the stand-in service)": round(own_cpu_seconds() - own_cpu),
        "load average (1 min) before, after": (round(load_before, 1), round(load_after, 1)),
    }
    with capsys.disabled():
        print("\nreminder soak:", figures)
