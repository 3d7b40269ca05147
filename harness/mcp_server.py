"""The MCP server as it runs in production: ``uvicorn asgi:app`` in a process of its own,
with tokens issued like Better Auth's ``mcp`` plugin does (``AgentTokens``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from harness.gunicorn import ROOT, SECRET, free_port, read_log, stop, wait_for_port
from harness.jwks_server import JWKSServer, SigningKey


@dataclass
class MCPServer:
    url: str  # the endpoint, MCP_RESOURCE_URL
    metadata_url: str
    process: subprocess.Popen
    log: object

    def output(self) -> str:
        return read_log(self.log)


@contextmanager
def mcp_server(
    database_url: str, better_auth_url: str, port: int | None = None, **environment: str
) -> Iterator[MCPServer]:
    """Serve the MCP endpoint on ``port`` (default: a free one), verifying tokens with the
    JWKS of ``better_auth_url`` (a ``JWKSServer``'s url, or a real Better Auth).

    The database must be migrated already. Production settings unless
    ``environment`` says otherwise.
    """
    port = port or free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "BETTER_AUTH_URL": better_auth_url,
        "MCP_PORT": str(port),
        "MCP_RESOURCE_URL": resource,
        "RATELIMIT_ENABLED": "false",
        **environment,
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed when the server stops)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "asgi:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = MCPServer(
        resource, f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", process, log
    )
    try:
        # Importing the SDK and building the app takes a few seconds on a busy machine.
        wait_for_port(port, process, "uvicorn", server.output, timeout=40)
        yield server
    finally:
        stop(process)
        log.close()


class AgentTokens:
    """Access tokens as Better Auth's ``mcp`` plugin issues them (``at+jwt``, EdDSA)."""

    def __init__(self, jwks: JWKSServer, resource: str, key: SigningKey | None = None):
        self.key = key or SigningKey("agents-key")
        if self.key not in jwks.keys:
            jwks.keys.append(self.key)
        self.issuer = f"{jwks.url}/api/auth"
        self.resource = resource

    def claims(self, user_id: str, scope: str = "tasks:read tasks:write", **claims) -> dict:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": [self.resource, f"{self.issuer}/mcp/userinfo"],
            "sub": user_id,
            "azp": "agent-client",
            "scope": scope,
            "sid": "session-1",
            "jti": f"jti-{now}",
            "iat": now,
            "exp": now + 3600,
        } | claims

    def token(self, user_id: str, scope: str = "tasks:read tasks:write", **claims) -> str:
        """A token for ``user_id``; a claim set to None is left out."""
        payload = {
            name: value
            for name, value in self.claims(user_id, scope, **claims).items()
            if value is not None
        }
        return self.key.sign(payload, typ="at+jwt")
