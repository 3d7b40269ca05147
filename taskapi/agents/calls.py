"""Running one tool call for the token's user: what the REST decorators do for a view.

In order, as a REST request meets them (``taskapi.auth.decorators.user_view``,
whose pieces are the plain functions called here): the scope the tool needs
(the token's user is known already), the user's rate limit (the same counter,
in the same store, as the user's REST calls), the user's row (made again and
the work retried once if an operator deleted it), then the tool's data
access. SQLAlchemy is synchronous, so all of it runs in a worker thread
inside a Flask app context; the threads that may hold a database connection at once
are capped at ``DATABASE_POOL_SIZE`` (one AnyIO capacity limiter), so
concurrent agents wait for a thread, never for a pooled connection (which
would fail after 10 s).

Every outcome is a ``CallToolResult``: the tool's structured content, or a
tool error whose text says what went wrong the way the REST API's problem
would (``ValidationError`` messages as a 400's ``errors``), and never a
stack trace or a database message. One access log line per call.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from functools import partial

import anyio
import anyio.to_thread
from flask import Flask
from marshmallow import ValidationError
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp_types import CallToolResult, TextContent
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ..auth.limits import count_user_call
from ..auth.users import run_with_user_row
from ..errors import is_unavailable

access_log = logging.getLogger("taskapi.access")
log = logging.getLogger("taskapi.agents")


class ToolFailure(Exception):
    """The call is refused or failed: ``text`` goes to the agent, ``status`` (the REST
    status it stands for) to the access log."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


def not_found(what: str = "Task not found.") -> ToolFailure:
    """Missing, or another user's: the same words either way."""
    return ToolFailure(404, what)


class Calls:
    """Runs tool calls against one Flask app (its database, limits and settings)."""

    def __init__(self, app: Flask):
        self.app = app
        self.threads = app.config["DATABASE_POOL_SIZE"]
        self._limiter: anyio.CapacityLimiter | None = None

    def limiter(self) -> anyio.CapacityLimiter:
        # Made on first use: a limiter belongs to the running event loop.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    async def run(self, tool: str, scope: str, work: Callable[[str], dict]) -> CallToolResult:
        """``work(user_id)``'s structured content, for the request's token, as a tool result."""
        started = time.perf_counter()
        access = get_access_token()
        user_id = access.subject if access else None
        try:
            if access is None or user_id is None:  # the SDK lets no such request through
                raise ToolFailure(401, "The access token names no user.")
            if scope not in access.scopes:
                granted = " ".join(access.scopes) or "none"
                raise ToolFailure(
                    403,
                    f"This tool needs the {scope} scope; the access token grants {granted}. "
                    "Ask the user to authorize it again with that scope.",
                )
            content = await anyio.to_thread.run_sync(
                partial(self.run_in_app, access, work), limiter=self.limiter()
            )
        except ToolFailure as failure:
            self.log_call(tool, failure.status, started, user_id)
            return CallToolResult(
                content=[TextContent(type="text", text=failure.text)], is_error=True
            )
        self.log_call(tool, 200, started, user_id)
        return CallToolResult(
            # The same JSON as text, for clients that read only text (task text is
            # storable: validated free of lone surrogates).
            content=[TextContent(type="text", text=json.dumps(content, ensure_ascii=False))],
            structured_content=content,
        )

    def run_in_app(self, access: AccessToken, work: Callable[[str], dict]) -> dict:
        user_id = access.subject
        with self.app.app_context():
            try:
                retry_after = count_user_call(user_id)
                if retry_after is not None:
                    raise ToolFailure(
                        429, f"Too many calls for this user; retry in {retry_after} seconds."
                    )
                return run_with_user_row(user_id, access.claims or {}, lambda: work(user_id))
            except ToolFailure:
                raise
            except ValidationError as error:
                messages = error.messages
                errors = messages if isinstance(messages, dict) else {"_schema": messages}
                raise ToolFailure(400, f"The arguments are invalid: {json.dumps(errors)}") from None
            except HTTPException as error:  # abort() in shared code (idempotency keys)
                raise ToolFailure(error.code or 500, error.description or error.name) from None
            except SQLAlchemyError as error:
                if is_unavailable(error):
                    log.warning("database unavailable: %s", type(error).__name__)
                    raise ToolFailure(
                        503, "The database is unavailable; try again shortly."
                    ) from None
                log.exception("database error in an MCP tool")
                raise ToolFailure(
                    500, "The call failed unexpectedly; nothing was changed."
                ) from None
            except Exception:
                log.exception("unhandled exception in an MCP tool")
                raise ToolFailure(500, "The call failed unexpectedly.") from None

    @staticmethod
    def log_call(tool: str, status: int, started: float, user_id: str | None) -> None:
        """The access line a REST request leaves: method MCP, path the tool, never arguments."""
        access_log.info(
            "MCP %s %s",
            tool,
            status,
            extra={
                "request_id": uuid.uuid4().hex,
                "method": "MCP",
                "path": f"tools/{tool}",
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user_id": user_id,
            },
        )
