"""Fixtures for the MCP server: one real server (uvicorn) per module and database,
a JWKS server signing agents' tokens, and an agent speaking through the official
Python SDK client. REST checks go through the ``client`` fixture, on the same database.
"""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager

import pytest
import redis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

from harness.gunicorn import call
from harness.jwks_server import JWKSServer
from harness.mcp_server import AgentTokens, mcp_server

# One count per user for MCP and REST calls (limits are on, in Redis, as in production).
REDIS_URL = "redis://127.0.0.1:6379/0"
RATE_LIMIT = 100  # per minute: tests use a user of their own, and stay under it


@pytest.fixture(scope="session")
def jwks():
    server = JWKSServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mcp(migrated_app, database_url, jwks):
    """The MCP server on the test database, for every test of the session.

    Two pooled connections (concurrent agents must queue for threads, not for
    connections), rate limits on in Redis, and JWKS pauses shortened.
    """
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is required at {REDIS_URL} (.ci/run starts it)")
    with mcp_server(
        database_url,
        jwks.url,
        DATABASE_POOL_SIZE="2",
        RATELIMIT_ENABLED="true",
        RATELIMIT_DEFAULT=f"{RATE_LIMIT} per minute",
        RATELIMIT_STORAGE_URI=REDIS_URL,
        JWT_JWKS_REFRESH_COOLDOWN="0.2",
        JWT_JWKS_FAILURE_COOLDOWN="0.5",
    ) as server:
        yield server


@pytest.fixture(scope="session")
def tokens(mcp, jwks):
    return AgentTokens(jwks, mcp.url)


@asynccontextmanager
async def client_session(url: str, token: str):
    """An initialized ClientSession of the official SDK, sending ``token``."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


class Agent:
    """An MCP client of the official Python SDK, for one access token.

    Synchronous for the tests: its session lives on ``portal``'s event loop
    (one per test session), opened at the first call and kept until ``close``.
    """

    def __init__(self, url: str, token: str, portal: BlockingPortal | None = None):
        self.url = url
        self.token = token
        self.portal = portal
        self._context = None
        self._session: ClientSession | None = None

    def session(self) -> ClientSession:
        if self._session is None:
            self._context = self.portal.wrap_async_context_manager(
                client_session(self.url, self.token)
            )
            self._session = self._context.__enter__()
        return self._session

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = self._session = None

    async def session_calls(self, calls: list[tuple[str, dict]]) -> list[CallToolResult]:
        """The calls, in one session of their own (on the caller's event loop)."""
        async with client_session(self.url, self.token) as session:
            return [await session.call_tool(name, arguments) for name, arguments in calls]

    def calls(self, *calls: tuple[str, dict]) -> list[CallToolResult]:
        return [self.call(name, **arguments) for name, arguments in calls]

    def call(self, tool: str, **arguments) -> CallToolResult:
        return self.portal.call(self.session().call_tool, tool, arguments)

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

    def list_tools(self):
        return self.portal.call(self.session().list_tools).tools


@pytest.fixture(scope="session")
def portal():
    with start_blocking_portal() as portal:
        yield portal


@pytest.fixture
def user_id() -> str:
    """A user of this test alone (the server remembers users across tests)."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_agent(app, mcp, tokens, portal):
    """Agents for a user (both scopes unless told), closed after the test."""
    made = []

    def make(user_id: str, scope: str = "tasks:read tasks:write", **claims) -> Agent:
        made.append(Agent(mcp.url, tokens.token(user_id, scope, **claims), portal))
        return made[-1]

    yield make
    for agent in made:
        agent.close()


@pytest.fixture
def agent(make_agent, user_id) -> Agent:
    """An agent acting for ``user_id`` with both scopes."""
    return make_agent(user_id)
