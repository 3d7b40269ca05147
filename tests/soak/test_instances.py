"""Two instances behind one load balancer share one state (docs/scaling.md).

Two gunicorn masters (each its own port and control socket) sit behind a
real nginx balancing round-robin, both connected through one real PgBouncer
in transaction-pooling mode with fewer server connections than workers (so
any state a connection kept between transactions would show), and counting
rate limits in Redis. Through the balancer or straight at each instance:
the load test holds, a user's limit is counted once, an Idempotency-Key
creates once, an ETag from one instance works on the other, and killing one
instance mid-load loses no acknowledged write while the other carries on.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from harness.gunicorn import call, gunicorn, worker_pids
from harness.nginx import available as nginx_available
from harness.nginx import balancer
from harness.pgbouncer import pgbouncer

from ..helpers import TEST_DATABASE_URL, fresh_database, make_token
from .test_load import run_all_users_and_check

if not nginx_available() and os.environ.get("CI"):
    raise RuntimeError("CI needs nginx for the two-instance test (.ci/run installs it)")

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="the instances share a PostgreSQL"),
    pytest.mark.skipif(
        not nginx_available(), reason="nginx is not installed (.ci/run installs it)"
    ),
]

# A database number of its own; every key it writes names this run's users, and goes after.
REDIS_URL = "redis://127.0.0.1:6379/3"
# Above what one load-test user sends (about 205 requests), low enough to count to.
USER_LIMIT = 250
# Fewer than the four workers' connections: transactions of different workers
# take turns on the same server connections.
SERVER_CONNECTIONS = 3


@dataclass
class Cluster:
    url: str  # the balancer
    instances: list[str]  # each instance, straight
    masters: list  # their gunicorn master processes
    database_url: str  # PostgreSQL itself, not through PgBouncer
    run: str  # in every user id of this run


@contextmanager
def two_instances(folder: Path, **environment: str) -> Iterator[Cluster]:
    run = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        stack.callback(forget_limits, run)
        database_url = stack.enter_context(fresh_database("postgresql", folder))
        pooled_url = stack.enter_context(
            pgbouncer(database_url, pool_size=SERVER_CONNECTIONS, query_wait_timeout=10)
        )
        settings = {
            "WEB_CONCURRENCY": "2",
            "RATELIMIT_STORAGE_URI": REDIS_URL,
            "RATELIMIT_DEFAULT": f"{USER_LIMIT} per hour",
            "TRUSTED_PROXIES": "1",  # nginx
            **environment,
        }
        bases, masters = [], []
        for name in ("a", "b"):
            home = folder / f"home-{name}"  # gunicorn's control socket: ~/.gunicorn/gunicorn.ctl
            home.mkdir()
            base, master = stack.enter_context(gunicorn(pooled_url, HOME=str(home), **settings))
            bases.append(base)
            masters.append(master)
        url = stack.enter_context(balancer(bases))
        yield Cluster(url, bases, masters, database_url, run)


def forget_limits(run: str) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    keys = list(store.scan_iter(f"*{run}*"))
    if keys:
        store.delete(*keys)
    store.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with two_instances(tmp_path_factory.mktemp("instances")) as running:
        yield running


def stored_tasks(database_url: str, user_id: str) -> list:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, title FROM tasks WHERE user_id = :user ORDER BY id"), {"user": user_id}
        ).all()
    engine.dispose()
    return rows


def test_the_load_test_holds_through_the_balancer(cluster):
    run_all_users_and_check(cluster.url, prefix=f"lb-{cluster.run}")


def test_a_users_limit_is_counted_once_across_both_instances(cluster):
    user_id = f"limited-{cluster.run}"
    token = make_token(user_id)
    extra = 10

    def get(_n: int):
        status, headers, _ = call(f"{cluster.url}/api/{user_id}/tasks", token=token)
        return status, headers.get("X-Upstream"), headers.get("Retry-After")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(get, range(USER_LIMIT + extra)))
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == USER_LIMIT
    assert statuses.count(429) == extra
    assert all(int(retry) > 0 for status, _, retry in answers if status == 429)
    # Both instances answered, each counting in the same place.
    upstreams = {upstream for _, upstream, _ in answers}
    assert upstreams == {base.removeprefix("http://") for base in cluster.instances}


def test_one_idempotency_key_sent_to_both_instances_creates_one_task(cluster):
    user_id = f"idem-{cluster.run}"
    token = make_token(user_id)
    first, second = cluster.instances

    def create(base: str, key: str, title: str):
        return call(
            f"{base}/api/{user_id}/tasks",
            "POST",
            {"title": title},
            token,
            headers={"Idempotency-Key": key},
        )

    # One after the other: the second instance replays what the first created.
    status_a, headers_a, body_a = create(first, "key-one", "once")
    status_b, headers_b, body_b = create(second, "key-one", "once")
    assert (status_a, status_b) == (201, 201)
    assert json.loads(body_a) == json.loads(body_b)
    assert headers_a["Location"] == headers_b["Location"]
    assert headers_a["ETag"] == headers_b["ETag"]

    # At the same moment: one creates, the other waits for it and replays.
    barrier = threading.Barrier(2)

    def racing(base: str):
        barrier.wait()
        return create(base, "key-two", "raced")

    with ThreadPoolExecutor(2) as pool:
        raced = list(pool.map(racing, (first, second)))
    assert [status for status, _, _ in raced] == [201, 201]
    assert json.loads(raced[0][2])["id"] == json.loads(raced[1][2])["id"]

    # The same key with another body, at the other instance: a conflict.
    assert create(second, "key-one", "different")[0] == 409
    assert [row.title for row in stored_tasks(cluster.database_url, user_id)] == ["once", "raced"]


def test_an_etag_from_one_instance_works_on_the_other(cluster):
    user_id = f"etag-{cluster.run}"
    token = make_token(user_id)
    first, second = cluster.instances
    status, headers, body = call(f"{first}/api/{user_id}/tasks", "POST", {"title": "v1"}, token)
    assert status == 201
    task_url = f"/api/{user_id}/tasks/{json.loads(body)['id']}"
    etag = call(f"{first}{task_url}", token=token)[1]["ETag"]
    assert etag == headers["ETag"]

    # Instance b accepts a's ETag and answers with the next one...
    status, headers, body = call(
        f"{second}{task_url}", "PATCH", {"title": "v2"}, token, headers={"If-Match": etag}
    )
    assert status == 200
    newer = headers["ETag"]
    assert newer != etag
    # ...which a knows too, and a refuses the stale one.
    assert call(f"{first}{task_url}", token=token, headers={"If-None-Match": newer})[0] == 304
    stale = call(f"{first}{task_url}", "PATCH", {"title": "v3"}, token, headers={"If-Match": etag})
    assert stale[0] == 412
    assert json.loads(call(f"{second}{task_url}", token=token)[2])["title"] == "v2"


CLIENTS = 8
KILL_AT, LOAD_ENDS = 3.0, 9.0
RETRIES = 3
CUT_SHORT = 0  # the connection closed in the middle of the response


def send(*args, **kwargs):
    """``call``, with a response cut short by the dying instance as status 0."""
    try:
        return call(*args, **kwargs)
    except (http.client.IncompleteRead, ConnectionError):
        return CUT_SHORT, {}, b""


def test_killing_one_instance_mid_load_loses_no_acknowledged_write(tmp_path):
    """Creates carry an Idempotency-Key; a 502 (a create in flight on the killed
    instance, which nginx does not resend) is retried with the same key, as a
    client should. GETs are resent by nginx itself and never fail."""
    # However fast the instances are, no client reaches its limit here.
    with two_instances(tmp_path, RATELIMIT_DEFAULT="100000 per hour") as cluster:
        survivor = cluster.instances[1].removeprefix("http://")
        started = time.monotonic()
        stop = threading.Event()

        def client(number: int) -> dict:
            user_id = f"kill-{cluster.run}-{number}"
            token = make_token(user_id)
            url = f"{cluster.url}/api/{user_id}/tasks"
            records, created, n = [], {}, 0
            while not stop.is_set():
                title = f"{user_id} task {n}"
                key = f"{user_id}-{n}"
                for attempt in range(1 + RETRIES):
                    begin = time.monotonic() - started
                    if n % 3 == 2:
                        status, headers, body = send(url, token=token)
                    else:
                        status, headers, body = send(
                            url, "POST", {"title": title}, token, {"Idempotency-Key": key}
                        )
                    records.append(
                        {
                            "post": n % 3 != 2,
                            "begin": begin,
                            "attempt": attempt,
                            "status": status,
                            "upstream": headers.get("X-Upstream"),
                        }
                    )
                    if status == 201:
                        created[json.loads(body)["id"]] = title
                    if status not in (502, CUT_SHORT):
                        break
                n += 1
            return {"user_id": user_id, "records": records, "created": created}

        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client, number) for number in range(CLIENTS)]
            time.sleep(KILL_AT)
            master = cluster.masters[0]
            workers = worker_pids(master.pid)
            for pid in (master.pid, *workers):
                os.kill(pid, signal.SIGKILL)
            time.sleep(LOAD_ENDS - KILL_AT)
            stop.set()
            results = [future.result() for future in futures]
        master.wait(timeout=10)
        assert workers and not any(Path(f"/proc/{pid}").exists() for pid in workers)

        records = [record for result in results for record in result["records"]]
        statuses = {record["status"] for record in records}
        assert statuses <= {200, 201, 502, CUT_SHORT}, statuses
        failed = [record for record in records if record["status"] in (502, CUT_SHORT)]
        # Only requests in flight on the killed instance, around the kill; each retried.
        # A 502 is a create nginx had sent (it resends GETs); a response the
        # instance was sending when it died reaches the client cut short.
        assert len(failed) <= CLIENTS
        assert all(record["post"] for record in failed if record["status"] == 502)
        assert all(KILL_AT - 2 < record["begin"] < KILL_AT + 1 for record in failed)
        assert all(record["attempt"] < RETRIES for record in failed)
        # The survivor carries on alone.
        late = [record for record in records if record["begin"] > KILL_AT + 1]
        assert len(late) > 50
        # (After fail_timeout nginx tries the dead one again: refused, so on to the survivor.)
        assert {record["upstream"].split(", ")[-1] for record in late} == {survivor}
        assert {record["status"] for record in late} <= {200, 201}

        for result in results:
            stored = {
                row.id: row.title for row in stored_tasks(cluster.database_url, result["user_id"])
            }
            # Every acknowledged create is there...
            assert result["created"].items() <= stored.items()
            # ...and nothing else: a create whose answer was lost, retried with
            # its key, was either made then (and replayed) or made by the retry.
            assert stored == result["created"]
        gateway = sum(record["status"] == 502 for record in failed)
        print(
            f"\n{len(records)} requests; {gateway} answered 502, "
            f"{len(failed) - gateway} cut short (all retried); "
            f"{sum(len(result['created']) for result in results)} tasks created"
        )
