"""Concurrent writes through the HTTP layer: nothing lost, nothing doubled."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..helpers import TASKS, bearer

THREADS = 16


def run_parallel(app, count: int, request) -> list:
    """Call ``request(client, n)`` for n in range(count) from THREADS threads."""

    def call(n):
        return request(app.test_client(), n)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(call, range(count)))


def test_parallel_creates_for_one_new_user_all_succeed(app, client):
    # The user is unknown before: the first requests also race to create the user row.
    headers = bearer("racer", email="racer@example.com")

    def create(test_client, n):
        return test_client.post("/api/racer/tasks", json={"title": f"task {n}"}, headers=headers)

    responses = run_parallel(app, 96, create)
    assert [response.status_code for response in responses] == [201] * 96
    created_ids = {response.json["id"] for response in responses}
    assert len(created_ids) == 96
    listed = client.get("/api/racer/tasks", headers=headers).json
    assert {task["id"] for task in listed} == created_ids
    assert {task["title"] for task in listed} == {f"task {n}" for n in range(96)}


def test_parallel_toggles_are_atomic(app, client, create_task):
    task = create_task()
    url = f"{TASKS}/{task['id']}/complete"

    def toggle(test_client, _n):
        return test_client.patch(url, headers=bearer()).status_code

    assert run_parallel(app, 41, toggle) == [200] * 41
    # An odd number of toggles from false: every toggle counted exactly once.
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["completed"] is True


def test_parallel_patches_of_different_fields_keep_both(app, client, create_task):
    tasks = [create_task(title="old", description="old") for _ in range(10)]

    def patch(test_client, n):
        task = tasks[n // 2]
        body = {"title": "new title"} if n % 2 else {"description": "new description"}
        return test_client.patch(f"{TASKS}/{task['id']}", json=body, headers=bearer()).status_code

    assert run_parallel(app, 20, patch) == [200] * 20
    for task in client.get(TASKS, headers=bearer()).json:
        assert (task["title"], task["description"]) == ("new title", "new description")
