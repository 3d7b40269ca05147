"""Real ``flask --app taskapi send-reminders`` processes, for tests and the soak."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.gunicorn import ROOT, SECRET, read_log
from harness.push_service import PushService


def dispatcher_environment(
    database_url: str, service: PushService, vapid_private_key: str, **settings: str
) -> dict:
    """A production environment whose pushes go to ``service`` and trust its CA only."""
    return {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "VAPID_PRIVATE_KEY": vapid_private_key,
        "VAPID_SUBJECT": "mailto:ops@example.com",
        "PUSH_SERVICE_HOSTS": "127.0.0.1",
        "SSL_CERT_FILE": str(service.ca_file),
        "REQUESTS_CA_BUNDLE": str(service.ca_file),
        "REMINDER_POLL_SECONDS": "0.5",
        **settings,
    }


class DispatcherProcess:
    def __init__(self, environment: dict):
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "taskapi", "send-reminders"],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.output = ""

    def log_so_far(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_started(self, timeout: float = 30) -> str:
        """Until the dispatcher polls; its name (what its claims carry in claimed_by)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"dispatcher ([0-9a-f]+) started", self.log_so_far())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the dispatcher did not start: {self.log_so_far()}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM, then wait for it to exit; its exit status."""
        if self.log.closed:  # stopped already
            return self.process.returncode
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.output = read_log(self.log)
            self.log.close()
        return status


@contextmanager
def dispatchers(environment: dict, count: int = 1) -> Iterator[list[DispatcherProcess]]:
    """``count`` dispatchers on ``environment``; stopped (SIGTERM) after, if still running."""
    started = [DispatcherProcess(environment) for _ in range(count)]
    try:
        yield started
    finally:
        for dispatcher in started:
            if not dispatcher.log.closed:
                dispatcher.stop()
