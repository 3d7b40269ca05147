"""Real clients and a real authorization server (``make soak``: npm packages, some minutes
on a first run): the official TypeScript MCP client, and Better Auth with ``@better-auth/mcp``
issuing the access token headlessly, end to end."""

from __future__ import annotations

import json
import subprocess

import pytest

from harness.gunicorn import call, free_port
from harness.mcp_server import mcp_server
from harness.node import node_packages

from ..helpers import bearer
from .conftest import Agent

pytestmark = pytest.mark.soak


@pytest.fixture(scope="module")
def node_folder():
    return node_packages()


def run_node(folder, *arguments: str) -> dict:
    result = subprocess.run(
        ["node", *arguments], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_typescript_client_lists_and_calls_the_tools(node_folder, mcp, tokens, client):
    user_id = "typescript-user"
    seen = run_node(node_folder, "client.mjs", mcp.url, tokens.token(user_id))
    assert seen["server"]["name"] == "taskapi"
    read_only = {tool["name"]: tool["readOnly"] for tool in seen["tools"]}
    assert read_only == {
        "list_tasks": True,
        "get_task": True,
        "add_task": False,
        "update_task": False,
        "complete_task": False,
        "delete_task": False,
        "restore_task": False,
        "list_trash": True,
        "list_tags": True,
        "get_changes": True,
    }
    task = seen["added"]["task"]
    rest = client.get(f"/api/{user_id}/tasks/{task['id']}", headers=bearer(user_id)).json
    completed = seen["completed"]["task"]
    assert rest == {name: value for name, value in completed.items() if name != "version"}
    assert rest["completed"] is True
    assert seen["listed"]["total"] == 1
    assert seen["tags"] == {"tags": [{"name": "ts", "count": 1}]}
    assert seen["changes"]["changes"][0]["id"] == task["id"]
    assert seen["refused"] == {
        "isError": True,
        "text": 'The arguments are invalid: {"title": ["Length must be between 1 and 200."]}',
    }
    assert seen["missing"] == {"isError": True, "text": "Task not found."}


def test_better_auth_issues_the_access_token_end_to_end(
    node_folder, migrated_app, database_url, client, portal, tmp_path
):
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    better_auth_port = free_port()
    better_auth = subprocess.Popen(
        [
            *("node", "better_auth.mjs", str(better_auth_port), resource),
            str(tmp_path / "better-auth.sqlite3"),
        ],
        cwd=node_folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = better_auth.stdout.readline()
        assert line, better_auth.stderr.read()
        issued = json.loads(line)
        better_auth_url = f"http://127.0.0.1:{better_auth_port}"
        assert issued["issuer"] == f"{better_auth_url}/api/auth"
        with mcp_server(database_url, better_auth_url, port) as server:
            status, _, metadata = call(server.metadata_url)
            assert json.loads(metadata)["authorization_servers"] == [issued["issuer"]]

            agent = Agent(server.url, issued["access_token"], portal)
            try:
                task = agent.ok("add_task", title="Issued by Better Auth")["task"]
                assert agent.ok("list_tasks")["total"] == 1
            finally:
                agent.close()
            user_id = issued["user_id"]
            assert task["user_id"] == user_id
            rest = client.get(f"/api/{user_id}/tasks", headers=bearer(user_id)).json
            assert [t["title"] for t in rest] == ["Issued by Better Auth"]

            # The jwt() plugin's session token (the REST API's kind) is no MCP token.
            initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            status, headers, _ = call(
                server.url,
                "POST",
                initialize,
                token=issued["session_jwt"],
                headers={"Accept": "application/json, text/event-stream"},
            )
            assert status == 401
            assert "resource_metadata=" in headers["WWW-Authenticate"]
    finally:
        better_auth.stdin.close()
        try:
            better_auth.wait(timeout=10)
        except subprocess.TimeoutExpired:
            better_auth.kill()
            better_auth.wait()
        better_auth.stdout.close()
        better_auth.stderr.close()
