"""Who may call the MCP server: metadata, 401s, refused tokens, scopes, isolation, limits,
concurrent agents, and what the web workers never import."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import anyio
import jwt as pyjwt

from harness.gunicorn import ROOT, call
from harness.jwks_server import SigningKey
from harness.mcp_server import AgentTokens

from ..helpers import bearer, make_token
from .conftest import RATE_LIMIT, REDIS_URL, Agent

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}
JSONRPC_HEADERS = {"Accept": "application/json, text/event-stream"}


def post(url: str, token: str | None = None, **headers):
    return call(url, "POST", INITIALIZE, token=token, headers=JSONRPC_HEADERS | headers)


def test_metadata_names_the_resource_the_issuer_and_both_scopes(mcp, jwks):
    status, _, body = call(mcp.metadata_url)
    assert status == 200
    assert json.loads(body) == {
        "resource": mcp.url,
        "authorization_servers": [f"{jwks.url}/api/auth"],
        "scopes_supported": ["tasks:read", "tasks:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "taskapi",
    }


def test_no_token_is_401_pointing_at_the_metadata(mcp):
    for token in (None, "not-a-jwt"):
        status, headers, _ = post(mcp.url, token)
        assert status == 401
        challenge = headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'resource_metadata="{mcp.metadata_url}"' in challenge


def test_a_valid_token_passes(mcp, tokens):
    status, _, body = post(mcp.url, tokens.token("alice"))
    assert status == 200, body
    assert json.loads(body)["result"]["serverInfo"]["name"] == "taskapi"


def refused_tokens(tokens: AgentTokens, jwks) -> dict[str, str]:
    stranger = SigningKey("unpublished")
    rest_style = {"iss": jwks.url, "aud": jwks.url}  # the jwt() plugin's session tokens
    return {
        "HS256 with the shared secret": make_token("alice"),
        "HS256 at+jwt": pyjwt.encode(
            tokens.claims("alice"), "x" * 40, algorithm="HS256", headers={"typ": "at+jwt"}
        ),
        "REST API token (session JWT)": tokens.key.sign(tokens.claims("alice") | rest_style),
        "REST audience with typ at+jwt": tokens.key.sign(
            tokens.claims("alice") | rest_style, typ="at+jwt"
        ),
        "no typ": tokens.key.sign(tokens.claims("alice")),
        "another audience": tokens.token("alice", aud="https://other.example/mcp"),
        "another issuer": tokens.token("alice", iss="https://evil.example/api/auth"),
        "the bare origin as issuer": tokens.token("alice", iss=jwks.url),
        "expired": tokens.token("alice", exp=int(time.time()) - 5),
        "not yet valid": tokens.token("alice", nbf=int(time.time()) + 600),
        "exp as a string": tokens.token("alice", exp=str(int(time.time()) + 600)),
        "no exp": tokens.token("alice", exp=None),
        "no sub": tokens.token(None),
        "sub is the client": tokens.token("agent-client"),
        "sub is client_id": tokens.token("svc", azp=None, client_id="svc"),
        "unusable sub": tokens.token("../alice"),
        "unknown key": stranger.sign(tokens.claims("alice"), typ="at+jwt"),
        "alg none": pyjwt.encode(
            tokens.claims("alice"), None, algorithm="none", headers={"typ": "at+jwt"}
        ),
    }


def test_every_refused_kind_of_token_is_401(mcp, tokens, jwks):
    for kind, token in refused_tokens(tokens, jwks).items():
        status, headers, _ = post(mcp.url, token)
        assert status == 401, kind
        assert "resource_metadata=" in headers["WWW-Authenticate"], kind


def test_a_rotated_key_works_and_an_unreachable_jwks_is_503(mcp, tokens, jwks):
    rotated = SigningKey(f"rotated-{uuid.uuid4().hex[:8]}")  # a kid of this run alone
    jwks.keys.append(rotated)
    time.sleep(0.3)  # past the refetch cooldown of the last unknown kid
    status, _, _ = post(mcp.url, AgentTokens(jwks, mcp.url, rotated).token("alice"))
    assert status == 200
    jwks.html = True  # answers, but not a JWKS
    try:
        time.sleep(0.3)
        newer = SigningKey("newer")
        status, headers, _ = post(mcp.url, newer.sign(tokens.claims("alice"), typ="at+jwt"))
        assert status == 503
        assert int(headers["Retry-After"]) >= 1
        assert post(mcp.url, tokens.token("alice"))[0] == 200  # a cached kid still works
    finally:
        jwks.html = False
        time.sleep(0.6)  # the failure pause (0.5 s here) is over for the next test


def test_only_the_endpoints_host_is_served(mcp, tokens):
    status, _, _ = post(mcp.url, tokens.token("alice"), Host="evil.example")
    assert status == 421
    status, _, _ = post(mcp.url, tokens.token("alice"), Origin="https://evil.example")
    assert status == 403


def test_a_read_only_token_reads_and_changes_nothing(make_agent, client, user_id):
    writer = make_agent(user_id)
    task = writer.ok("add_task", title="Mine")["task"]
    reader = make_agent(user_id, scope="tasks:read")
    assert reader.ok("get_task", task_id=task["id"])["task"]["title"] == "Mine"
    for tool, arguments in [
        ("add_task", {"title": "More"}),
        ("update_task", {"task_id": task["id"], "title": "Changed"}),
        ("complete_task", {"task_id": task["id"]}),
        ("delete_task", {"task_id": task["id"]}),
        ("restore_task", {"task_id": task["id"]}),
    ]:
        assert "needs the tasks:write scope" in reader.error(tool, **arguments)
    rest = client.get(f"/api/{user_id}/tasks", headers=bearer(user_id)).json
    assert [(t["title"], t["completed"]) for t in rest] == [("Mine", False)]
    nothing = make_agent(user_id, scope="openid profile")
    assert "needs the tasks:read scope" in nothing.error("list_tasks")


def test_no_tool_reaches_another_users_tasks(make_agent, client):
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    mine = make_agent(alice).ok("add_task", title="Alice's", tags=["secret"])["task"]
    trashed = make_agent(alice).ok("add_task", title="Alice's old")["task"]
    make_agent(alice).ok("delete_task", task_id=trashed["id"])
    intruder = make_agent(bob)
    for tool, arguments in [
        ("get_task", {"task_id": mine["id"]}),
        ("update_task", {"task_id": mine["id"], "title": "Bob's now"}),
        ("update_task", {"task_id": mine["id"], "title": "x", "expected_version": 1}),
        ("complete_task", {"task_id": mine["id"]}),
        ("delete_task", {"task_id": mine["id"]}),
        ("delete_task", {"task_id": mine["id"], "expected_version": 1}),
    ]:
        assert intruder.error(tool, **arguments) == "Task not found.", tool
    assert intruder.error("restore_task", task_id=trashed["id"]) == "No such task in the trash."
    assert intruder.ok("list_tasks") == {"tasks": [], "next_cursor": None, "total": 0}
    assert intruder.ok("list_tasks", q="Alice")["total"] == 0
    assert intruder.ok("list_trash")["total"] == 0
    assert intruder.ok("list_tags") == {"tags": []}
    assert intruder.ok("get_changes")["changes"] == []
    alices_token = make_agent(alice).ok("get_changes")["next"]
    assert "since" in intruder.error("get_changes", since=alices_token)
    alices_cursor = make_agent(alice).ok("list_tasks", limit=1)
    assert alices_cursor["total"] == 1
    rest = client.get(f"/api/{alice}/tasks/{mine['id']}", headers=bearer(alice)).json
    assert (rest["title"], rest["completed"]) == ("Alice's", False)
    assert client.get(f"/api/{bob}/tasks", headers=bearer(bob)).json == []


def test_mcp_calls_and_rest_calls_share_the_users_rate_limit(
    mcp, database_url, make_agent, make_app
):
    web = make_app(
        database_url,
        RATELIMIT_ENABLED=True,
        TASKS_RATE_LIMIT=f"{RATE_LIMIT} per minute",
        RATELIMIT_STORAGE_URI=REDIS_URL,
    )
    user_id = f"limited-{uuid.uuid4().hex[:8]}"
    client = web.test_client()
    for _ in range(RATE_LIMIT - 3):
        assert client.get(f"/api/{user_id}/tags", headers=bearer(user_id)).status_code == 200
    results = make_agent(user_id).calls(
        *[("list_tasks", {})] * 3, ("add_task", {"title": "One too many"})
    )
    assert [result.is_error for result in results] == [False, False, False, True]
    assert "retry in" in results[-1].content[0].text
    assert client.get(f"/api/{user_id}/tasks", headers=bearer(user_id)).status_code == 429
    assert client.get(f"/api/{user_id}/tasks", headers=bearer(user_id)).json["status"] == 429
    assert make_agent("someone-else").ok("list_tasks")["total"] == 0  # a count per user


def test_concurrent_agents_of_several_users_see_only_their_own(mcp, tokens, client):
    """8 agents making 40 calls at once through 2 pooled connections (the mcp fixture's)."""
    users = [f"crowd-{n}-{uuid.uuid4().hex[:6]}" for n in range(8)]

    async def work(user_id: str, results: dict) -> None:
        agent = Agent(mcp.url, tokens.token(user_id))
        calls = [("add_task", {"title": f"{user_id} {n}"}) for n in range(4)]
        results[user_id] = await agent.session_calls([*calls, ("list_tasks", {})])

    async def crowd() -> dict:
        results: dict = {}
        async with anyio.create_task_group() as group:
            for user_id in users:
                group.start_soon(work, user_id, results)
        return results

    results = anyio.run(crowd)
    for user_id in users:
        assert not any(result.is_error for result in results[user_id]), results[user_id]
        listed = results[user_id][-1].structured_content["tasks"]
        assert sorted(task["title"] for task in listed) == [f"{user_id} {n}" for n in range(4)]
        rest = client.get(f"/api/{user_id}/tasks", headers=bearer(user_id)).json
        assert len(rest) == 4


def test_web_workers_do_not_import_the_mcp_sdk():
    script = (
        "import sys, wsgi; "
        "heavy = {'mcp', 'mcp_types', 'pydantic', 'starlette', 'uvicorn', 'anyio'}; "
        "print(sorted({name.split('.')[0] for name in sys.modules} & heavy))"
    )
    env = {"APP_ENV": "development", "PATH": "/usr/bin:/bin"}
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert output.returncode == 0, output.stderr
    assert output.stdout.strip() == "[]"
