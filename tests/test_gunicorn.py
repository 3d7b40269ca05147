"""The real thing: migrations through the CLI, then gunicorn serving wsgi:app."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import BACKENDS, SECRET, fresh_database, make_token

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path):
    with fresh_database(request.param, tmp_path) as database_url:
        port = free_port()
        env = {
            **os.environ,
            "APP_ENV": "production",
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": SECRET,
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
        }
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "taskapi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if call(f"{base}/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
            yield base, process
        finally:
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=30)[0].decode()
            assert "Traceback" not in output, output


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
    workers = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(workers) == 2
