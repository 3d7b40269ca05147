"""Agents: the user's tasks through the Model Context Protocol (docs/mcp.md).

Its own process (``asgi.py``, served by uvicorn), beside the gunicorn
workers of the REST API, on the same database and data-access code. The web
workers never import this package: it brings the MCP SDK, pydantic,
starlette and an event loop, none of which a gevent worker should carry.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.applications import Starlette

from .. import create_app
from ..config import check_mcp_config, mcp_config_warnings
from .server import build_server


def create_mcp_app(config: Mapping | None = None) -> Starlette:
    """The MCP server's ASGI app, configured from the environment (or ``config``: tests)."""
    app = create_app(config)
    check_mcp_config(app.config)
    for warning in mcp_config_warnings(app.config):
        app.logger.warning("configuration: %s", warning)
    return build_server(app)
