"""The browser side of Web Push in real headless Chromium, driven over the DevTools
protocol: docs/frontend.md section 11's service worker registers, the page turns
``GET /api/push/key`` into an ``applicationServerKey``, and a push delivered to the
registration (locally: no vendor push service is reachable here) is shown as a
notification with the reminder's title and data.

``pushManager.subscribe`` itself needs Chromium's own push service (Google's
GCM) and does not settle without it; the page races it against 5 s and the
test accepts a subscription, a rejection or the timeout.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from harness.gunicorn import gunicorn, static_site
from taskapi.config import generate_vapid_private_key

from ..helpers import fresh_database

PAGES = Path(__file__).resolve().parents[1] / "infrastructure" / "browser" / "push"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]

REMINDER = {
    "task_id": 17,
    "title": "Buy milk",
    "due_at": "2026-11-30T17:00:00Z",
    "remind_at": "2026-11-30T16:30:00Z",
    "url": "/api/k3v9/tasks/17",
}


class DevTools:
    """Just enough of the DevTools protocol: calls, and the events seen meanwhile."""

    def __init__(self, socket):
        self.socket = socket
        self.calls = 0
        self.events: list[dict] = []

    async def call(self, method: str, session: str | None = None, **params):
        self.calls += 1
        message = {"id": self.calls, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self.socket.send_str(json.dumps(message))
        while True:
            reply = json.loads((await self.socket.receive(timeout=30)).data)
            if reply.get("id") == self.calls:
                assert "error" not in reply, (method, reply)
                return reply["result"]
            self.events.append(reply)


async def run_page(page_url: str, origin: str, profile: Path) -> tuple[dict, dict]:
    chromium = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-sync",
            "--disable-component-update",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(400):
            if port_file.exists() and len(port_file.read_text().split()) == 2:
                break
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().split()
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as socket,
        ):
            devtools = DevTools(socket)
            await devtools.call(
                "Browser.grantPermissions", permissions=["notifications"], origin=origin
            )
            target = (await devtools.call("Target.createTarget", url="about:blank"))["targetId"]
            session = (await devtools.call("Target.attachToTarget", targetId=target, flatten=True))[
                "sessionId"
            ]
            await devtools.call("ServiceWorker.enable", session)
            await devtools.call("Page.navigate", session, url=page_url)

            async def page_state() -> dict:
                result = await devtools.call(
                    "Runtime.evaluate",
                    session,
                    expression="document.getElementById('out')?.textContent ?? ''",
                    returnByValue=True,
                )
                try:
                    return json.loads(result["result"].get("value", ""))
                except ValueError:
                    return {}

            for _ in range(300):
                before = await page_state()
                if before.get("ready"):
                    break
                await asyncio.sleep(0.1)
            registrations = [
                registration
                for event in devtools.events
                if event.get("method") == "ServiceWorker.workerRegistrationUpdated"
                for registration in event["params"]["registrations"]
                if not registration["isDeleted"]
            ]
            assert registrations, devtools.events
            await devtools.call(
                "ServiceWorker.deliverPushMessage",
                session,
                origin=origin,
                registrationId=registrations[-1]["registrationId"],
                data=json.dumps(REMINDER),
            )
            for _ in range(100):
                after = await page_state()
                if after.get("notifications"):
                    break
                await asyncio.sleep(0.1)
            return before, after
    finally:
        chromium.terminate()
        chromium.wait(timeout=20)


def test_the_service_worker_shows_a_pushed_reminder(tmp_path):
    with fresh_database("sqlite", tmp_path) as url, static_site(PAGES) as site:
        origin = site.replace("127.0.0.1", "localhost")  # a secure context, over http
        settings = {"VAPID_PRIVATE_KEY": generate_vapid_private_key(), "CORS_ORIGINS": origin}
        with gunicorn(url, **settings) as (base, _):
            before, after = asyncio.run(
                run_page(f"{origin}/index.html?api={base}", origin, tmp_path / "profile")
            )
    assert before.get("error") is None, before
    assert before["supported"] and before["permission"] == "granted"
    assert before["key_bytes"] == 65
    subscribe = before["subscribe"]
    assert isinstance(subscribe, dict) or subscribe == "timed out" or ":" in subscribe
    assert after["shown"] == REMINDER
    assert after["notifications"] == [
        {
            "title": "Buy milk",
            "body": after["notifications"][0]["body"],
            "tag": "task-17",
            "data": REMINDER,
        }
    ]
    assert after["notifications"][0]["body"].startswith("Due ")
