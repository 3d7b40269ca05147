"""CORS in a real browser: headless Chromium runs tests/infrastructure/browser/page.html from
another origin, calling the API (under gunicorn) with fetch and a bearer token."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest

from harness.gunicorn import call, gunicorn, static_site

from ..helpers import fresh_database, make_token

PAGES = Path(__file__).parent / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI needs chromium for the browser test (.ci/run installs it)")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def dump_dom(url: str, profile: Path) -> str:
    """Load ``url`` in headless Chromium, let its scripts and fetches finish, return the DOM."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    return result.stdout + result.stderr[-2000:]


def run_page(page_url: str, profile: Path) -> dict:
    """Run tests/infrastructure/browser/page.html; return the results it wrote into the page."""
    dom = dump_dom(page_url, profile)
    match = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert match, dom[-4000:]
    return json.loads(html.unescape(match.group(1)))


@pytest.fixture(scope="module")
def sites():
    with static_site(PAGES) as allowed, static_site(PAGES) as refused:
        yield allowed, refused


@pytest.fixture(scope="module")
def api(sites, tmp_path_factory):
    allowed, _refused = sites
    folder = tmp_path_factory.mktemp("browser-db")
    with (
        fresh_database("sqlite", folder) as database_url,
        gunicorn(database_url, CORS_ORIGINS=allowed) as (base, _process),
    ):
        yield base


def page_url(site: str, api: str, user: str) -> str:
    query = urlencode({"api": api, "user": user, "token": make_token(user)})
    return f"{site}/page.html?{query}"


def test_allowed_origin_can_create_list_update_and_delete(sites, api, tmp_path):
    allowed, _ = sites
    out = run_page(page_url(allowed, api, "browser-user"), tmp_path / "profile")
    assert "error" not in out, out
    assert out["create"] == 201
    assert out["created_title"] == "from the browser"
    assert out["location"].startswith("/api/browser-user/tasks/")
    assert out["etag"] and out["request_id"]
    assert (out["list"], out["total"], out["listed"]) == (200, "2", 1)
    assert 'rel="next"' in out["link"]
    assert (out["update"], out["updated_title"]) == (200, "edited in the browser")
    assert out["stale_update"] == 412
    assert out["stale_type"] == "application/problem+json"
    assert out["delete"] == 204


def test_disallowed_origin_is_blocked_and_changes_nothing(sites, api, tmp_path):
    _, refused = sites
    out = run_page(page_url(refused, api, "blocked-user"), tmp_path / "profile")
    assert out.get("error", "").startswith("TypeError"), out
    assert "create" not in out
    status, _, body = call(f"{api}/api/blocked-user/tasks", token=make_token("blocked-user"))
    assert (status, json.loads(body)) == (200, [])  # the preflight stopped the POST


def test_docs_page_renders_offline(api, tmp_path):
    dom = dump_dom(f"{api}/api/docs", tmp_path / "profile")
    # Swagger UI fetched the document and drew every operation.
    assert "/api/{user_id}/tasks/{task_id}/complete" in dom
    assert "Create a task" in dom
