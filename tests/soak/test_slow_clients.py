"""Slow and idle clients delay nobody.

Against gunicorn with 2 workers, as deployed: 200 connections that send
nothing and 50 that send a request's headers one byte every 2 seconds stay
open for 30 seconds. Meanwhile other clients ask for /healthz and for tasks
with a token; every one of their requests succeeds, and the 99th percentile
of their latencies stays under 250 ms. The server closes a connection that
has not sent a whole request head within its keepalive (5 s); the crowd
opens another at once, so there are 250 of them all the time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.gunicorn import call, gunicorn

from ..helpers import BACKENDS, fresh_database, make_token

pytestmark = pytest.mark.soak

IDLE, SLOW = 200, 50
SECONDS = 30
BYTE_EVERY = 2.0
CHECKERS = 4
P99_LIMIT_MS = 250
# The start of a request whose headers never end within the test.
SLOW_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nX-Padding: " + b"a" * 200


class Crowd:
    """Idle and slow connections to ``port``, kept open (reopened if closed) until stopped."""

    def __init__(self, port: int):
        self.port = port
        self.idle: list[socket.socket] = []
        self.slow: list[tuple[socket.socket, int]] = []
        self.reopened = 0
        self.dripped = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.drip, daemon=True)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        return sock

    def __enter__(self):
        self.idle = [self.connect() for _ in range(IDLE)]
        self.slow = [(self.connect(), 0) for _ in range(SLOW)]
        self.thread.start()
        return self

    def drip(self) -> None:
        while not self.stop.wait(BYTE_EVERY):
            for index, (sock, sent) in enumerate(self.slow):
                try:
                    position = sent % len(SLOW_REQUEST)
                    sock.send(SLOW_REQUEST[position : position + 1])
                    self.slow[index] = (sock, sent + 1)
                    self.dripped += 1
                except OSError:
                    sock.close()
                    self.slow[index] = (self.connect(), 0)
                    self.reopened += 1
            for index, sock in enumerate(self.idle):
                if self.closed_by_server(sock):
                    sock.close()
                    self.idle[index] = self.connect()
                    self.reopened += 1

    @staticmethod
    def closed_by_server(sock: socket.socket) -> bool:
        try:
            return sock.recv(1) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(timeout=BYTE_EVERY + 5)
        for sock in self.idle + [sock for sock, _ in self.slow]:
            sock.close()


def test_idle_and_slow_connections_delay_nobody(tmp_path):
    backend = BACKENDS[-1]  # PostgreSQL when there is one
    with (
        fresh_database(backend, tmp_path) as database_url,
        # Limits on, as deployed, with room for the checkers' requests.
        gunicorn(database_url, RATELIMIT_DEFAULT="100000 per minute") as (base, process),
    ):
        token = make_token("patient")
        tasks = f"{base}/api/patient/tasks"
        task_id = json.loads(call(tasks, "POST", {"title": "still here"}, token)[2])["id"]
        port = int(base.rsplit(":", 1)[1])
        urls = [f"{base}/healthz", tasks, f"{tasks}/{task_id}"]

        def check(number: int) -> list[tuple[float, int]]:
            results = []
            deadline = time.monotonic() + SECONDS
            n = number
            while time.monotonic() < deadline:
                url = urls[n % len(urls)]
                started = time.perf_counter()
                try:
                    status = call(url, token=None if url.endswith("/healthz") else token)[0]
                except OSError:
                    status = 0
                results.append(((time.perf_counter() - started) * 1000, status))
                n += 1
                time.sleep(0.01)
            return results

        with Crowd(port) as crowd, ThreadPoolExecutor(CHECKERS) as pool:
            results = [r for rs in pool.map(check, range(CHECKERS)) for r in rs]
    assert "Traceback" not in process.output, process.output

    latencies = sorted(latency for latency, _ in results)
    p99 = latencies[int(len(latencies) * 0.99)]
    print(
        f"\n{len(results)} requests during {IDLE} idle + {SLOW} slow connections for {SECONDS} s: "
        f"p50 {latencies[len(latencies) // 2]:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1]:.1f} ms; {crowd.reopened} connections reopened; "
        f"{crowd.dripped} header bytes dripped"
    )
    assert {status for _, status in results} == {200}
    assert len(results) > SECONDS * CHECKERS  # the checkers were not stalled
    # The slow clients kept sending (reopening takes part of each 2 s round).
    assert crowd.dripped >= SLOW * SECONDS / (2 * BYTE_EVERY)
    assert p99 < P99_LIMIT_MS
