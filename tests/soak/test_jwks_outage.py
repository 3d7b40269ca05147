"""A hanging JWKS endpoint under gunicorn slows nobody. Run by `make soak`.

Eight connections keep sending tokens with unknown ``kid``s (no valid
signature needed) while the JWKS endpoint hangs. Each worker tries one fetch,
waits out JWT_JWKS_TIMEOUT, and then tries none for the failure cooldown:
those tokens get 503 with Retry-After at once, shared-secret (HS256) tokens
and tokens whose kid is cached keep being answered promptly.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.gunicorn import call, gunicorn
from harness.jwks_server import JWKSServer, SigningKey

from ..helpers import fresh_database, make_token

pytestmark = pytest.mark.soak

WORKERS = 2
JWKS_TIMEOUT = 2
ATTACKERS = 8
DURATION = 12


def better_auth_token(jwks: JWKSServer, key: SigningKey, user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "iss": jwks.url, "aud": jwks.url, "iat": now, "exp": now + 900}
    return key.sign(claims)


def test_a_hanging_jwks_slows_nobody(tmp_path):
    jwks = JWKSServer()
    known = SigningKey("published")
    jwks.keys.append(known)
    environment = {
        "BETTER_AUTH_URL": jwks.url,
        "JWT_JWKS_TIMEOUT": str(JWKS_TIMEOUT),
        "WEB_CONCURRENCY": str(WORKERS),
        "RATELIMIT_ENABLED": "false",
    }
    try:
        with (
            fresh_database("sqlite", tmp_path) as database_url,
            gunicorn(database_url, **environment) as (base, _process),
        ):
            tasks = f"{base}/api/reader/tasks"
            known_tasks = f"{base}/api/ba-user/tasks"
            # Each worker fetches the keys once while the JWKS is healthy: a slow
            # fetch keeps one worker busy, so concurrent calls reach the others.
            jwks.delay = 0.3
            with ThreadPoolExecutor(WORKERS) as warm:
                for _ in range(20):
                    if jwks.fetches >= WORKERS:
                        break
                    token = better_auth_token(jwks, known, "ba-user")
                    calls = [warm.submit(call, known_tasks, token=token) for _ in range(WORKERS)]
                    assert [done.result()[0] for done in calls] == [200] * WORKERS
            assert jwks.fetches == WORKERS
            jwks.delay = 3600  # from now on the endpoint accepts and never answers

            stop = time.monotonic() + DURATION
            attacks: list[tuple[int, str | None]] = []
            lock = threading.Lock()

            def attacker(n: int):
                count = 0
                while time.monotonic() < stop:
                    stranger = SigningKey(f"stranger-{n}-{count}")
                    status, headers, _ = call(
                        tasks, token=better_auth_token(jwks, stranger, "reader")
                    )
                    with lock:
                        attacks.append((status, headers.get("Retry-After")))
                    count += 1

            with ThreadPoolExecutor(ATTACKERS) as pool:
                for n in range(ATTACKERS):
                    pool.submit(attacker, n)
                time.sleep(0.2)  # the attack is under way
                latencies, statuses = [], []
                while time.monotonic() < stop:
                    for url, token in (
                        (tasks, make_token("reader")),
                        (known_tasks, better_auth_token(jwks, known, "ba-user")),
                    ):
                        started = time.monotonic()
                        status, _, body = call(url, token=token)
                        latencies.append(time.monotonic() - started)
                        statuses.append(status)
                        assert isinstance(json.loads(body), list | dict)
                    time.sleep(0.05)
    finally:
        jwks.stop()

    # Every HS256 and known-kid request was answered, and none waited long: at
    # worst behind one worker's single fetch (the timeout), never several in a row.
    assert set(statuses) == {200}, statuses
    assert max(latencies) < JWKS_TIMEOUT + 1.5, sorted(latencies)[-5:]
    # One fetch per worker for the whole outage (the cooldown is 30 s), not one per token.
    assert jwks.fetches <= 2 * WORKERS
    # The strangers got 503 + Retry-After (401 within a second of the last good
    # fetch, when no refetch is due), never a 500 or a hang.
    assert len(attacks) > ATTACKERS * 10
    assert {status for status, _ in attacks} <= {401, 503}
    unavailable = [retry_after for status, retry_after in attacks if status == 503]
    assert len(unavailable) > len(attacks) * 0.9
    assert all(retry_after and 1 <= int(retry_after) <= 30 for retry_after in unavailable)
