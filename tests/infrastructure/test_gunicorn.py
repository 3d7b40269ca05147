"""The real thing: migrations through the CLI, then gunicorn serving wsgi:app."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from harness.gunicorn import call, gunicorn, worker_pids

from ..helpers import BACKENDS, fresh_database, make_token


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
    assert len(worker_pids(process.pid, at_least=2)) == 2


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


def send_chunked(base: str, path: str, body: bytes, token: str) -> tuple[int, dict, bytes]:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length), as streamers do."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    chunks = (body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024))
    try:
        connection.request(
            "POST",
            path,
            body=chunks,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_chunked_body_over_the_limit_is_413(tmp_path):
    token = make_token("chunky")
    # Valid JSON in its first MiB, then 1 MiB of spaces: cut at the limit, it would still parse.
    body = json.dumps({"title": "cut short"}).encode() + b" " * (2 * 1024 * 1024)
    with fresh_database("sqlite", tmp_path) as database_url, gunicorn(database_url) as (base, _):
        status, headers, answer = send_chunked(base, "/api/chunky/tasks", body, token)
        assert status == 413
        assert headers["Content-Type"] == "application/problem+json"
        assert json.loads(answer)["status"] == 413
        assert json.loads(call(f"{base}/api/chunky/tasks", token=token)[2]) == []
        # A chunked body within the limit is read whole.
        small = json.dumps({"title": "streamed"}).encode() + b" " * 1000
        assert send_chunked(base, "/api/chunky/tasks", small, token)[0] == 201


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_completions_spawn_one_next_occurrence_each(tmp_path, backend):
    """Set-true, toggles and retried toggles at once, from threads, across four workers."""
    token = make_token("racer")
    with (
        fresh_database(backend, tmp_path) as database_url,
        gunicorn(database_url, WEB_CONCURRENCY="4", RATELIMIT_ENABLED="false") as (base, process),
    ):
        url = f"{base}/api/racer/tasks"
        body = {"title": "daily", "due_at": "2027-01-04T09:00:00Z", "recurrence": "FREQ=DAILY"}
        ids = [json.loads(call(url, "POST", body, token)[2])["id"] for _ in range(6)]

        def complete(n):
            task_id = ids[n % len(ids)]
            kind = n // len(ids) % 3
            headers = {"Idempotency-Key": f"retry-{task_id}"} if kind == 2 else None
            status, headers, _ = call(
                f"{url}/{task_id}/complete",
                "PATCH",
                {"completed": True} if kind == 0 else None,
                token,
                headers=headers,
            )
            return status, headers.get("Link")

        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(complete, range(len(ids) * 12)))
        listed = call(f"{url}?limit=500", token=token)[2]
    assert "Traceback" not in process.output, process.output
    assert {status for status, _ in results} == {200}
    links = {link for _, link in results if link}
    assert len(links) == len(ids)  # one next occurrence per task, named in a response
    tasks = json.loads(listed)
    assert sorted(task["series_id"] for task in tasks) == sorted(ids * 2)
    spawned = [task for task in tasks if task["id"] not in ids]
    assert {f'</api/racer/tasks/{task["id"]}>; rel="next-occurrence"' for task in spawned} == links


def test_the_next_link_of_the_longest_query_can_be_followed(tmp_path):
    """A title cursor is the longest; with the longest q and tags it still fits gunicorn's line.
    Query strings too long for that are a 414 problem."""
    token = make_token("linker")
    title = "\U0001d11e" * 200  # 800 bytes of UTF-8, 2,400 characters percent-encoded
    tags = [f"{n:02d}" + "t" * 38 for n in range(20)]
    with fresh_database("sqlite", tmp_path) as database_url, gunicorn(database_url) as (base, _):
        url = f"{base}/api/linker/tasks"
        for _ in range(3):
            assert call(url, "POST", {"title": title, "tags": tags}, token)[0] == 201
        query = urllib.parse.urlencode(
            {"q": title, "tag": ",".join(tags), "sort": "title", "status": "pending", "limit": 1}
        )
        status, headers, body = call(f"{url}?{query}", token=token)
        assert status == 200, body
        seen = len(json.loads(body))
        while "Link" in headers:
            next_path = headers["Link"].split(">")[0].lstrip("<")
            assert len(next_path) > len(query)
            status, headers, body = call(base + next_path, token=token)
            assert status == 200, body
            seen += len(json.loads(body))
        assert seen == 3
        # Longer query strings are refused before any page is read.
        status, headers, body = call(f"{base}/api/linker/tasks?x={'%C3%A9' * 700}", token=token)
        assert status == 414
        assert headers["Content-Type"] == "application/problem+json"
        assert "4096" in json.loads(body)["detail"]
        assert call(f"{base}/api/linker/tasks?x={'e' * 4000}", token=token)[0] == 200


def test_sigterm_lets_a_request_in_flight_finish(tmp_path):
    """A deploy stops the server with SIGTERM: a request it is serving still gets its answer."""
    if "postgresql" not in BACKENDS:
        pytest.skip("the request is held by a PostgreSQL row lock")
    token = make_token("leaving")
    with fresh_database("postgresql", tmp_path) as database_url:
        admin = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://"))
        with gunicorn(database_url) as (base, process):
            url = f"{base}/api/leaving/tasks"
            task_id = json.loads(call(url, "POST", {"title": "before"}, token)[2])["id"]
            with ThreadPoolExecutor(1) as pool, admin.connect() as lock:
                lock.execute(text("SELECT 1 FROM tasks WHERE id = :id FOR UPDATE"), {"id": task_id})
                answer = pool.submit(call, f"{url}/{task_id}", "PATCH", {"title": "after"}, token)
                time.sleep(0.5)  # the PATCH now waits for the row lock
                process.send_signal(signal.SIGTERM)
                time.sleep(0.5)
                lock.rollback()
                status, _, body = answer.result(timeout=10)
            assert process.wait(timeout=25) == 0
        admin.dispose()
    assert status == 200
    assert json.loads(body)["title"] == "after"


def test_instances_started_from_one_home_share_no_control_socket(tmp_path):
    """gunicorn 27 would put both instances' control socket at ~/.gunicorn/gunicorn.ctl,
    the second taking it over from the first; ours opens none."""
    home = tmp_path / "home"
    home.mkdir()
    same_home = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    with (
        fresh_database("sqlite", tmp_path) as first_url,
        fresh_database("sqlite", tmp_path) as second_url,
        gunicorn(first_url, **same_home) as (first, first_process),
        gunicorn(second_url, **same_home) as (second, second_process),
    ):
        token = make_token("twice")
        assert call(f"{first}/api/twice/tasks", "POST", {"title": "first"}, token)[0] == 201
        assert call(f"{second}/api/twice/tasks", "POST", {"title": "second"}, token)[0] == 201
        assert not list(home.rglob("*.ctl"))
        titles = [
            [task["title"] for task in json.loads(call(f"{base}/api/twice/tasks", token=token)[2])]
            for base in (first, second)
        ]
        assert first_process.poll() is None and second_process.poll() is None
    assert titles == [["first"], ["second"]]


def socket_inodes(pid: int) -> set[str]:
    fds = f"/proc/{pid}/fd"
    links = set()
    for fd in os.listdir(fds):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            links.add(os.readlink(f"{fds}/{fd}"))
    return {link for link in links if link.startswith("socket:[")}


def listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    return inodes


def test_workers_share_only_the_listening_socket(tmp_path, backend):
    """The app is imported once, by the master; the connections it uses (the
    database, Redis for the limits) are each worker's own, never inherited."""
    with fresh_database(backend, tmp_path) as database_url:
        environment = {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}
        with gunicorn(database_url, **environment) as (base, process):
            token = make_token("forked")
            with ThreadPoolExecutor(8) as pool:
                statuses = list(
                    pool.map(lambda _: call(f"{base}/api/forked/tasks", token=token)[0], range(40))
                )
            assert set(statuses) == {200}
            workers = worker_pids(process.pid, at_least=2)
            listening = listening_inodes(urllib.parse.urlsplit(base).port)
            assert socket_inodes(process.pid) == listening
            first, second = (socket_inodes(worker) - listening for worker in workers)
            assert not first & second


def test_a_worker_that_dies_is_replaced_and_reaped(tmp_path):
    """gunicorn's master (gevent-patched, as gunicorn.conf.py has it) forks a new
    worker from the preloaded app when one is killed, and leaves no zombie."""
    with (
        fresh_database("sqlite", tmp_path) as database_url,
        gunicorn(database_url) as (base, process),
    ):
        workers = set(worker_pids(process.pid, at_least=2))
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while killed in (now := set(worker_pids(process.pid))) or len(now) < 2:
            assert time.monotonic() < deadline, f"workers {now} after killing {killed}"
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{killed}")  # reaped, not a zombie
        token = make_token("survivor")
        statuses = {call(f"{base}/api/survivor/tasks", token=token)[0] for _ in range(20)}
        assert statuses == {200}
