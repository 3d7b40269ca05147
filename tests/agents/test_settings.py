"""The MCP settings (docs/operations.md): defaults, derivations, and refusing production
without MCP_RESOURCE_URL (the MCP process only: the web process does not need it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.gunicorn import ROOT
from taskapi.config import (
    ConfigError,
    check_mcp_config,
    derived_settings,
    load_config,
)

from ..helpers import SECRET

PRODUCTION = {"APP_ENV": "production", "BETTER_AUTH_SECRET": SECRET}


def settings(environ: dict, tmp_path) -> dict:
    config = load_config(environ, str(tmp_path))
    return config | derived_settings(config)


def test_development_needs_no_mcp_settings(tmp_path):
    config = settings({"APP_ENV": "development"}, tmp_path)
    assert config["MCP_PORT"] == 8001
    assert config["MCP_RESOURCE_URL"] == "http://127.0.0.1:8001/mcp"
    assert config["MCP_ALLOWED_HOSTS"] == ["127.0.0.1:8001"]
    assert config["MCP_AUTHORIZATION_SERVER"] == "http://localhost:3000/api/auth"
    check_mcp_config(config)
    port = settings({"APP_ENV": "development", "MCP_PORT": "9100"}, tmp_path)
    assert port["MCP_RESOURCE_URL"] == "http://127.0.0.1:9100/mcp"


def test_production_derives_issuer_and_hosts_from_the_urls(tmp_path):
    config = settings(
        PRODUCTION
        | {
            "BETTER_AUTH_URL": "https://auth.example.com/",
            "MCP_RESOURCE_URL": "https://api.example.com/mcp",
        },
        tmp_path,
    )
    assert config["MCP_AUTHORIZATION_SERVER"] == "https://auth.example.com/api/auth"
    assert config["MCP_ALLOWED_HOSTS"] == ["api.example.com"]
    check_mcp_config(config)
    explicit = settings(
        PRODUCTION
        | {
            "BETTER_AUTH_URL": "https://auth.example.com",
            "MCP_RESOURCE_URL": "https://api.example.com/mcp",
            "MCP_AUTHORIZATION_SERVER": "https://login.example.com/api/auth",
            "MCP_ALLOWED_HOSTS": "api.example.com, mcp.internal:8001",
        },
        tmp_path,
    )
    assert explicit["MCP_AUTHORIZATION_SERVER"] == "https://login.example.com/api/auth"
    assert explicit["MCP_ALLOWED_HOSTS"] == ["api.example.com", "mcp.internal:8001"]


def test_production_mcp_refuses_to_start_without_its_settings(tmp_path):
    web_only = settings(PRODUCTION | {"BETTER_AUTH_URL": "https://auth.example.com"}, tmp_path)
    with pytest.raises(ConfigError, match="MCP_RESOURCE_URL must be set"):
        check_mcp_config(web_only)
    no_jwks = settings(PRODUCTION | {"MCP_RESOURCE_URL": "https://api.example.com/mcp"}, tmp_path)
    with pytest.raises(ConfigError, match="BETTER_AUTH_URL"):
        check_mcp_config(no_jwks)


@pytest.mark.parametrize(
    "url",
    [
        "api.example.com/mcp",
        "https://api.example.com",
        "https://api.example.com/mcp/",
        "https://api.example.com/mcp?x=1",
        "ftp://api.example.com/mcp",
    ],
)
def test_a_resource_url_agents_could_not_name_is_refused(tmp_path, url):
    with pytest.raises(ConfigError, match="MCP_RESOURCE_URL"):
        load_config({"APP_ENV": "development", "MCP_RESOURCE_URL": url}, str(tmp_path))


def test_asgi_exits_with_one_line_in_production_without_a_resource_url(tmp_path):
    env = {
        **{name: os.environ[name] for name in ("PATH",) if name in os.environ},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "BETTER_AUTH_URL": "https://auth.example.com",
        **PRODUCTION,
    }
    result = subprocess.run(
        [sys.executable, "-c", "import asgi"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1:] == [
        "configuration: MCP_RESOURCE_URL must be set in production: the public URL of the MCP "
        "endpoint, which agents' tokens must name as their audience "
        "(e.g. https://api.example.com/mcp)."
    ]
