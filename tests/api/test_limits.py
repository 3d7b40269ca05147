"""Rate limits (docs/api.md, "Errors": 429): per user on tasks, per address on /api/auth/*."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from taskapi.auth.limits import count_user_call

from ..helpers import TASKS, assert_problem, bearer

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def limited_app(app, database_url, make_app):
    """Rate limits on: 5 task requests a minute per user, 3 logins per address."""
    return make_app(
        database_url,
        RATELIMIT_ENABLED=True,
        TASKS_RATE_LIMIT="5 per minute",
        AUTH_RATE_LIMIT="3 per minute",
    )


def test_task_routes_are_limited_per_user(limited_app):
    client = limited_app.test_client()
    statuses = [client.get(TASKS, headers=bearer("alice")).status_code for _ in range(5)]
    assert statuses == [200] * 5
    response = client.post(TASKS, json={"title": "x"}, headers=bearer("alice"))
    assert_problem(response, 429)  # one count across all task routes
    assert 0 < int(response.headers["Retry-After"]) <= 60
    # Another user has a count of their own.
    assert client.get("/api/bob/tasks", headers=bearer("bob")).status_code == 200


def test_calls_counted_without_a_request_share_the_users_count(limited_app):
    """Another process (the MCP server, say) counts a user's calls in the same count."""
    with limited_app.app_context():
        assert [count_user_call("alice") for _ in range(5)] == [None] * 5
    client = limited_app.test_client()
    assert client.get(TASKS, headers=bearer("alice")).status_code == 429
    with limited_app.app_context():
        assert 0 < count_user_call("alice") <= 60  # seconds until the window ends


def test_requests_without_a_valid_token_do_not_use_up_a_users_limit(limited_app):
    client = limited_app.test_client()
    for _ in range(10):
        assert client.get(TASKS).status_code == 401
        assert client.get(TASKS, headers=bearer("mallory")).status_code == 403
    assert client.get(TASKS, headers=bearer("alice")).status_code == 200


def test_auth_routes_are_limited_per_address(limited_app):
    client = limited_app.test_client()
    body = {"email": "nobody@example.com", "password": "wrong password"}
    statuses = [client.post("/api/auth/login", json=body).status_code for _ in range(3)]
    assert statuses == [401] * 3
    response = client.post("/api/auth/login", json=body)
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    # Register shares the count: guessing cannot switch endpoints to go on.
    register = {"email": "new@example.com", "name": "New", "password": "long enough"}
    assert client.post("/api/auth/register", json=register).status_code == 429
    # Another address is not affected.
    other = client.post("/api/auth/login", json=body, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 401


def test_limits_can_be_turned_off(client):
    body = {"email": "nobody@example.com", "password": "wrong password"}
    assert {client.post("/api/auth/login", json=body).status_code for _ in range(15)} == {401}


@pytest.fixture
def redis_prefix():
    prefix = f"taskapi-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    connection = redis.Redis.from_url(REDIS_URL)
    for key in connection.scan_iter(f"*{prefix}*"):
        connection.delete(key)


def test_redis_storage_shares_one_count_between_instances(
    app, database_url, redis_prefix, make_app
):
    """Two app instances (two gunicorn workers, or two machines) share one count."""
    settings = {
        "RATELIMIT_ENABLED": True,
        "TASKS_RATE_LIMIT": "6 per minute",
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": redis_prefix,
    }
    first = make_app(database_url, **settings).test_client()
    second = make_app(database_url, **settings).test_client()
    statuses = []
    for _ in range(3):
        statuses.append(first.get(TASKS, headers=bearer()).status_code)
        statuses.append(second.get(TASKS, headers=bearer()).status_code)
    assert statuses == [200] * 6
    assert first.get(TASKS, headers=bearer()).status_code == 429
    assert second.get(TASKS, headers=bearer()).status_code == 429
    assert any(redis.Redis.from_url(REDIS_URL).scan_iter(f"*{redis_prefix}*"))


def test_memory_storage_counts_per_instance(app, database_url, make_app):
    settings = {"RATELIMIT_ENABLED": True, "TASKS_RATE_LIMIT": "2 per minute"}
    first = make_app(database_url, **settings).test_client()
    second = make_app(database_url, **settings).test_client()
    for _ in range(2):
        assert first.get(TASKS, headers=bearer()).status_code == 200
    assert first.get(TASKS, headers=bearer()).status_code == 429
    assert second.get(TASKS, headers=bearer()).status_code == 200


def test_unreachable_redis_does_not_fail_requests(limited_client):
    client = limited_client(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    assert client.get(TASKS, headers=bearer()).status_code == 200


def test_redis_429_says_when_to_retry_and_counters_expire(limited_client, redis_prefix):
    client = limited_client(
        TASKS_RATE_LIMIT="2 per minute",
        RATELIMIT_STORAGE_URI=REDIS_URL,
        RATELIMIT_KEY_PREFIX=redis_prefix,
    )
    assert [client.get(TASKS, headers=bearer()).status_code for _ in range(2)] == [
        200,
        200,
    ]
    response = client.get(TASKS, headers=bearer())
    assert_problem(response, 429)
    assert 0 < int(response.headers["Retry-After"]) <= 60
    connection = redis.Redis.from_url(REDIS_URL)
    keys = list(connection.scan_iter(f"*{redis_prefix}*"))
    assert len(keys) == 1 and b"alice" in keys[0]
    assert 0 < connection.ttl(keys[0]) <= 60  # Redis forgets the count with its window


def test_every_limit_of_a_list_is_enforced(limited_client):
    client = limited_client(TASKS_RATE_LIMIT="100 per hour;3 per minute")
    statuses = [client.get(TASKS, headers=bearer()).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_limits_hold_in_memory_while_redis_is_unreachable(limited_client):
    client = limited_client(
        TASKS_RATE_LIMIT="2 per minute", RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0"
    )
    statuses = [client.get(TASKS, headers=bearer()).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_auth_limit_counts_the_forwarded_address_behind_a_trusted_proxy(limited_client):
    client = limited_client(AUTH_RATE_LIMIT="1 per minute", TRUSTED_PROXIES=1)
    body = {"email": "nobody@example.com", "password": "wrong password"}

    def login(address):
        headers = {"X-Forwarded-For": address}
        return client.post("/api/auth/login", json=body, headers=headers).status_code

    assert [login("203.0.113.1"), login("203.0.113.1"), login("203.0.113.2")] == [401, 429, 401]


def test_a_new_window_starts_a_new_count(limited_client):
    client = limited_client(TASKS_RATE_LIMIT="2 per second")
    for _ in range(2):
        statuses = [client.get(TASKS, headers=bearer()).status_code for _ in range(3)]
        if statuses == [200, 200, 429]:
            break  # else a window ended between two of the requests: once more
    assert statuses == [200, 200, 429]
    assert client.get(TASKS, headers=bearer()).headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert client.get(TASKS, headers=bearer()).status_code == 200
