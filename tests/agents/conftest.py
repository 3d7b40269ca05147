"""Fixtures for the MCP server: one real server (uvicorn) per module and database,
a JWKS server signing agents' tokens, and an agent speaking through the official
Python SDK client. REST checks go through the ``client`` fixture, on the same database.
"""

from __future__ import annotations

import json
import uuid

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

from harness.gunicorn import call
from harness.jwks_server import JWKSServer
from harness.mcp_server import AgentTokens, mcp_server


@pytest.fixture(scope="module")
def jwks():
    server = JWKSServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mcp(migrated_app, database_url, jwks):
    """The MCP server on the test database; a failed JWKS fetch pauses fetching for 1 s."""
    with mcp_server(database_url, jwks, JWT_JWKS_FAILURE_COOLDOWN="1") as server:
        yield server


@pytest.fixture(scope="module")
def tokens(mcp, jwks):
    return AgentTokens(jwks, mcp.url)


class Agent:
    """An MCP client of the official Python SDK, for one access token."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token

    async def session_calls(self, calls: list[tuple[str, dict]]) -> list[CallToolResult]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(self.url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return [await session.call_tool(name, arguments) for name, arguments in calls]

    def calls(self, *calls: tuple[str, dict]) -> list[CallToolResult]:
        return anyio.run(self.session_calls, list(calls))

    def call(self, tool: str, **arguments) -> CallToolResult:
        return self.calls((tool, arguments))[0]

    def ok(self, tool: str, **arguments) -> dict:
        """The structured content of a call that must succeed."""
        result = self.call(tool, **arguments)
        assert not result.is_error, result.content
        return result.structured_content

    def error(self, tool: str, **arguments) -> str:
        """The text of a call that must fail as a tool error."""
        result = self.call(tool, **arguments)
        assert result.is_error, result.structured_content
        return result.content[0].text

    def raw_call(self, body: bytes) -> dict:
        """One tools/call as bytes on the wire (what no SDK client would send); its result."""
        status, _, answer = call(
            self.url,
            "POST",
            raw=body,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-06-18",  # before request envelopes
            },
        )
        assert status == 200, answer
        return json.loads(answer)["result"]

    async def list_tools(self):
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(self.url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return (await session.list_tools()).tools


@pytest.fixture
def user_id() -> str:
    """A user of this test alone (the server remembers users across tests)."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def agent(app, mcp, tokens, user_id) -> Agent:
    """An agent acting for ``user_id`` with both scopes."""
    return Agent(mcp.url, tokens.token(user_id))


@pytest.fixture
def make_agent(app, mcp, tokens):
    def make(user_id: str, scope: str = "tasks:read tasks:write", **claims) -> Agent:
        return Agent(mcp.url, tokens.token(user_id, scope, **claims))

    return make
