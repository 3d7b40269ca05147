"""The ASGI entry point of the MCP server: ``uvicorn asgi:app`` (``make mcp``)."""

import sys

from taskapi.agents import create_mcp_app
from taskapi.config import ConfigError

try:
    app = create_mcp_app()
except ConfigError as error:  # one clear line, not a traceback
    sys.exit(f"configuration: {error}")
