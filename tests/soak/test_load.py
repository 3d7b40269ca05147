"""Load with nothing lost: 50 users x 200 mixed writes in parallel, gunicorn + PostgreSQL.

Each user's thread keeps a model of what its successful responses imply; at
the end the server's list must equal it exactly. No 5xx; no task is ever
visible to another user.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.gunicorn import call, gunicorn

from ..helpers import TEST_DATABASE_URL, fresh_database, make_token

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="the load runs against PostgreSQL"),
]

USERS = 50
OPERATIONS = 200


def run_user(base: str, user: int, seed: int, prefix: str = "load-user") -> dict:
    """One user's 200 operations, one after another; returns what they imply."""
    rng = random.Random(seed)
    user_id = f"{prefix}-{user:02d}"
    token = make_token(user_id)
    url = f"{base}/api/{user_id}/tasks"
    model: dict[int, dict] = {}
    statuses: list[int] = []
    foreign_probes: list[int] = []
    for n in range(OPERATIONS):
        choice = rng.random() if model else 0.0
        if choice < 0.4:
            body = {"title": f"{user_id} task {n}", "description": f"made by operation {n}"}
            status, _, raw = call(url, "POST", body, token)
            if status == 201:
                task = json.loads(raw)
                model[task["id"]] = {
                    key: task[key] for key in ("title", "description", "completed")
                }
        elif choice < 0.65:
            task_id = rng.choice(list(model))
            body = {"title": f"{user_id} renamed {n}"}
            status, _, raw = call(f"{url}/{task_id}", "PATCH", body, token)
            if status == 200:
                model[task_id]["title"] = json.loads(raw)["title"]
        elif choice < 0.85:
            task_id = rng.choice(list(model))
            status, _, raw = call(f"{url}/{task_id}/complete", "PATCH", None, token)
            if status == 200:
                model[task_id]["completed"] = json.loads(raw)["completed"]
        else:
            task_id = rng.choice(list(model))
            status, _, _ = call(f"{url}/{task_id}", "DELETE", None, token)
            if status == 204:
                del model[task_id]
        statuses.append(status)
        if n % 50 == 0:
            # Another user's task id through this user's own URL: must look absent.
            other = f"{base}/api/{user_id}/tasks/{1 + rng.randrange(USERS * OPERATIONS)}"
            probe_status, _, probe_body = call(other, "GET", None, token)
            if probe_status == 200 and json.loads(probe_body)["user_id"] != user_id:
                foreign_probes.append(probe_status)
    return {
        "user_id": user_id,
        "token": token,
        "model": model,
        "statuses": statuses,
        "foreign": foreign_probes,
    }


def listed(base: str, user_id: str, token: str) -> list[dict]:
    tasks, url = [], f"{base}/api/{user_id}/tasks?limit=500"
    while url:
        status, headers, raw = call(url, token=token)
        assert status == 200
        tasks += json.loads(raw)
        link = headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    return tasks


def test_fifty_users_in_parallel_lose_nothing(tmp_path):
    with (
        fresh_database("postgresql", tmp_path) as database_url,
        gunicorn(database_url, WEB_CONCURRENCY="4", RATELIMIT_ENABLED="false") as (base, _),
    ):
        run_all_users_and_check(base)


def run_all_users_and_check(base: str, prefix: str = "load-user") -> None:
    """Every user's operations in parallel; then each user's list must equal its model."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=USERS) as pool:
        results = list(
            pool.map(lambda user: run_user(base, user, 1000 + user, prefix), range(USERS))
        )
    elapsed = time.monotonic() - started

    statuses = [status for result in results for status in result["statuses"]]
    assert len(statuses) == USERS * OPERATIONS
    assert [s for s in statuses if s >= 500] == []
    assert set(statuses) <= {200, 201, 204}, sorted(set(statuses))
    assert [probe for result in results for probe in result["foreign"]] == []
    for result in results:
        tasks = listed(base, result["user_id"], result["token"])
        assert all(task["user_id"] == result["user_id"] for task in tasks)
        actual = {
            task["id"]: {key: task[key] for key in ("title", "description", "completed")}
            for task in tasks
        }
        assert actual == result["model"], result["user_id"]
    print(f"\n{len(statuses)} requests in {elapsed:.1f} s ({len(statuses) / elapsed:.0f}/s)")
