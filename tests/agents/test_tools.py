"""The ten tools through the official Python SDK client, checked through the REST API."""

from __future__ import annotations

import json

import pytest

from ..helpers import bearer


def rest_task(client, user_id: str, task_id: int):
    return client.get(f"/api/{user_id}/tasks/{task_id}", headers=bearer(user_id))


def test_the_server_lists_ten_tools_with_schemas_and_read_only_hints(agent):
    tools = {tool.name: tool for tool in agent.list_tools()}
    reading = {"list_tasks", "get_task", "list_trash", "list_tags", "get_changes"}
    writing = {"add_task", "update_task", "complete_task", "delete_task", "restore_task"}
    assert set(tools) == reading | writing
    for name, tool in tools.items():
        assert len(tool.description) > 40, name
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema["type"] == "object"
        assert tool.annotations.read_only_hint is (name in reading), name
        assert "user_id" not in tool.input_schema["properties"]  # the user is the token's
    # The REST schemas' limits, as the OpenAPI document states them.
    add = tools["add_task"].input_schema
    assert add["required"] == ["title"]
    assert add["properties"]["title"]["maxLength"] == 200
    assert add["properties"]["tags"]["maxItems"] == 20
    assert add["properties"]["priority"]["enum"] == ["low", "normal", "high"]
    assert tools["list_tasks"].input_schema["properties"]["limit"]["maximum"] == 100
    assert tools["update_task"].input_schema["required"] == ["task_id"]


def test_add_get_update_and_list_are_what_rest_shows(agent, client, user_id):
    added = agent.ok(
        "add_task",
        title="  Buy milk ",
        description="2 litres",
        due_at="2026-11-30T17:00:00+01:00",
        priority="high",
        tags=["home", "Home", "errands"],
        remind_at="2026-11-30T15:30:00Z",
    )["task"]
    response = rest_task(client, user_id, added["id"])
    assert response.status_code == 200
    assert added == response.json | {"version": 1}
    assert response.headers["ETag"] == f'"{added["id"]}.1"'
    assert added["title"] == "Buy milk"
    assert added["tags"] == ["home", "errands"]
    assert added["due_at"] == "2026-11-30T16:00:00Z"

    assert agent.ok("get_task", task_id=added["id"])["task"] == added

    updated = agent.ok("update_task", task_id=added["id"], title="Buy oat milk", due_at=None)
    assert updated["next_occurrence_id"] is None
    assert updated["task"]["version"] == 2
    assert rest_task(client, user_id, added["id"]).json == {
        key: value for key, value in updated["task"].items() if key != "version"
    }
    assert rest_task(client, user_id, added["id"]).json["description"] == "2 litres"

    page = agent.ok("list_tasks", q="oat")
    assert page["total"] == 1
    assert [task["id"] for task in page["tasks"]] == [added["id"]]
    assert agent.ok("list_tags")["tags"] == [
        {"name": "errands", "count": 1},
        {"name": "home", "count": 1},
    ]


def test_list_tasks_pages_filters_and_sorts_like_rest(agent, client, user_id):
    for n in range(5):
        agent.ok("add_task", title=f"Task {n}", tags=["work"] if n % 2 else [])
    first = agent.ok("list_tasks", limit=2, sort="title", tag="WORK")
    assert first["total"] == 2
    assert [task["title"] for task in first["tasks"]] == ["Task 1", "Task 3"]
    assert first["next_cursor"] is None

    titles, cursor = [], None
    while True:
        page = agent.ok("list_tasks", limit=2, **({"cursor": cursor} if cursor else {}))
        titles += [task["title"] for task in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    rest = client.get(f"/api/{user_id}/tasks", headers=bearer(user_id)).json
    assert titles == [task["title"] for task in rest]
    assert len(titles) == 5


def test_complete_task_creates_the_next_occurrence_once(agent, client, user_id):
    task = agent.ok(
        "add_task",
        title="Water the plants",
        due_at="2026-11-30T08:00:00Z",
        recurrence="FREQ=WEEKLY",
        time_zone="Europe/Berlin",
    )["task"]
    done = agent.ok("complete_task", task_id=task["id"])
    assert done["task"]["completed"] is True
    next_id = done["next_occurrence_id"]
    assert next_id is not None
    following = rest_task(client, user_id, next_id).json
    assert following["due_at"] == "2026-12-07T08:00:00Z"
    assert following["series_id"] == task["id"]
    assert following["completed"] is False
    # Reopening and completing again spawns nothing more.
    assert (
        agent.ok("complete_task", task_id=task["id"], completed=False)["task"]["completed"] is False
    )
    assert agent.ok("complete_task", task_id=task["id"])["next_occurrence_id"] is None
    assert agent.ok("list_tasks")["total"] == 2


def test_delete_list_trash_and_restore(agent, client, user_id):
    task = agent.ok("add_task", title="Old idea", tags=["someday"])["task"]
    assert agent.ok("delete_task", task_id=task["id"]) == {"task_id": task["id"], "in_trash": True}
    assert rest_task(client, user_id, task["id"]).status_code == 404
    assert agent.ok("list_tags")["tags"] == []
    trash = agent.ok("list_trash")
    assert [trashed["id"] for trashed in trash["tasks"]] == [task["id"]]
    assert trash["tasks"][0]["deleted_at"].endswith("Z")
    rest_trash = client.get(f"/api/{user_id}/trash", headers=bearer(user_id)).json
    assert [trashed["id"] for trashed in rest_trash] == [task["id"]]

    restored = agent.ok("restore_task", task_id=task["id"])["task"]
    assert restored["version"] == task["version"] + 2
    assert rest_task(client, user_id, task["id"]).json["tags"] == ["someday"]
    assert "No such task in the trash" in agent.error("restore_task", task_id=task["id"])
    assert "not found" in agent.error("delete_task", task_id=task["id"] + 1000)


def test_expected_version_refuses_a_stale_write_as_rest_does_412(agent, client, user_id):
    task = agent.ok("add_task", title="Draft")["task"]
    client.patch(
        f"/api/{user_id}/tasks/{task['id']}", json={"title": "Edited"}, headers=bearer(user_id)
    )
    stale = agent.error("update_task", task_id=task["id"], title="Mine", expected_version=1)
    assert "changed since expected_version" in stale
    assert "changed since" in agent.error("delete_task", task_id=task["id"], expected_version=1)
    assert rest_task(client, user_id, task["id"]).json["title"] == "Edited"
    fresh = agent.ok("update_task", task_id=task["id"], title="Mine", expected_version=2)
    assert fresh["task"]["title"] == "Mine"
    # Versions no task can have never match, and never fail otherwise.
    for version in (-1, 2**31, 10**30):
        assert "changed since" in agent.error(
            "update_task", task_id=task["id"], title="x", expected_version=version
        )


def test_an_idempotency_key_adds_once(agent, client, user_id):
    first = agent.ok("add_task", title="Call mum", idempotency_key="k-1")["task"]
    again = agent.ok("add_task", title="Call mum", idempotency_key="k-1")["task"]
    assert again == first
    assert "different request body" in agent.error(
        "add_task", title="Call dad", idempotency_key="k-1"
    )
    assert len(client.get(f"/api/{user_id}/tasks", headers=bearer(user_id)).json) == 1


def test_a_write_shows_in_the_rest_change_feed_and_in_get_changes(agent, client, user_id):
    start = client.get(f"/api/{user_id}/changes", headers=bearer(user_id)).json["next"]
    task = agent.ok("add_task", title="Synced")["task"]
    agent.ok("delete_task", task_id=task["id"])
    feed = client.get(f"/api/{user_id}/changes?since={start}", headers=bearer(user_id)).json
    assert feed["changes"] == [
        {"id": task["id"], "deleted": True, "deleted_at": feed["changes"][0]["deleted_at"]}
    ]
    changes = agent.ok("get_changes", since=start)
    assert changes["changes"] == feed["changes"]
    assert changes["more"] is False
    everything = agent.ok("get_changes")
    assert everything["changes"] == []  # a first sync lists live tasks only
    assert "since" in agent.error("get_changes", since="not-a-token")


def rest_errors(client, user_id: str, body: dict) -> dict:
    response = client.post(f"/api/{user_id}/tasks", json=body, headers=bearer(user_id))
    assert response.status_code == 400
    return response.json["errors"]


def tool_errors(text: str) -> dict:
    prefix = "The arguments are invalid: "
    assert text.startswith(prefix), text
    return json.loads(text.removeprefix(prefix))


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "nul\x00byte"},
        {"title": "lone \ud800 surrogate"},
        {"title": 5},
        {"title": "x", "description": "d" * 1001},
        {"title": "x", "due_at": "tomorrow"},
        {"title": "x", "due_at": "2026-11-30T17:00:00"},
        {"title": "x", "due_at": "9999-12-31T23:59:59-23:59"},
        {"title": "x", "priority": "urgent"},
        {"title": "x", "tags": ["a,b", "", "x" * 41]},
        {"title": "x", "tags": [f"t{n}" for n in range(21)]},
        {"title": "x", "recurrence": "FREQ=HOURLY"},
        {"title": "x", "recurrence": "FREQ=DAILY"},
        {"title": "x", "recurrence": "FREQ=DAILY;COUNT=0", "due_at": "2026-11-30T17:00:00Z"},
        {"title": "x", "time_zone": "Mars/Olympus"},
        {"title": "x", "completed": "yes"},
        {"title": "x", "id": 7, "user_id": "someone-else", "colour": "red"},
    ],
)
def test_hostile_arguments_are_tool_errors_with_the_rest_messages(agent, client, user_id, body):
    expected = rest_errors(client, user_id, body)
    if "\ud800" in str(body.get("title")):  # no SDK client sends it: JSON-RPC by hand
        request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
        request["params"] = {"name": "add_task", "arguments": body}
        result = agent.raw_call(json.dumps(request).encode())
        assert result["isError"] is True
        assert tool_errors(result["content"][0]["text"]) == expected
        return
    assert tool_errors(agent.error("add_task", **body)) == expected


def test_hostile_ids_and_tool_arguments_are_tool_errors(agent, client, user_id):
    hostile_ids = (0, -1, 2**31, 10**40, -(10**40))
    calls = [
        *[("get_task", {"task_id": task_id}) for task_id in hostile_ids],
        *[("complete_task", {"task_id": task_id}) for task_id in hostile_ids],
        ("get_task", {"task_id": "7"}),
        ("get_task", {}),
        ("update_task", {"task_id": 1}),
        ("list_tasks", {"limit": 101}),
        ("list_tasks", {"limit": "5"}),
        ("list_tasks", {"status": "done"}),
        ("list_tasks", {"due_before": "2026-13-01T00:00:00Z"}),
        ("list_tasks", {"cursor": "x" * 100}),
        ("add_task", {"title": "x", "idempotency_key": ""}),
        ("list_tags", {"unknown": 1}),
        ("list_tasks", {}),
    ]
    results = agent.calls(*calls)
    *errors, listed = results
    assert all(result.is_error for result in errors)
    texts = [result.content[0].text for result in errors]
    assert texts[:10] == ["Task not found."] * 10
    assert tool_errors(texts[10]) == {"task_id": ["Not a valid integer."]}
    assert tool_errors(texts[11]) == {"task_id": ["Missing data for required field."]}
    assert tool_errors(texts[12]) == rest_update_errors(client, user_id)
    for text, field in zip(
        texts[13:],
        ["limit", "limit", "status", "due_before", "cursor", "idempotency_key", "unknown"],
        strict=True,
    ):
        assert field in tool_errors(text)
    assert listed.structured_content["total"] == 0  # nothing was written


def rest_update_errors(client, user_id: str) -> dict:
    task = client.post(f"/api/{user_id}/tasks", json={"title": "x"}, headers=bearer(user_id)).json
    response = client.patch(f"/api/{user_id}/tasks/{task['id']}", json={}, headers=bearer(user_id))
    client.delete(f"/api/{user_id}/tasks/{task['id']}", headers=bearer(user_id))
    return response.json["errors"]
