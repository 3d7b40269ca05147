"""`make bench-mcp`: the latency of MCP tool calls, in production configuration.

Creates a fresh PostgreSQL database, migrates it with the CLI, serves the MCP
endpoint as the Procfile does (one uvicorn process, ``asgi:app``) with
APP_ENV=production, rate limits on (a limit no run reaches) and access logs
written (to bench/results/mcp.log), tokens signed by a local JWKS server as
Better Auth's ``mcp`` plugin signs them; each of 16 users adds 50 tasks
through the endpoint (the warm-up). Then 16 concurrent sessions, one per
user, each calling one tool back to back for --duration seconds:
``list_tasks`` (a page of 50), then ``add_task``. Each session keeps its
connection; a call is one POST (stateless Streamable HTTP, JSON response),
as the official clients send it. Then the same work through the REST API
(gunicorn as ``make bench`` runs it: 2 gevent workers, the same settings),
from the same client: ``GET /api/{user}/tasks?limit=50`` and ``POST``.

Prints calls/s and p50/p90/p99 latency per tool and REST request. Drops the database at the end.

Usage: .venv/bin/python bench/mcp.py [--duration 15] [--sessions 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import anyio
import httpx2
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.databases import fresh_postgres_database, upgrade_with_cli
from harness.gunicorn import SECRET, gunicorn
from harness.jwks_server import JWKSServer
from harness.mcp_server import AgentTokens, mcp_server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TASKS_PER_USER = 50
PROTOCOL_VERSION = "2025-06-18"
TOOLS = ("list_tasks", "add_task")
REST_NAMES = {"list_tasks": "GET tasks?limit=50", "add_task": "POST tasks"}
PRODUCTION = {
    "RATELIMIT_ENABLED": "true",
    "RATELIMIT_DEFAULT": "100000000 per minute",  # counted, never reached
    "LOG_LEVEL": "INFO",
}


async def seed(url: str, tokens: list[str]) -> None:
    """TASKS_PER_USER tasks per user, added through the endpoint itself (a warm-up too)."""

    async def add(token: str) -> None:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": PROTOCOL_VERSION,
        }
        async with httpx2.AsyncClient(headers=headers, timeout=30) as client:
            for number in range(TASKS_PER_USER):
                body = {
                    "jsonrpc": "2.0",
                    "id": number,
                    "method": "tools/call",
                    "params": {"name": "add_task", "arguments": {"title": f"Task {number}"}},
                }
                response = await client.post(url, json=body)
                assert response.status_code == 200, response.text

    async with anyio.create_task_group() as group:
        for token in tokens:
            group.start_soon(add, token)


class MCPCall:
    """One tools/call, as a POST of the stateless Streamable HTTP transport."""

    def __init__(self, url: str, token: str, tool: str):
        self.url, self.tool = url, tool
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": PROTOCOL_VERSION,
        }
        self.arguments = {"limit": 50} if tool == "list_tasks" else {"title": "Benchmarked task"}

    async def send(self, client: httpx2.AsyncClient, number: int) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": number,
            "method": "tools/call",
            "params": {"name": self.tool, "arguments": self.arguments},
        }
        response = await client.post(self.url, json=body)
        if response.status_code != 200 or response.json().get("result", {}).get("isError"):
            raise RuntimeError(f"{self.tool}: {response.status_code} {response.text[:300]}")


class RESTCall:
    """The same work through the REST API: a page of 50, or a create."""

    def __init__(self, base: str, user_id: str, tool: str):
        self.tool = tool
        self.url = f"{base}/api/{user_id}/tasks"
        token = jwt.encode({"sub": user_id, "exp": int(time.time()) + 3600}, SECRET, "HS256")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def send(self, client: httpx2.AsyncClient, number: int) -> None:
        if self.tool == "list_tasks":
            response = await client.get(self.url, params={"limit": 50})
        else:
            response = await client.post(self.url, json={"title": "Benchmarked task"})
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{self.tool}: {response.status_code} {response.text[:300]}")


async def session(call, deadline: float, latencies: list) -> None:
    """Calls back to back on one kept-alive connection until ``deadline``."""
    async with httpx2.AsyncClient(headers=call.headers, timeout=30) as client:
        number = 0
        while time.perf_counter() < deadline:
            number += 1
            started = time.perf_counter()
            await call.send(client, number)
            latencies.append(time.perf_counter() - started)


async def run_sessions(calls: list, duration: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration
    async with anyio.create_task_group() as group:
        for call in calls:
            group.start_soon(session, call, deadline, latencies)
    return latencies


def report(label: str, latencies: list[float], duration: float) -> None:
    print(
        f"{label:>22}: {len(latencies) / duration:7.1f} calls/s  "
        f"p50 {percentile(latencies, 0.5) * 1000:6.1f} ms  "
        f"p90 {percentile(latencies, 0.9) * 1000:6.1f} ms  "
        f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms  "
        f"({len(latencies)} calls)"
    )


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=1000)[round(fraction * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    users = [f"bench-agent-{n}" for n in range(args.sessions)]
    jwks = JWKSServer()
    with fresh_postgres_database(args.database, "taskapi_bench_mcp") as database_url:
        upgrade_with_cli(
            {"APP_ENV": "production", "DATABASE_URL": database_url, "BETTER_AUTH_SECRET": SECRET}
            | {"PATH": "/usr/bin:/bin"}
        )
        with mcp_server(database_url, jwks.url, **PRODUCTION) as server:
            tokens = AgentTokens(jwks, server.url)
            signed = [tokens.token(user_id) for user_id in users]
            anyio.run(seed, server.url, signed)
            print(f"{args.sessions} sessions, {args.duration:g} s each, production configuration")
            for tool in TOOLS:
                calls = [MCPCall(server.url, token, tool) for token in signed]
                report(f"MCP {tool}", anyio.run(run_sessions, calls, args.duration), args.duration)
            (RESULTS / "mcp.log").write_text(server.output())
        environment = {"BETTER_AUTH_URL": jwks.url, "LOG_LEVEL": "INFO"} | PRODUCTION
        with gunicorn(database_url, **environment) as (base, _):
            for tool in TOOLS:
                calls = [RESTCall(base, user_id, tool) for user_id in users]
                latencies = anyio.run(run_sessions, calls, args.duration)
                report(f"REST {REST_NAMES[tool]}", latencies, args.duration)
    jwks.stop()


if __name__ == "__main__":
    main()
