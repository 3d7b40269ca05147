"""The real thing: migrations through the CLI, then gunicorn serving wsgi:app."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from .helpers import BACKENDS, fresh_database, make_token
from .servers import call, gunicorn


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path):
    with fresh_database(request.param, tmp_path) as database_url:
        with gunicorn(database_url) as (base, process):
            yield base, process
        assert "Traceback" not in process.output, process.output


def test_gunicorn_serves_the_api(server):
    base, _process = server
    token = make_token("served")
    status, headers, body = call(f"{base}/api/served/tasks", "POST", {"title": "real"}, token)
    assert status == 201
    assert headers["Location"] == f"/api/served/tasks/{json.loads(body)['id']}"
    status, _, body = call(f"{base}/api/served/tasks", token=token)
    assert status == 200
    assert [task["title"] for task in json.loads(body)] == ["real"]
    assert call(f"{base}/readyz")[0] == 200
    status, headers, _ = call(f"{base}/api/served/tasks")
    assert status == 401
    assert headers["Content-Type"] == "application/problem+json"


def test_gunicorn_reads_web_concurrency(server):
    _base, process = server
    deadline = time.monotonic() + 10  # workers are spawned one after another
    while True:
        workers = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        if len(workers) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(workers) == 2


def test_logs_are_json_lines_without_tokens(tmp_path):
    with fresh_database("sqlite", tmp_path) as database_url:
        token = make_token("logged")
        with gunicorn(database_url) as (base, process):
            call(
                f"{base}/api/logged/tasks",
                "POST",
                {"title": "x"},
                token,
                headers={"X-Request-ID": "from-test"},
            )
            call(f"{base}/api/logged/tasks", token=token + "tampered")
        lines = [line for line in process.output.splitlines() if line.startswith("{")]
        entries = [json.loads(line) for line in lines]
        access = [entry for entry in entries if entry["logger"] == "taskapi.access"]
        assert [(e["method"], e["status"]) for e in access if e["path"] != "/healthz"] == [
            ("POST", 201),
            ("GET", 401),
        ]
        assert any(entry.get("request_id") == "from-test" for entry in access)
        assert token not in process.output
        assert token.split(".")[2] not in process.output
