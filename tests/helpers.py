"""What tests share: the secret, token makers, throwaway databases and apps.

Tests import these from here; ``conftest.py`` holds only fixtures.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import jwt as pyjwt
from sqlalchemy import delete

from harness.databases import fresh_postgres_database
from harness.gunicorn import SECRET
from harness.push_service import BrowserKeys
from taskapi import create_app
from taskapi.data.models import Task, User
from taskapi.extensions import db

# An endpoint of Chrome's push service (the default PUSH_SERVICE_HOSTS admits it).
FCM_ENDPOINT = "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH"


def push_subscription(endpoint: str = FCM_ENDPOINT) -> dict:
    """A browser's ``PushSubscription.toJSON()`` for ``endpoint``, with fresh keys."""
    return BrowserKeys().to_json(endpoint)


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite", "postgresql"] if TEST_DATABASE_URL else ["sqlite"]

# alice's collections: bearer()'s and create_task's user, the one most tests act as.
TASKS = "/api/alice/tasks"
TAGS = "/api/alice/tags"
TRASH = "/api/alice/trash"
CHANGES = "/api/alice/changes"
# Every per-user endpoint, with {user} and {task} to fill in, and a body it accepts.
USER_ENDPOINTS = [
    ("get", "/api/{user}/tasks", None),
    ("post", "/api/{user}/tasks", {"title": "x"}),
    ("get", "/api/{user}/tasks/{task}", None),
    ("put", "/api/{user}/tasks/{task}", {"title": "x"}),
    ("patch", "/api/{user}/tasks/{task}", {"title": "x"}),
    ("patch", "/api/{user}/tasks/{task}/complete", None),
    ("delete", "/api/{user}/tasks/{task}", None),
    ("get", "/api/{user}/tags", None),
    ("patch", "/api/{user}/tags/work", {"name": "job"}),
    ("delete", "/api/{user}/tags/work", None),
    ("delete", "/api/{user}/tasks?status=completed", None),
    ("get", "/api/{user}/trash", None),
    ("delete", "/api/{user}/trash", None),
    ("post", "/api/{user}/trash/{task}/restore", None),
    ("delete", "/api/{user}/trash/{task}", None),
    ("get", "/api/{user}/changes", None),
    ("post", "/api/{user}/push/subscriptions", push_subscription()),
    ("get", "/api/{user}/push/subscriptions", None),
    ("delete", "/api/{user}/push/subscriptions/{task}", None),
]
# The endpoints of one live task.
TASK_ENDPOINTS = [endpoint for endpoint in USER_ENDPOINTS if "/tasks/{task}" in endpoint[1]]


PROBLEM = "application/problem+json"
# What an error body must never show: a traceback, source paths, SQL, the driver.
INTERNALS = ("Traceback", 'File "', "sqlalchemy", "psycopg2", "sqlite3", "SELECT ", "INSERT ")


def assert_problem(response, status: int) -> dict:
    """``response`` is an RFC 9457 problem with ``status``, showing no internals;
    returns its body."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()  # never HTML
    assert not [sign for sign in INTERNALS if sign in text], text
    assert text.endswith("}\n")  # ends its line in a terminal, as success bodies do
    return body


def make_token(
    user_id: str | None = "alice",
    *,
    secret: str = SECRET,
    now: float | None = None,
    lifetime: float = 3600,
    **claims,
) -> str:
    """An HS256 token like Better Auth's, issued at ``now`` (default: now) for
    ``lifetime`` seconds; a claim set to None is left out."""
    now = int(time.time()) if now is None else now
    payload = {"sub": user_id, "iat": now, "exp": now + lifetime} | claims
    payload = {key: value for key, value in payload.items() if value is not None}
    return pyjwt.encode(payload, secret, algorithm="HS256")


def bearer(user_id: str = "alice", **claims) -> dict:
    return {"Authorization": f"Bearer {make_token(user_id, **claims)}"}


@contextmanager
def fresh_database(backend: str, folder: Path):
    """Yield the URL of a new, empty database; PostgreSQL ones are dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'taskapi-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    with fresh_postgres_database(TEST_DATABASE_URL) as url:
        yield url


def build_app(database_url: str, **config):
    """An app for tests; whoever builds one disposes of it (``dispose``)."""
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JWT_SECRET_KEY": SECRET,
            "SECRET_KEY": SECRET,
            # Tests send many requests per user; test_limits turns limits on.
            "RATELIMIT_ENABLED": False,
            **config,
        }
    )


def empty_tables(app) -> None:
    """Remove every user (and so every task, tag and key) a test wrote."""
    with app.app_context():
        db.session.execute(delete(Task))
        db.session.execute(delete(User))
        db.session.commit()
    app.extensions["taskapi.known_users"].clear()  # their rows are gone


def dispose(app) -> None:
    """Close the app's pooled connections (a dropped database must have none)."""
    with app.app_context():
        db.engine.dispose()


class RecordList(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)
