"""A framework-free WSGI app doing the same work as taskapi, for `make bench`.

It verifies the HS256 token, checks the user id against the URL, runs the
same SQL through psycopg2 (autocommit connections, one per request in
flight, kept for the next) and answers with json.dumps: the ceiling that a
framework can approach. Only the three benchmarked routes exist; errors are
bare. Under gevent workers one worker serves several requests at once, and a
psycopg2 connection runs one query at a time: hence a free list, not a
single connection.

Run: gunicorn -c gunicorn.conf.py bench.baseline:app
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from datetime import UTC

import jwt
import psycopg2

SECRET = os.environ["BETTER_AUTH_SECRET"]
DATABASE_URL = os.environ["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
PRIORITIES = ("low", "normal", "high")
ROUTE = re.compile(r"/api/([A-Za-z0-9._~:@|+=-]{1,255})/tasks(?:/([0-9]{1,10}))?")
COLUMNS = "id, user_id, title, description, completed, due_at, priority, created_at, updated_at"
LIST_SQL = (
    f"SELECT {COLUMNS}, (SELECT count(*) FROM tasks WHERE user_id = %(user)s) "
    "FROM tasks WHERE user_id = %(user)s ORDER BY created_at DESC, id DESC LIMIT 101"
)
GET_SQL = f"SELECT {COLUMNS}, version FROM tasks WHERE id = %(id)s AND user_id = %(user)s"
CREATE_SQL = (
    "INSERT INTO tasks (user_id, title, description, completed, due_at, priority, version, "
    "created_at, updated_at) VALUES (%(user)s, %(title)s, NULL, false, NULL, 1, 1, now(), now()) "
    f"RETURNING {COLUMNS}, version"
)

_free: list = []


@contextmanager
def connection():
    """A connection of this request's own (no lock: greenlets switch only on I/O)."""
    conn = _free.pop() if _free else None
    if conn is None or conn.closed:
        conn = psycopg2.connect(DATABASE_URL, connect_timeout=10)
        conn.autocommit = True
    try:
        yield conn
    finally:
        _free.append(conn)


def stamp(value):
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def task_json(row) -> dict:
    return {
        "id": row[0],
        "user_id": row[1],
        "title": row[2],
        "description": row[3],
        "completed": row[4],
        "due_at": stamp(row[5]),
        "priority": PRIORITIES[row[6]],
        "created_at": stamp(row[7]),
        "updated_at": stamp(row[8]),
    }


def respond(start_response, status: str, body, headers=()):
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers]
    )
    return [data]


def app(environ, start_response):
    match = ROUTE.fullmatch(environ["PATH_INFO"])
    if not match:
        return respond(start_response, "404 Not Found", {"status": 404})
    user_id, task_id = match.groups()
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scheme, token = auth.split(" ", 1)
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except (ValueError, jwt.PyJWTError):
        return respond(start_response, "401 Unauthorized", {"status": 401})
    if scheme != "Bearer" or claims["sub"] != user_id:
        return respond(start_response, "403 Forbidden", {"status": 403})

    method = environ["REQUEST_METHOD"]
    with connection() as conn, conn.cursor() as cursor:
        if method == "GET" and task_id is None:
            cursor.execute(LIST_SQL, {"user": user_id})
            rows = cursor.fetchall()
            total = rows[0][-1] if rows else 0
            return respond(
                start_response,
                "200 OK",
                [task_json(row) for row in rows[:100]],
                [("X-Total-Count", str(total))],
            )
        if method == "GET":
            cursor.execute(GET_SQL, {"id": int(task_id), "user": user_id})
            row = cursor.fetchone()
            if row is None:
                return respond(start_response, "404 Not Found", {"status": 404})
            return respond(
                start_response, "200 OK", task_json(row), [("ETag", f'"{row[0]}.{row[9]}"')]
            )
        if method == "POST" and task_id is None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length))
            title = body.get("title") if isinstance(body, dict) else None
            if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
                return respond(start_response, "400 Bad Request", {"status": 400})
            cursor.execute(CREATE_SQL, {"user": user_id, "title": title.strip()})
            row = cursor.fetchone()
            location = f"/api/{user_id}/tasks/{row[0]}"
            return respond(
                start_response,
                "201 Created",
                task_json(row),
                [("Location", location), ("ETag", f'"{row[0]}.{row[9]}"')],
            )
    return respond(start_response, "405 Method Not Allowed", {"status": 405})
