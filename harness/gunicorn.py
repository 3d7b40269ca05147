"""Real processes for the tests and benchmarks: the API under gunicorn, static pages, free
ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.databases import upgrade_with_cli

ROOT = Path(__file__).resolve().parent.parent
# The served app's BETTER_AUTH_SECRET unless the caller gives another; the tests
# sign their tokens with it.
SECRET = "test-secret-" + "x" * 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, process: subprocess.Popen, name: str, logs: Callable[[], str], timeout: float = 10
) -> None:
    """Until ``process`` listens on ``port``; if it exits or ``timeout`` s pass, fail with
    ``logs()``."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start: {logs()}")
        time.sleep(0.05)


def worker_pids(master: int, at_least: int = 0, timeout: float = 10) -> list[int]:
    """The pids of ``master``'s workers, once there are ``at_least`` of them
    (gunicorn forks them one after another)."""
    deadline = time.monotonic() + timeout
    while True:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) >= at_least or time.monotonic() > deadline:
            return [int(pid) for pid in children]
        time.sleep(0.05)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Send ``sig`` and wait for ``process`` to end; kill it past ``timeout`` seconds."""
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def call(
    url: str,
    method: str = "GET",
    body: dict | None = None,
    token: str | None = None,
    headers: dict | None = None,
    raw: bytes | None = None,
):
    """One HTTP request (a JSON ``body``, or ``raw`` bytes); returns (status, headers,
    body bytes) for errors too."""
    headers = dict(headers or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else raw
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@contextmanager
def gunicorn(database_url: str, *, ctrl_c: bool = False, **environment: str):
    """Migrate ``database_url`` with the CLI, then serve wsgi:app with gunicorn.

    Stopped with SIGTERM, as a platform stops it; with ``ctrl_c``, with SIGINT to
    the master and its workers, as a terminal's Ctrl-C. Afterwards the process
    carries ``output`` (what it printed) and ``returncode``.
    """
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        **environment,
    }
    upgrade_with_cli(env)
    # A file, not a pipe: a pipe nobody reads fills up and blocks the workers' logging.
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed when the server stops)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own, as a terminal's job
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
            assert process.poll() is None, read_log(log)
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield base, process
    finally:
        if ctrl_c:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        process.output = read_log(log)
        log.close()


def read_log(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


@contextmanager
def static_site(folder: Path):
    """Serve ``folder`` over HTTP on a loopback port of its own (its own origin)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
