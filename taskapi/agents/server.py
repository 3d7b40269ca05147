"""The MCP server: the official SDK's ``MCPServer`` over Streamable HTTP, as an ASGI app.

Stateless, with JSON responses: each POST to the endpoint is one JSON-RPC
exchange, so any instance can answer any request (no session affinity) and
nothing is held between calls. An OAuth 2.1 resource server: the SDK answers
401 with ``WWW-Authenticate: Bearer ... resource_metadata="..."`` and serves
the RFC 9728 metadata; ``AgentTokenVerifier`` decides which tokens pass.
The Flask app (``create_app``) is built for its configuration, database and
rate limits; it serves no HTTP here.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from flask import Flask
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.routes import create_protected_resource_routes
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.transport_security import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    TransportSecuritySettings,
)
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import AnyHttpUrl, ConfigDict
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth.jwks import KeysUnavailable
from .calls import Calls
from .tokens import SCOPES, AgentTokenVerifier
from .tools import TOOLS, ToolSpec

INSTRUCTIONS = (
    "The signed-in user's task list. Tasks have a title, an optional description, due "
    "time, reminder, priority, tags and recurrence. Times are RFC 3339 with an offset "
    "(UTC with Z is safest). Deleting moves a task to the trash, from which restore_task "
    "brings it back. Ids are the user's own: never guess one, list or get first."
)


def build_server(app: Flask) -> Starlette:
    """The Starlette app serving ``MCP_RESOURCE_URL``'s path and its metadata."""
    config = app.config
    resource = config["MCP_RESOURCE_URL"]
    calls = Calls(app)
    server = MCPServer(
        "taskapi",
        title="taskapi",
        instructions=INSTRUCTIONS,
        token_verifier=AgentTokenVerifier(app),
        auth=AuthSettings(
            issuer_url=config["MCP_AUTHORIZATION_SERVER"],
            resource_server_url=resource,
            # Each tool checks its own scope (tasks:read or tasks:write): a token for
            # reading alone must still reach the reading tools.
            required_scopes=None,
            validate_token_resource=False,  # AgentTokenVerifier checks aud itself
        ),
        tools=[sdk_tool(spec, calls) for spec in TOOLS],
        # The SDK's own lines (not JSON) only when something is wrong; each tool call
        # leaves a JSON access line (taskapi.agents.calls).
        log_level="WARNING",
    )
    starlette = server.streamable_http_app(
        streamable_http_path=urlsplit(resource).path,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=config["MCP_ALLOWED_HOSTS"],
            allowed_origins=[origin_of(resource)],
        ),
    )
    advertise_scopes(starlette, resource, config["MCP_AUTHORIZATION_SERVER"])
    # Innermost, after the token is verified: only an agent's body is ever read here.
    starlette.user_middleware.append(Middleware(LoneSurrogatesAsNul))
    starlette.add_middleware(KeysUnavailableIs503)  # outermost: around the token's verification
    return starlette


class RawArguments(ArgModelBase):
    """Hands a tool its arguments as sent: the tools load them with marshmallow."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict:
        return {"arguments": dict(self.model_extra or {})}


def sdk_tool(spec: ToolSpec, calls: Calls) -> Tool:
    """``spec`` as the SDK's Tool: its input schema is the marshmallow schemas', and its
    result (a CallToolResult) is shaped by ``calls``, not by a return annotation."""

    async def call(arguments: dict) -> CallToolResult:
        return await calls.run(spec.name, spec.scope, lambda user: spec.run(user, arguments))

    return Tool(
        fn=call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=spec.input_schema,
        fn_metadata=FuncMetadata(arg_model=RawArguments, output_schema=spec.output_schema),
        is_async=True,
        annotations=ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            # Overwriting fields, or moving a task to the trash (where it can be restored).
            destructive_hint=spec.name in ("update_task", "delete_task"),
            idempotent_hint=spec.read_only or spec.name in ("update_task", "complete_task"),
            open_world_hint=False,
        ),
    )


def advertise_scopes(starlette: Starlette, resource: str, issuer: str) -> None:
    """Serve the metadata with both scopes.

    The SDK lists ``required_scopes`` as ``scopes_supported``, and requiring
    both would shut out tokens for reading alone; so its metadata route is
    replaced by one built with the SDK's own function and both scopes.
    """
    (ours,) = create_protected_resource_routes(
        resource_url=AnyHttpUrl(resource),
        authorization_servers=[AnyHttpUrl(issuer)],
        scopes_supported=list(SCOPES),
        resource_name="taskapi",
    )
    routes = starlette.router.routes
    for index, route in enumerate(routes):
        if isinstance(route, Route) and route.path == ours.path:
            routes[index] = ours
            return
    raise RuntimeError("the SDK served no protected resource metadata")


class KeysUnavailableIs503:
    """While the JWKS cannot be fetched, a token with an unknown ``kid`` gets 503 with
    Retry-After (as on the REST API), not a 401 that would send the agent to sign in again."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except KeysUnavailable as error:
            response = JSONResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "The identity provider's signing keys cannot be "
                    "fetched; try again shortly.",
                },
                status_code=503,
                headers={"Retry-After": str(error.retry_after)},
            )
            await response(scope, receive, send)


# "\ud800" to "\udfff" spelled in JSON; only a body with one needs a look.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class LoneSurrogatesAsNul:
    """Arguments with a lone surrogate (``"\\ud800"``: JSON can spell it, UTF-8 cannot)
    become a tool error with the REST API's message, not the SDK's parse error.

    The SDK's JSON parser refuses the whole request (-32700); the REST API
    refuses such text with the message it gives NUL ("Must not contain NUL
    characters or lone surrogates."). So a body that spells one is read with
    Python's parser, each lone surrogate made a NUL, and passed on: the tool
    then refuses that field as REST does. Other bodies pass untouched.
    """

    def __init__(self, app: ASGIApp, max_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE):
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authenticated = isinstance(scope.get("user"), AuthenticatedUser)
        if scope["type"] != "http" or scope["method"] != "POST" or not authenticated:
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more and size <= self.max_body_size:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if not more and SURROGATE_ESCAPE.search(body):
            body = without_lone_surrogates(body)
        final = {"type": "http.request", "body": body, "more_body": more}
        await self.app(scope, replay([final], None, receive), send)


def replay(messages: list, then: dict | None, receive: Receive) -> Receive:
    queue = [*messages, *([then] if then else [])]

    async def next_message() -> dict:
        return queue.pop(0) if queue else await receive()

    return next_message


def without_lone_surrogates(body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body  # the SDK answers a parse error, as for any bad JSON
    return json.dumps(nul_for_surrogates(data)).encode()


def nul_for_surrogates(value):
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\x00", value)
    if isinstance(value, list):
        return [nul_for_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {nul_for_surrogates(key): nul_for_surrogates(item) for key, item in value.items()}
    return value


# Python's parser joins a valid pair into one character: what is left is lone.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
