"""The pinned npm packages the MCP tests run (tests/agents/node): the official TypeScript
MCP client and a real Better Auth, installed once into .cache/mcp-node (gitignored)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from harness.gunicorn import ROOT

SOURCES = ROOT / "tests" / "agents" / "node"
CACHE = ROOT / ".cache" / "mcp-node"
MANIFESTS = ("package.json", "package-lock.json")


def node_packages() -> Path:
    """The folder to run the scripts in, with their packages installed (``npm ci``).

    Node and npm are required: without them this fails, it never skips. A first
    install compiles better-sqlite3 (some minutes); later runs reuse it until
    the manifests change.
    """
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is required for the MCP client tests (.ci/run installs it)")
    digest = hashlib.sha256(b"".join((SOURCES / name).read_bytes() for name in MANIFESTS))
    stamp = CACHE / ".installed"
    if not stamp.exists() or stamp.read_text() != digest.hexdigest():
        CACHE.mkdir(parents=True, exist_ok=True)
        for name in MANIFESTS:
            shutil.copy(SOURCES / name, CACHE / name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CACHE,
            check=True,
            timeout=1200,
        )
        stamp.write_text(digest.hexdigest())
    for script in SOURCES.glob("*.mjs"):
        shutil.copy(script, CACHE / script.name)
    return CACHE
