"""The task endpoints' happy paths and their status codes (docs/api.md, Tasks)."""

from __future__ import annotations

from datetime import datetime

from ..helpers import TASKS, assert_problem, bearer


def parse_time(value: str) -> datetime:
    assert value.endswith("Z")
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset().total_seconds() == 0
    return parsed


def test_crud_round_trip(client):
    headers = bearer("alice")

    created = client.post(
        TASKS, json={"title": "  Buy milk  ", "description": "2 l"}, headers=headers
    )
    assert created.status_code == 201
    task = created.json
    assert created.headers["Location"] == f"{TASKS}/{task['id']}"
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 l"
    assert task["completed"] is False
    assert task["user_id"] == "alice"
    assert parse_time(task["created_at"]) == parse_time(task["updated_at"])

    fetched = client.get(created.headers["Location"], headers=headers)
    assert fetched.status_code == 200
    assert fetched.json == task

    listed = client.get(TASKS, headers=headers)
    assert listed.status_code == 200
    assert listed.json == [task]

    updated = client.put(
        created.headers["Location"], json={"title": "Buy oat milk"}, headers=headers
    )
    assert updated.status_code == 200
    assert updated.json["title"] == "Buy oat milk"
    assert updated.json["description"] == "2 l"  # not sent, so kept
    assert parse_time(updated.json["updated_at"]) > parse_time(task["updated_at"])
    assert updated.json["created_at"] == task["created_at"]

    completed = client.patch(f"{created.headers['Location']}/complete", headers=headers)
    assert completed.status_code == 200
    assert completed.json["completed"] is True

    deleted = client.delete(created.headers["Location"], headers=headers)
    assert deleted.status_code == 204
    assert deleted.data == b""
    assert "Content-Type" not in deleted.headers
    assert client.get(created.headers["Location"], headers=headers).status_code == 404
    assert client.get(TASKS, headers=headers).json == []


def test_create_defaults(client):
    task = client.post(TASKS, json={"title": "x"}, headers=bearer()).json
    assert task["description"] is None
    assert task["completed"] is False


def test_create_with_every_field(client):
    body = {"title": "x", "description": None, "completed": True}
    task = client.post(TASKS, json=body, headers=bearer()).json
    assert (task["description"], task["completed"]) == (None, True)


def test_list_is_newest_first(client, create_task):
    ids = [create_task(title=f"task {n}")["id"] for n in range(5)]
    listed = client.get(TASKS, headers=bearer()).json
    assert [task["id"] for task in listed] == ids[::-1]


def test_patch_updates_only_sent_fields(client, create_task):
    task = create_task(title="Keep", description="keep me too")
    url = f"{TASKS}/{task['id']}"
    patched = client.patch(url, json={"completed": True}, headers=bearer())
    assert patched.status_code == 200
    assert patched.json["title"] == "Keep"
    assert patched.json["description"] == "keep me too"
    assert patched.json["completed"] is True
    cleared = client.patch(url, json={"description": None}, headers=bearer())
    assert cleared.json["description"] is None
    assert client.get(url, headers=bearer()).json == cleared.json


def test_put_with_all_fields(client, create_task):
    task = create_task()
    body = {"title": "New", "description": "New text", "completed": True}
    updated = client.put(f"{TASKS}/{task['id']}", json=body, headers=bearer()).json
    assert {key: updated[key] for key in body} == body


def test_complete_toggles_back_and_forth(client, create_task):
    url = f"{TASKS}/{create_task()['id']}/complete"
    assert client.patch(url, headers=bearer()).json["completed"] is True
    assert client.patch(url, headers=bearer()).json["completed"] is False


def test_complete_sets_value_from_body(client, create_task):
    url = f"{TASKS}/{create_task()['id']}/complete"
    for _ in range(2):  # setting is idempotent, unlike toggling
        response = client.patch(url, json={"completed": True}, headers=bearer())
        assert response.status_code == 200
        assert response.json["completed"] is True
    assert client.patch(url, json={"completed": False}, headers=bearer()).json["completed"] is False


def test_complete_rejects_bad_body(client, create_task):
    url = f"{TASKS}/{create_task()['id']}/complete"
    for body in ({"completed": "yes"}, {}, {"completed": True, "title": "x"}):
        response = client.patch(url, json=body, headers=bearer())
        assert response.status_code == 400, body
    assert client.get(url.removesuffix("/complete"), headers=bearer()).json["completed"] is False


def test_second_delete_is_404(client, create_task):
    url = f"{TASKS}/{create_task()['id']}"
    assert client.delete(url, headers=bearer()).status_code == 204
    response = client.delete(url, headers=bearer())
    assert_problem(response, 404)


def test_missing_task_is_404_for_every_method(client):
    url = "/api/alice/tasks/424242"
    for method, body in [("get", None), ("put", {"title": "x"}), ("patch", {"title": "x"})]:
        response = getattr(client, method)(url, json=body, headers=bearer())
        assert response.status_code == 404, method
        assert response.json["status"] == 404
    assert client.patch(f"{url}/complete", headers=bearer()).status_code == 404
    assert client.delete(url, headers=bearer()).status_code == 404


def test_task_ids_that_cannot_exist_are_404(client):
    for task_id in ["0", "-1", "2147483648", "9" * 40, "abc", "1.5", "1e3", "%00"]:
        response = client.get(f"{TASKS}/{task_id}", headers=bearer())
        assert_problem(response, 404)
        response = client.delete(f"{TASKS}/{task_id}", headers=bearer())
        assert response.status_code == 404, task_id


def test_largest_task_id_is_a_clean_404(client):
    response = client.get("/api/alice/tasks/2147483647", headers=bearer())
    assert response.status_code == 404
    assert response.json["detail"] == "Task not found."
